package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/setpoint/setpoint/internal/authn"
	"github.com/setpoint/setpoint/internal/pki"
	"github.com/setpoint/setpoint/internal/server"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// caOf returns a pool of the CA in the kubeconfig of s.
func caOf(t *testing.T, kubeconfig string) (*x509.CertPool, []byte) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	pem := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster].CertificateAuthorityData
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("kubeconfig %s carries no CA", kubeconfig)
	}
	return pool, pem
}

// tlsClient returns a client that trusts roots and presents certs.
func tlsClient(roots *x509.CertPool, certs ...tls.Certificate) *http.Client {
	return &http.Client{Timeout: requestLimit, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs},
	}}
}

// wantUnauthorized sends GET url with hc and checks the 401 Status.
func wantUnauthorized(t *testing.T, hc *http.Client, url string, header ...string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var status metav1.Status
	if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
		t.Fatalf("GET %s: %d, body not a Status: %v", url, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusUnauthorized || status.Kind != "Status" || status.Reason != metav1.StatusReasonUnauthorized {
		t.Errorf("GET %s %v: %d %+v, want 401 Unauthorized", url, header, resp.StatusCode, status)
	}
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("GET %s: 401 without WWW-Authenticate", url)
	}
}

// TestSecureByDefault checks what a server with no security settings
// does: HTTPS only, with a certificate of the CA in its kubeconfig; every
// path but health checks needs a credential; bad client certificates get
// 401.
func TestSecureByDefault(t *testing.T) {
	s := setpointtest.Start(t, setpointtest.Options{})
	roots, _ := caOf(t, s.Kubeconfig)
	anon := tlsClient(roots)

	for _, path := range []string{"/readyz", "/livez", "/healthz", "/readyz/ping"} {
		resp, err := anon.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s without credentials: %d, want it served", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/api/v1/namespaces", "/version", "/metrics", "/apis", "/openapi/v2", "/debug/pprof/"} {
		wantUnauthorized(t, anon, s.URL+path)
	}
	wantUnauthorized(t, anon, s.URL+"/api/v1/namespaces", "Authorization", "Bearer not-a-token")
	wantUnauthorized(t, anon, s.URL+"/api/v1/namespaces", "Authorization", "Basic YWRtaW46YWRtaW4=")

	// Plain HTTP to the TLS port gets nothing of the API.
	if code, _ := plainGet(t, strings.Replace(s.URL, "https://", "http://", 1)+"/api/v1/namespaces"); code == http.StatusOK {
		t.Error("plain HTTP was served")
	}
	// TLS 1.1 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get(s.URL + "/readyz"); err == nil {
		resp.Body.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	// Client certificates: another CA's, an expired one of the server's
	// own CA (forged here from its key), and one without a name, all 401;
	// a valid one is in.
	now := time.Now()
	other, err := pki.NewCA("other", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	own := loadCA(t, filepath.Join(s.DataDir, "pki"))
	cert := func(ca *pki.CA, cn string, from, to time.Time) tls.Certificate {
		p, err := ca.IssueClient(cn, []string{pki.AdminGroup}, from, to)
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.TLS()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	wantUnauthorized(t, tlsClient(roots, cert(other, "mallory", now.Add(-time.Minute), now.Add(time.Hour))), s.URL+"/api/v1/namespaces")
	wantUnauthorized(t, tlsClient(roots, cert(own, "late", now.Add(-2*time.Hour), now.Add(-time.Hour))), s.URL+"/api/v1/namespaces")
	wantUnauthorized(t, tlsClient(roots, cert(own, "", now.Add(-time.Minute), now.Add(time.Hour))), s.URL+"/api/v1/namespaces")
	// A bad certificate with a good token is still let in by the token,
	// as Kubernetes' union of authenticators does: covered in package
	// authn. A good certificate:
	resp, err := tlsClient(roots, cert(own, "root", now.Add(-time.Minute), now.Add(time.Hour))).Get(s.URL + "/api/v1/namespaces")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET with a valid client certificate of group %s: %d", pki.AdminGroup, resp.StatusCode)
	}
}

// loadCA reads the CA a server made in dir.
func loadCA(t *testing.T, dir string) *pki.CA {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// plainGet sends GET url with no TLS and no credentials.
func plainGet(t *testing.T, url string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: requestLimit}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRestartKeepsPKI checks that a restart serves the same CA, so
// kubeconfigs handed out keep working.
func TestRestartKeepsPKI(t *testing.T) {
	dir := t.TempDir()
	s := setpointtest.Start(t, setpointtest.Options{DataDir: dir})
	_, before := caOf(t, s.Kubeconfig)
	old := client(t, s)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s = setpointtest.Start(t, setpointtest.Options{DataDir: dir})
	if _, after := caOf(t, s.Kubeconfig); !bytes.Equal(before, after) {
		t.Error("the CA changed across a restart")
	}
	// The old client (old CA, old admin certificate) still works.
	resp, err := old.Get(s.URL + "/api/v1/namespaces")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the kubeconfig of the first run: %d after a restart", resp.StatusCode)
	}
}

// TestInsecureHTTP checks the explicit plain-HTTP mode: an http URL in
// the kubeconfig, still no access without credentials unless anonymous
// access is on too, and both refused on an address that is not loopback
// unless confirmed.
func TestInsecureHTTP(t *testing.T) {
	r := startReplica(t, "", func(c *server.Config) { c.InsecureHTTP = true })
	if !strings.HasPrefix(r.url, "http://127.0.0.1:") {
		t.Errorf("kubeconfig server %q, want http://127.0.0.1:port", r.url)
	}
	if code, body := plainGet(t, r.url+"/api/v1/namespaces"); code != http.StatusUnauthorized {
		t.Errorf("plain HTTP without credentials: %d %s", code, body)
	}
	if code, _ := plainGet(t, r.url+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz over plain HTTP: %d", code)
	}

	// Anonymous requests get in, and RBAC decides: system:unauthenticated
	// may read /version, nothing else (as in Kubernetes).
	r = startReplica(t, "", func(c *server.Config) { c.InsecureHTTP, c.AnonymousAuth = true, true })
	if code, body := plainGet(t, r.url+"/version"); code != http.StatusOK {
		t.Errorf("anonymous over plain HTTP: %d %s", code, body)
	}
	if code, body := plainGet(t, r.url+"/api/v1/namespaces"); code != http.StatusForbidden || !strings.Contains(body, `User \"system:anonymous\" cannot list resource \"namespaces\"`) {
		t.Errorf("anonymous list over plain HTTP: %d %s, want 403", code, body)
	}

	for _, tc := range []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"insecure", server.Config{Listen: "0.0.0.0:0", InsecureHTTP: true}, "--insecure-http"},
		{"anonymous", server.Config{Listen: ":0", AnonymousAuth: true}, "--anonymous-auth"},
		{"anonymous on a host address", server.Config{Listen: "192.0.2.1:6443", AnonymousAuth: true}, "--allow-insecure-non-loopback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir = t.TempDir()
			_, err := server.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "not a loopback address") {
				t.Errorf("New: %v, want a refusal naming %s", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(tc.cfg.DataDir, "setpoint.db")); err == nil {
				t.Error("the refused server created its database")
			}
		})
	}
	t.Run("confirmed", func(t *testing.T) {
		r := startReplica(t, "", func(c *server.Config) {
			c.Listen, c.InsecureHTTP, c.AnonymousAuth, c.AllowInsecureNonLoopback = "0.0.0.0:0", true, true, true
		})
		if code, _ := plainGet(t, r.url+"/version"); code != http.StatusOK {
			t.Errorf("anonymous over plain HTTP on every address: %d", code)
		}
	})
}

// TestUserCertificateFiles checks --tls-cert-file, --tls-private-key-file
// and --client-ca-file: the server presents the given certificate and
// accepts client certificates of the given CA only.
func TestUserCertificateFiles(t *testing.T) {
	now := time.Now()
	userCA, err := pki.NewCA("user-ca", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := userCA.IssueServing([]string{"127.0.0.1"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	client, err := userCA.IssueClient("ops", []string{pki.AdminGroup}, now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(files, name)
		if err := pki.WriteFile(p, data); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var dir string
	r := startReplica(t, "", func(c *server.Config) {
		dir = c.DataDir
		c.TLSCertFile, c.TLSKeyFile = write("tls.crt", serving.CertPEM), write("tls.key", serving.KeyPEM)
		c.ClientCAFile = write("clients.crt", userCA.CertPEM)
	})
	kubeconfig := filepath.Join(dir, "kubeconfig")
	url := r.url + "/api/v1/namespaces"
	clientCert, err := client.TLS()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tlsClient(userCA.Pool(), clientCert).Get(url)
	if err != nil {
		t.Fatalf("GET with the user's CA and client certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET with the user's client certificate: %d", resp.StatusCode)
	}
	// The generated admin certificate is not trusted any more, so the
	// kubeconfig does not carry it.
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if ai := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]; len(ai.ClientCertificateData) != 0 {
		t.Error("the kubeconfig carries a client certificate the server does not accept")
	}
	admin := loadPair(t, filepath.Join(dir, "pki", "admin"))
	wantUnauthorized(t, tlsClient(userCA.Pool(), admin), url)
}

// loadPair reads base.crt and base.key.
func loadPair(t *testing.T, base string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(base+".crt", base+".key")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTokenAuthFile checks bearer tokens of a token file over the real
// server: the token lets its user in, anything else is 401, and a
// malformed file stops the server from starting.
func TestTokenAuthFile(t *testing.T) {
	token := authn.NewToken()
	line, err := authn.TokenLine(token, &user.DefaultInfo{Name: "ops", UID: "1", Groups: []string{pki.AdminGroup}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "tokens")
	if err := pki.WriteFile(file, []byte("# operators\n"+line+"\n")); err != nil {
		t.Fatal(err)
	}
	var dir string
	r := startReplica(t, "", func(c *server.Config) { dir, c.TokenAuthFile = c.DataDir, file })
	roots, _ := caOf(t, filepath.Join(dir, "kubeconfig"))
	hc := tlsClient(roots)
	url := r.url + "/api/v1/namespaces"
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET with the token: %d", resp.StatusCode)
	}
	hash := strings.TrimPrefix(authn.HashToken(token), "sha256:")
	for _, bad := range []string{token + "A", token[:len(token)-1], strings.ToLower(token), hash, "sha256:" + hash, token + " " + token, "é"} {
		wantUnauthorized(t, hc, url, "Authorization", "Bearer "+bad)
	}

	for name, content := range map[string]string{"plain token": token + ",ops,1\n", "short": "sha256:abc,ops,1\n"} {
		bad := filepath.Join(t.TempDir(), "tokens")
		if err := pki.WriteFile(bad, []byte(content)); err != nil {
			t.Fatal(err)
		}
		_, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", TokenAuthFile: bad})
		if err == nil || !strings.Contains(err.Error(), "line 1") || strings.Contains(err.Error(), token) {
			t.Errorf("%s: New = %v, want an error naming the line without its content", name, err)
		}
	}
}

// TestOIDCOverTheWire runs a server that accepts ID tokens of an issuer
// the test serves on loopback: a token of the issuer lets its user in,
// forged or misdirected ones get 401.
func TestOIDCOverTheWire(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: "RS256"}}}
	issuer := httptest.NewTLSServer(idp)
	t.Cleanup(issuer.Close)
	idp.SetIssuer(issuer.URL)
	caFile := filepath.Join(t.TempDir(), "issuer.crt")
	if err := pki.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer.Certificate().Raw})); err != nil {
		t.Fatal(err)
	}
	var dir string
	r := startReplica(t, "", func(c *server.Config) {
		dir = c.DataDir
		c.OIDC = authn.OIDCOptions{IssuerURL: issuer.URL, ClientID: "setpoint", GroupsClaim: "groups", CAFile: caFile}
	})
	roots, _ := caOf(t, filepath.Join(dir, "kubeconfig"))
	hc := tlsClient(roots)
	claims := func(aud string) string {
		now := time.Now()
		return fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","groups":[%q],"iat":%d,"exp":%d}`,
			issuer.URL, aud, pki.AdminGroup, now.Unix(), now.Add(time.Hour).Unix())
	}
	url := r.url + "/api/v1/namespaces"
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+oidctest.SignIDToken(key, "k1", "RS256", claims("setpoint")))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET with an ID token of the issuer: %d", resp.StatusCode)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := oidctest.SignIDToken(key, "k1", "RS256", claims("setpoint"))
	parts := strings.Split(good, ".")
	for name, token := range map[string]string{
		"other audience": oidctest.SignIDToken(key, "k1", "RS256", claims("kubernetes")),
		"other key":      oidctest.SignIDToken(other, "k1", "RS256", claims("setpoint")),
		"alg none":       base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`)) + "." + parts[1] + ".",
		"truncated":      parts[0] + "." + parts[1],
	} {
		t.Run(name, func(t *testing.T) { wantUnauthorized(t, hc, url, "Authorization", "Bearer "+token) })
	}
}
