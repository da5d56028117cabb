package forward

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/setpoint/setpoint/internal/storage/postgres"
)

// peerServerName is the name in every term's certificate, which peers
// verify; the certificate itself is what they trust (see newPeerClient).
const peerServerName = "setpoint-writer"

// stepTimeout bounds one round of the campaign.
const stepTimeout = 5 * time.Second

// term is what a writer publishes for one term: the bearer token and the
// peer listener's certificate.
type term struct {
	token []byte
	// der is cert's certificate, as published.
	der  []byte
	cert tls.Certificate
}

// newTerm makes a random token and a self-signed ECDSA certificate.
func newTerm() (*term, error) {
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return nil, fmt.Errorf("make token: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("make serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: peerServerName},
		DNSNames:              []string{peerServerName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("make certificate: %w", err)
	}
	return &term{token: token, der: der, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}, nil
}

// campaign is the campaign goroutine: a round every RetryPeriod, or soon
// after a send failed, until Close, when it resigns.
func (s *Store) campaign(el *postgres.Election) {
	defer close(s.campaignDone)
	timer := time.NewTimer(s.opts.RetryPeriod)
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
			if err := el.Resign(ctx); err != nil {
				s.log.Warn("forward: resign as storage writer; the lock frees as the session ends", "err", err)
			}
			cancel()
			if s.peer != nil {
				s.peer.stepDown()
			}
			return
		case <-timer.C:
		case <-s.kick:
			// Many failed sends ask at once; run at most ten times a
			// RetryPeriod.
			select {
			case <-s.stop:
				continue
			case <-time.After(s.opts.RetryPeriod / 10):
			}
		}
		s.step(el)
		timer.Reset(s.opts.RetryPeriod)
	}
}

// step is one round of the campaign: keep or take the lead if this
// replica has a peer listener, and otherwise read who leads and point the
// senders at it.
func (s *Store) step(el *postgres.Election) {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	if s.peer != nil {
		cand := s.peer.candidate()
		led, err := el.TryLead(ctx, postgres.WriterRecord{Address: s.opts.AdvertiseAddress, Token: cand.token, Cert: cand.der})
		if led {
			s.setTarget(nil)
			if s.peer.lead(cand) {
				s.log.Info("forward: this replica is the storage writer", "peer_address", s.opts.AdvertiseAddress)
			}
			return
		}
		if s.peer.stepDown() {
			s.log.Warn("forward: this replica is no longer the storage writer", "err", err)
		} else if err != nil {
			s.log.Debug("forward: writer election", "err", err)
		}
	}
	rec, ok, err := el.Elected(ctx)
	switch {
	case err != nil:
		s.log.Debug("forward: read the writer's record", "err", err)
		return
	case !ok:
		s.setTarget(nil)
		return
	}
	if cur := s.target.Load(); cur != nil && cur.rec.Address == rec.Address && bytes.Equal(cur.rec.Token, rec.Token) && bytes.Equal(cur.rec.Cert, rec.Cert) {
		return
	}
	c, err := newPeerClient(rec)
	if err != nil {
		s.log.Warn("forward: unusable writer record; committing locally", "writer", rec.Address, "err", err)
		s.setTarget(nil)
		return
	}
	s.log.Debug("forward: sending writes to the storage writer", "writer", rec.Address)
	s.setTarget(c)
}
