package authn

import (
	"crypto/x509"
	"errors"
	"net/http"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// ClientCert returns the authenticator of TLS client certificates: a
// certificate that chains to one of roots, is valid now and allows client
// authentication is user CN in the groups of its organizations (O). A
// certificate that does not (another CA, expired, no CN) is refused. now
// is the clock (nil: time.Now).
func ClientCert(roots *x509.CertPool, now func() time.Time) authenticator.Request {
	if now == nil {
		now = time.Now
	}
	return authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return nil, false, nil
		}
		certs := r.TLS.PeerCertificates
		intermediates := x509.NewCertPool()
		for _, c := range certs[1:] {
			intermediates.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: intermediates, CurrentTime: now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
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
