package authn_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/setpoint/setpoint/internal/authn"
	"github.com/setpoint/setpoint/internal/pki"
)

// issuer is an OpenID Connect issuer served by the test on loopback over
// TLS, with keys of its own.
type issuer struct {
	srv    *httptest.Server
	caFile string

	mu sync.Mutex
	// keys are the signing keys by key ID; the key set serves their
	// public halves.
	keys map[string]crypto.Signer
	// jwks, when set, replaces the key set's answer ("hang" waits until
	// the request ends).
	jwks string
	// fetches counts requests for the key set.
	fetches int
}

const clientID = "setpoint"

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{keys: map[string]crypto.Signer{"rsa": rsaKey, "ec": ecKey}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/keys",
			"authorization_endpoint": is.srv.URL + "/auth", "id_token_signing_alg_values_supported": []string{"RS256", "ES256", "none", "HS256"},
		})
	})
	mux.HandleFunc("/keys", is.serveKeys)
	is.srv = httptest.NewTLSServer(mux)
	t.Cleanup(is.srv.Close)
	is.caFile = filepath.Join(t.TempDir(), "issuer-ca.crt")
	if err := pki.WriteFile(is.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw})); err != nil {
		t.Fatal(err)
	}
	return is
}

func (is *issuer) serveKeys(w http.ResponseWriter, r *http.Request) {
	is.mu.Lock()
	is.fetches++
	mode := is.jwks
	var set jose.JSONWebKeySet
	for kid, k := range is.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Use: "sig"})
	}
	is.mu.Unlock()
	switch mode {
	case "hang":
		<-r.Context().Done()
	case "":
		json.NewEncoder(w).Encode(set)
	default:
		w.Write([]byte(mode))
	}
}

func (is *issuer) set(f func(is *issuer)) {
	is.mu.Lock()
	defer is.mu.Unlock()
	f(is)
}

// authenticator returns a new OIDC authenticator for the issuer.
func (is *issuer) authenticator(t testing.TB, tune ...func(*authn.OIDCOptions)) *authn.OIDC {
	t.Helper()
	opts := authn.OIDCOptions{IssuerURL: is.srv.URL, ClientID: clientID, GroupsClaim: "groups", CAFile: is.caFile, Timeout: 2 * time.Second}
	for _, f := range tune {
		f(&opts)
	}
	o, err := authn.NewOIDC(opts)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// claims are the usual claims of a token of the issuer for alice.
func (is *issuer) claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": is.srv.URL, "aud": clientID, "sub": "alice", "groups": []string{"dev", "ops"},
		"email": "alice@example.com", "email_verified": true,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// sign signs claims with key kid of the issuer (or key, if given) with alg.
func (is *issuer) sign(t testing.TB, alg jose.SignatureAlgorithm, kid string, claims map[string]any, key ...any) string {
	t.Helper()
	var k any
	if len(key) > 0 {
		k = key[0]
	} else {
		is.mu.Lock()
		k = is.keys[kid]
		is.mu.Unlock()
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unsigned returns a token with alg none and an empty signature.
func unsigned(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT", "kid": "rsa"}) + "." + enc(claims) + "."
}

func with(claims map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range claims {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestOIDC(t *testing.T) {
	is := newIssuer(t)
	o := is.authenticator(t)
	c := is.claims()
	now := time.Now()
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	for _, tc := range []struct {
		name   string
		token  string
		want   string
		groups []string
	}{
		{"RS256", is.sign(t, jose.RS256, "rsa", c), is.srv.URL + "#alice", []string{"dev", "ops"}},
		{"ES256", is.sign(t, jose.ES256, "ec", with(c, "groups", "solo")), is.srv.URL + "#alice", []string{"solo"}},
		{"audience list", is.sign(t, jose.RS256, "rsa", with(c, "aud", []string{"other", clientID})), is.srv.URL + "#alice", []string{"dev", "ops"}},
		{"no groups", is.sign(t, jose.RS256, "rsa", with(c, "groups", nil)), is.srv.URL + "#alice", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, ok, err := o.AuthenticateToken(ctx, tc.token)
			if !ok || err != nil {
				t.Fatalf("ok %v err %v", ok, err)
			}
			if resp.User.GetName() != tc.want || !slices.Equal(resp.User.GetGroups(), tc.groups) {
				t.Errorf("user %+v", resp.User)
			}
		})
	}

	bad := []struct {
		name  string
		token string
	}{
		{"alg none", unsigned(c)},
		{"alg none with a signature", strings.TrimSuffix(unsigned(c), ".") + "." + strings.Split(is.sign(t, jose.RS256, "rsa", c), ".")[2]},
		{"HS256 keyed with the public key", is.sign(t, jose.HS256, "rsa", c, mustJSON(t, is.keys["rsa"].Public()))},
		{"RS384", is.sign(t, jose.RS384, "rsa", c)},
		{"other key, known kid", is.sign(t, jose.RS256, "rsa", c, otherRSA)},
		{"other key, unknown kid", is.sign(t, jose.RS256, "stranger", c, otherRSA)},
		{"payload swapped", swapPayload(is.sign(t, jose.RS256, "rsa", c), with(c, "sub", "root"))},
		{"wrong audience", is.sign(t, jose.RS256, "rsa", with(c, "aud", "kubernetes"))},
		{"no audience", is.sign(t, jose.RS256, "rsa", with(c, "aud", nil))},
		{"expired", is.sign(t, jose.RS256, "rsa", with(c, "exp", now.Add(-time.Minute).Unix()))},
		{"no expiry", is.sign(t, jose.RS256, "rsa", with(c, "exp", nil))},
		{"not yet valid", is.sign(t, jose.RS256, "rsa", with(c, "nbf", now.Add(time.Hour).Unix()))},
		{"issued in the future", is.sign(t, jose.RS256, "rsa", with(c, "iat", now.Add(time.Hour).Unix()))},
		{"empty subject", is.sign(t, jose.RS256, "rsa", with(c, "sub", ""))},
		{"subject not a string", is.sign(t, jose.RS256, "rsa", with(c, "sub", 42))},
		{"groups not strings", is.sign(t, jose.RS256, "rsa", with(c, "groups", []any{1, 2}))},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if resp, ok, err := o.AuthenticateToken(ctx, tc.token); ok || err == nil {
				t.Fatalf("accepted: ok %v err %v resp %+v", ok, err, resp)
			}
		})
	}
	// Tokens of another issuer, or no JWT at all, are not this
	// authenticator's: not found, so another one may try.
	for _, token := range []string{is.sign(t, jose.RS256, "rsa", with(c, "iss", "https://elsewhere.example")), "a.b.c", "not-a-jwt", "..", "e30.e30.e30"} {
		if _, ok, err := o.AuthenticateToken(ctx, token); ok || err != nil {
			t.Errorf("token %.40q: ok %v err %v, want not found", token, ok, err)
		}
	}

	t.Run("email", func(t *testing.T) {
		o := is.authenticator(t, func(o *authn.OIDCOptions) { o.UsernameClaim = "email" })
		resp, ok, err := o.AuthenticateToken(ctx, is.sign(t, jose.ES256, "ec", c))
		if !ok || err != nil || resp.User.GetName() != "alice@example.com" {
			t.Fatalf("ok %v err %v", ok, err)
		}
		if _, ok, err := o.AuthenticateToken(ctx, is.sign(t, jose.ES256, "ec", with(c, "email_verified", false))); ok || err == nil {
			t.Error("an unverified email was accepted")
		}
	})

	t.Run("key rotation", func(t *testing.T) {
		fresh, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		is.set(func(is *issuer) { is.keys["rotated"] = fresh; is.fetches = 0 })
		if _, ok, err := o.AuthenticateToken(ctx, is.sign(t, jose.ES256, "rotated", c)); !ok || err != nil {
			t.Fatalf("a token of a new key: ok %v err %v", ok, err)
		}
		if is.fetches != 1 {
			t.Errorf("%d key set fetches for a new key, want 1", is.fetches)
		}
		if _, ok, _ := o.AuthenticateToken(ctx, is.sign(t, jose.RS256, "rsa", c)); !ok || is.fetches != 1 {
			t.Errorf("a known key: ok %v, %d fetches", ok, is.fetches)
		}
	})
}

// TestOIDCHostileIssuer points the authenticator at a key set that hangs,
// is too large or is garbage: every token is refused, in bounded time.
func TestOIDCHostileIssuer(t *testing.T) {
	for _, mode := range []string{"hang", `{"keys":[` + strings.Repeat(`{"kty":"oct","k":"AAAA"},`, 60000) + `{}]}`, "not json", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"rsa"}]}`} {
		name := mode
		if len(name) > 20 {
			name = name[:20]
		}
		t.Run(name, func(t *testing.T) {
			is := newIssuer(t)
			is.set(func(is *issuer) { is.jwks = mode })
			o := is.authenticator(t, func(o *authn.OIDCOptions) { o.Timeout = 500 * time.Millisecond })
			start := time.Now()
			if _, ok, err := o.AuthenticateToken(context.Background(), is.sign(t, jose.RS256, "rsa", is.claims())); ok || err == nil {
				t.Fatalf("accepted with key set %.30q: ok %v err %v", mode, ok, err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	t.Run("issuer down", func(t *testing.T) {
		is := newIssuer(t)
		o := is.authenticator(t)
		token := is.sign(t, jose.RS256, "rsa", is.claims())
		is.srv.Close()
		if _, ok, err := o.AuthenticateToken(context.Background(), token); ok || err == nil {
			t.Fatalf("ok %v err %v", ok, err)
		}
	})
}

func TestNewOIDCErrors(t *testing.T) {
	for _, opts := range []authn.OIDCOptions{
		{IssuerURL: "http://issuer.example", ClientID: "x"},
		{IssuerURL: "https://issuer.example?x=1", ClientID: "x"},
		{IssuerURL: "https://issuer.example"},
		{IssuerURL: "https://issuer.example", ClientID: "x", CAFile: "/nonexistent"},
	} {
		if _, err := authn.NewOIDC(opts); err == nil {
			t.Errorf("NewOIDC(%+v) accepted", opts)
		}
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: v})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// swapPayload replaces the payload of a signed token, keeping its header
// and signature.
func swapPayload(token string, claims map[string]any) string {
	parts := strings.Split(token, ".")
	b, _ := json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}
