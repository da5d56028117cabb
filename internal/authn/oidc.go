package authn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// Bounds on the conversation with an OIDC issuer: the discovery document
// and the key set it serves are read up to maxIssuerBody, each request
// ends after OIDCOptions.Timeout (DefaultIssuerTimeout), and after a
// failed discovery the next attempt waits discoveryRetry.
const (
	maxIssuerBody        = 1 << 20
	DefaultIssuerTimeout = 10 * time.Second
	discoveryRetry       = 10 * time.Second
)

// clockSkew is how far in the future an ID token's iat may be.
const clockSkew = time.Minute

// OIDCOptions configure ID tokens of one OpenID Connect issuer, as
// kube-apiserver's --oidc-* flags.
type OIDCOptions struct {
	// IssuerURL is the issuer, an https URL; its discovery document is at
	// IssuerURL/.well-known/openid-configuration.
	IssuerURL string
	// ClientID must be one of a token's audiences.
	ClientID string
	// UsernameClaim names the user; default "sub". Names from any claim
	// but "email" are prefixed with IssuerURL and "#", so they cannot be
	// taken for another authenticator's users; "email" requires
	// email_verified to be true when the token has it.
	UsernameClaim string
	// GroupsClaim, when set, names a claim holding a string or a list of
	// strings: the user's groups.
	GroupsClaim string
	// CAFile holds the PEM CAs the issuer's certificate is checked against
	// (default: the system's).
	CAFile string
	// Timeout bounds each request to the issuer; default 10s.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// OIDC authenticates ID tokens: JWTs signed with RS256 or ES256 by a key
// of the issuer's key set, for ClientID, of the issuer, not expired, not
// before their nbf, not issued in the future. It fetches the discovery
// document on first use (and again after a failure, at most every 10s),
// caches the keys and fetches them again when a token names a key it does
// not know. A token whose unverified issuer is another is not its own
// (not-found), so several authenticators of bearer tokens can be tried.
type OIDC struct {
	opts   OIDCOptions
	client *http.Client

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	failedAt time.Time
	err      error
}

var _ authenticator.Token = (*OIDC)(nil)

// NewOIDC checks opts and returns their authenticator; it does not reach
// the issuer yet.
func NewOIDC(opts OIDCOptions) (*OIDC, error) {
	u, err := url.Parse(opts.IssuerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("oidc: issuer URL %q is not an https URL without query or fragment", opts.IssuerURL)
	}
	if opts.ClientID == "" {
		return nil, errors.New("oidc: a client ID is required with an issuer URL")
	}
	if opts.UsernameClaim == "" {
		opts.UsernameClaim = "sub"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultIssuerTimeout
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		data, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("oidc: CA file: %w", err)
		}
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("oidc: CA file %s holds no PEM certificate", opts.CAFile)
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	return &OIDC{opts: opts, client: &http.Client{
		Timeout:   opts.Timeout,
		Transport: boundedBodies{transport},
		// The issuer's documents are not followed elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// AuthenticateToken verifies token as an ID token of the issuer.
func (o *OIDC) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	if iss, ok := unverifiedIssuer(token); !ok || iss != o.opts.IssuerURL {
		return nil, false, nil
	}
	v, err := o.verifierFor(ctx)
	if err != nil {
		return nil, false, err
	}
	idToken, err := v.Verify(ctx, token)
	if err != nil {
		return nil, false, invalid("oidc", err)
	}
	if !idToken.IssuedAt.IsZero() && idToken.IssuedAt.After(o.opts.Now().Add(clockSkew)) {
		return nil, false, invalid("oidc", fmt.Errorf("issued in the future, at %v", idToken.IssuedAt))
	}
	var claims map[string]json.RawMessage
	if err := idToken.Claims(&claims); err != nil {
		return nil, false, invalid("oidc", err)
	}
	u, err := o.user(claims)
	if err != nil {
		return nil, false, invalid("oidc", err)
	}
	return &authenticator.Response{User: u}, true, nil
}

// verifierFor returns the verifier, fetching the discovery document first
// if no attempt succeeded yet and the last failure is old enough.
func (o *OIDC) verifierFor(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	if o.err != nil && o.opts.Now().Sub(o.failedAt) < discoveryRetry {
		return nil, o.err
	}
	// The provider keeps this context for its key set's requests, so it
	// must outlive this request; the client's timeout bounds each one.
	provider, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), o.client), o.opts.IssuerURL)
	if err != nil {
		o.err, o.failedAt = fmt.Errorf("oidc: discovery: %w", err), o.opts.Now()
		return nil, o.err
	}
	o.verifier = provider.Verifier(&oidc.Config{
		ClientID:             o.opts.ClientID,
		SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256},
		Now:                  o.opts.Now,
	})
	return o.verifier, nil
}

// user reads the user name and groups from verified claims.
func (o *OIDC) user(claims map[string]json.RawMessage) (*user.DefaultInfo, error) {
	var name string
	if err := json.Unmarshal(claims[o.opts.UsernameClaim], &name); err != nil || name == "" {
		return nil, fmt.Errorf("claim %q is not a non-empty string", o.opts.UsernameClaim)
	}
	if o.opts.UsernameClaim == "email" {
		if raw, ok := claims["email_verified"]; ok {
			var verified bool
			if err := json.Unmarshal(raw, &verified); err != nil || !verified {
				return nil, errors.New("email_verified is not true")
			}
		}
	} else {
		name = o.opts.IssuerURL + "#" + name
	}
	u := &user.DefaultInfo{Name: name}
	if raw, ok := claims[o.opts.GroupsClaim]; ok && o.opts.GroupsClaim != "" {
		var one string
		if err := json.Unmarshal(raw, &one); err == nil {
			u.Groups = []string{one}
		} else if err := json.Unmarshal(raw, &u.Groups); err != nil {
			return nil, fmt.Errorf("claim %q is neither a string nor a list of strings", o.opts.GroupsClaim)
		}
	}
	return u, nil
}

// unverifiedIssuer reads the iss claim of a JWT in compact form without
// checking anything; ok is false if token does not look like one.
func unverifiedIssuer(token string) (iss string, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", false
	}
	var claims struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", false
	}
	return claims.Issuer, true
}

// boundedBodies fails the reading of any response body longer than
// maxIssuerBody, so an issuer cannot make the server read without end.
type boundedBodies struct{ next http.RoundTripper }

func (b boundedBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: maxIssuerBody + 1}
	return resp, nil
}

// boundedBody fails once more than left-1 bytes were read.
type boundedBody struct {
	io.ReadCloser
	left int64
}

var errBodyTooLarge = fmt.Errorf("answer larger than %d bytes", maxIssuerBody)

func (b *boundedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left == 0 {
		return n, errBodyTooLarge
	}
	return n, err
}
