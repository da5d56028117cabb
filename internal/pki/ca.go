// Package pki makes and keeps the certificates a Setpoint server needs to
// serve TLS and to recognise its administrator: a certificate authority,
// a serving certificate and an admin client certificate, all ECDSA P-256,
// kept in one directory and reused after a restart.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// backdate moves every NotBefore into the past, so a certificate is
// already valid on a peer whose clock is a little behind.
const backdate = 5 * time.Minute

// CA is a certificate authority: its certificate and private key.
type CA struct {
	// Cert is the CA's certificate.
	Cert *x509.Certificate
	// CertPEM is Cert PEM-encoded, as clients are given it.
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA named name, valid from now for validity.
func NewCA(name string, now time.Time, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	tmpl, err := template(pkix.Name{CommonName: name}, now.Add(-backdate), now.Add(validity))
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: encodeCert(der), key: key}, nil
}

// ParseCA reads a CA from its PEM-encoded certificate and PKCS #8 key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !pair.Leaf.IsCA {
		return nil, errors.New("pki: parse CA: not an ECDSA CA certificate and key")
	}
	return &CA{Cert: pair.Leaf, CertPEM: certPEM, key: key}, nil
}

// KeyPEM returns the CA's private key, PKCS #8 PEM-encoded.
func (ca *CA) KeyPEM() ([]byte, error) { return encodeKey(ca.key) }

// Pool returns a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Pair is a certificate and its private key, PEM-encoded.
type Pair struct {
	CertPEM, KeyPEM []byte
}

// TLS parses p for crypto/tls.
func (p Pair) TLS() (tls.Certificate, error) {
	c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: parse key pair: %w", err)
	}
	return c, nil
}

// IssueServing signs a serving certificate for hosts (DNS names and IP
// addresses), valid from now for validity.
func (ca *CA) IssueServing(hosts []string, now time.Time, validity time.Duration) (Pair, error) {
	tmpl, err := template(pkix.Name{CommonName: "setpoint"}, now.Add(-backdate), now.Add(validity))
	if err != nil {
		return Pair{}, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl)
}

// IssueClient signs a client certificate for user cn in groups orgs (the
// subject's organizations), valid from notBefore to notAfter.
func (ca *CA) IssueClient(cn string, orgs []string, notBefore, notAfter time.Time) (Pair, error) {
	tmpl, err := template(pkix.Name{CommonName: cn, Organization: orgs}, notBefore, notAfter)
	if err != nil {
		return Pair{}, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return ca.issue(tmpl)
}

// issue makes a key and signs tmpl for it.
func (ca *CA) issue(tmpl *x509.Certificate) (Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, fmt.Errorf("pki: generate key: %w", err)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Pair{}, fmt.Errorf("pki: sign certificate for %q: %w", tmpl.Subject.CommonName, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Pair{}, err
	}
	return Pair{CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// Verify reports whether cert was signed by ca, is valid at now for
// usage, and is not within renewBefore of its end.
func (ca *CA) Verify(cert *x509.Certificate, usage x509.ExtKeyUsage, now time.Time, renewBefore time.Duration) error {
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return err
	}
	if now.Add(renewBefore).After(cert.NotAfter) {
		return fmt.Errorf("expires at %v", cert.NotAfter)
	}
	return nil
}

// SelfSigned makes a throw-away serving certificate for the DNS name
// host, signed by a CA made for it alone; it returns the certificate and
// that CA's PEM for clients to trust.
func SelfSigned(host string, now time.Time, validity time.Duration) (tls.Certificate, []byte, error) {
	ca, err := NewCA(host+"-ca", now, validity)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pair, err := ca.IssueServing([]string{host}, now, validity)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := pair.TLS()
	return cert, ca.CertPEM, err
}

// Hosts returns the DNS names and IP addresses cert is valid for.
func Hosts(cert *x509.Certificate) []string {
	hosts := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	return hosts
}

// template is a certificate template for subject, with a random serial
// number, valid from notBefore to notAfter.
func template(subject pkix.Name, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
