package authn_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/authn"
	"github.com/setpoint/setpoint/internal/pki"
)

// seen records what the handler behind the filter got.
type seen struct {
	called bool
	user   user.Info
	header http.Header
}

func (s *seen) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.called = true
		s.user, _ = request.UserFrom(r.Context())
		s.header = r.Header.Clone()
	})
}

const goodToken = "good-token-0123456789"

func testTokens(t *testing.T) *authn.Tokens {
	t.Helper()
	line, err := authn.TokenLine(goodToken, &user.DefaultInfo{Name: "alice", UID: "u1", Groups: []string{"dev"}})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := authn.ParseTokenFile(strings.NewReader("# tokens\n\n" + line + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func TestWith(t *testing.T) {
	auth := authn.Union(authn.Bearer(testTokens(t)))
	for _, tc := range []struct {
		name, path, authorization string
		wantUser                  string
		wantGroups                []string
		wantCode                  int
	}{
		{"token", "/api/v1/namespaces", "Bearer " + goodToken, "alice", []string{"dev", user.AllAuthenticated}, 200},
		{"scheme in lower case", "/api", "bearer " + goodToken, "alice", []string{"dev", user.AllAuthenticated}, 200},
		{"no credential", "/api/v1/namespaces", "", "", nil, 401},
		{"unknown token", "/version", "Bearer " + goodToken + "x", "", nil, 401},
		{"empty token", "/version", "Bearer ", "", nil, 401},
		{"other scheme", "/metrics", "Basic YWxpY2U6cGFzcw==", "", nil, 401},
		{"health without credential", "/readyz", "", user.Anonymous, []string{user.AllUnauthenticated}, 200},
		{"health subpath with a bad token", "/livez/ping", "Bearer nope", user.Anonymous, []string{user.AllUnauthenticated}, 200},
		{"health with a token", "/healthz", "Bearer " + goodToken, "alice", []string{"dev", user.AllAuthenticated}, 200},
		{"not a health path", "/readyzz", "", "", nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got seen
			req := httptest.NewRequest("GET", tc.path, nil)
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			rec := httptest.NewRecorder()
			authn.With(got.handler(), auth, nil).ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			if tc.wantCode == 401 {
				if got.called {
					t.Error("the handler ran for a refused request")
				}
				var status metav1.Status
				if err := json.Unmarshal(rec.Body.Bytes(), &status); err != nil || status.Reason != metav1.StatusReasonUnauthorized {
					t.Errorf("body %s: %v", rec.Body, err)
				}
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate")
				}
				if strings.Contains(rec.Body.String(), "token") {
					t.Errorf("the 401 says why: %s", rec.Body)
				}
				return
			}
			if got.user == nil || got.user.GetName() != tc.wantUser || !slices.Equal(got.user.GetGroups(), tc.wantGroups) {
				t.Errorf("user %+v, want %s in %v", got.user, tc.wantUser, tc.wantGroups)
			}
			if got.header.Get("Authorization") != "" {
				t.Error("the Authorization header reached the handler")
			}
		})
	}
}

func TestAnonymous(t *testing.T) {
	auth := authn.Union(authn.Bearer(testTokens(t)), authn.Anonymous())
	for _, tc := range []struct {
		name, authorization string
		wantCode            int
		wantUser            string
	}{
		{"no credential", "", 200, user.Anonymous},
		{"good token", "Bearer " + goodToken, 200, "alice"},
		{"bad token is not anonymous", "Bearer wrong", 401, ""},
		{"other scheme is not anonymous", "Basic eDp5", 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got seen
			req := httptest.NewRequest("GET", "/api", nil)
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			rec := httptest.NewRecorder()
			authn.With(got.handler(), auth, nil).ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("code %d, want %d", rec.Code, tc.wantCode)
			}
			if tc.wantCode == 200 && got.user.GetName() != tc.wantUser {
				t.Errorf("user %q, want %q", got.user.GetName(), tc.wantUser)
			}
			if tc.wantUser == user.Anonymous && slices.Contains(got.user.GetGroups(), user.AllAuthenticated) {
				t.Error("anonymous is in system:authenticated")
			}
		})
	}
}

func TestFailedHandler(t *testing.T) {
	called := false
	failed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		if r.Header.Get("Authorization") != "" {
			t.Error("the failure handler saw the Authorization header")
		}
		authn.Unauthorized(w, r)
	})
	req := httptest.NewRequest("GET", "/api", nil)
	req.Header.Set("Authorization", "Bearer secret-that-must-not-be-logged")
	rec := httptest.NewRecorder()
	authn.With(http.NotFoundHandler(), authn.Union(), failed).ServeHTTP(rec, req)
	if !called || rec.Code != 401 {
		t.Errorf("failed handler called %v, code %d", called, rec.Code)
	}
}

func TestClientCert(t *testing.T) {
	now := time.Now()
	ca, err := pki.NewCA("ca", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("other", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(ca *pki.CA, cn string, orgs []string, from, to time.Time) *x509.Certificate {
		p, err := ca.IssueClient(cn, orgs, from, to)
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.TLS()
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	serving, err := ca.IssueServing([]string{"localhost"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	servingCert, err := serving.TLS()
	if err != nil {
		t.Fatal(err)
	}
	auth := authn.ClientCert(ca.Pool(), func() time.Time { return now })
	valid := [2]time.Time{now.Add(-time.Minute), now.Add(time.Hour)}
	for _, tc := range []struct {
		name     string
		cert     *x509.Certificate
		wantOK   bool
		wantErr  bool
		wantUser string
	}{
		{"none", nil, false, false, ""},
		{"valid", leaf(ca, "bob", []string{"ops", "dev"}, valid[0], valid[1]), true, false, "bob"},
		{"other CA", leaf(other, "bob", nil, valid[0], valid[1]), false, true, ""},
		{"expired", leaf(ca, "bob", nil, now.Add(-2*time.Hour), now.Add(-time.Hour)), false, true, ""},
		{"not yet valid", leaf(ca, "bob", nil, now.Add(time.Hour), now.Add(2*time.Hour)), false, true, ""},
		{"no name", leaf(ca, "", []string{"system:masters"}, valid[0], valid[1]), false, true, ""},
		{"serving certificate", servingCert.Leaf, false, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/api", nil)
			req.TLS = &tls.ConnectionState{}
			if tc.cert != nil {
				req.TLS.PeerCertificates = []*x509.Certificate{tc.cert}
			}
			resp, ok, err := auth.AuthenticateRequest(req)
			if ok != tc.wantOK || (err != nil) != tc.wantErr {
				t.Fatalf("ok %v err %v, want ok %v error %v", ok, err, tc.wantOK, tc.wantErr)
			}
			if ok && (resp.User.GetName() != tc.wantUser || !slices.Equal(resp.User.GetGroups(), []string{"dev", "ops"})) {
				t.Errorf("user %+v", resp.User)
			}
		})
	}
}

// TestUnionTriesAll checks that a bad credential of one kind does not hide
// a good one of another, and that errors survive when none is good.
func TestUnionTriesAll(t *testing.T) {
	bad := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
		return nil, false, errBad
	})
	none := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) { return nil, false, nil })
	good := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
		return &authenticator.Response{User: &user.DefaultInfo{Name: "x"}}, true, nil
	})
	req := httptest.NewRequest("GET", "/", nil)
	if _, ok, err := authn.Union(bad, none, good).AuthenticateRequest(req); !ok || err != nil {
		t.Errorf("bad, none, good: ok %v err %v", ok, err)
	}
	if _, ok, err := authn.Union(none, bad).AuthenticateRequest(req); ok || err == nil {
		t.Errorf("none, bad: ok %v err %v", ok, err)
	}
	if _, ok, err := authn.Union(none).AuthenticateRequest(req); ok || err != nil {
		t.Errorf("none: ok %v err %v", ok, err)
	}
}

var errBad = errors.New("bad")

// TestClientCertRemembersValidity checks that a chain verified once is
// still refused once its certificate expires, and when it is presented
// with another CA's certificate in place of the one verified.
func TestClientCertRemembersValidity(t *testing.T) {
	now := time.Now()
	ca, err := pki.NewCA("ca", now, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("other", now, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *pki.CA) *x509.Certificate {
		p, err := ca.IssueClient("bob", nil, now.Add(-time.Minute), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.TLS()
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	clock := now
	auth := authn.ClientCert(ca.Pool(), func() time.Time { return clock })
	check := func(cert *x509.Certificate) error {
		req := httptest.NewRequest("GET", "/api", nil)
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		_, _, err := auth.AuthenticateRequest(req)
		return err
	}
	bob := issue(ca)
	for range 2 {
		if err := check(bob); err != nil {
			t.Fatalf("valid certificate refused: %v", err)
		}
	}
	if err := check(issue(other)); err == nil {
		t.Error("a certificate of another CA was accepted after one of the CA was")
	}
	clock = now.Add(90 * time.Minute)
	if err := check(bob); err == nil {
		t.Error("a certificate verified before it expired was accepted after")
	}
	clock = now.Add(-2 * time.Minute)
	if err := check(bob); err == nil {
		t.Error("a certificate verified while valid was accepted before its start")
	}
}

// BenchmarkClientCert is the cost of authenticating one request of a
// kept-open connection by its client certificate.
func BenchmarkClientCert(b *testing.B) {
	now := time.Now()
	ca, err := pki.NewCA("ca", now, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	p, err := ca.IssueClient("bob", []string{"dev"}, now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	c, err := p.TLS()
	if err != nil {
		b.Fatal(err)
	}
	auth := authn.ClientCert(ca.Pool(), nil)
	req := httptest.NewRequest("GET", "/api", nil)
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Leaf}}
	for b.Loop() {
		if _, ok, err := auth.AuthenticateRequest(req); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
