package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/internal/authn"
	"github.com/setpoint/setpoint/internal/pki"
)

// Identity of the built-in controllers on the loopback connection: a
// privileged user, whose credential lives only in this process.
const (
	ControllersUser  = "system:setpoint-controllers"
	ControllersGroup = "system:masters"
)

// loopbackServerName is the TLS server name the controllers ask for; the
// server answers it with a certificate made at start for them alone, so
// they trust nothing else whatever serving certificate the user gave.
const loopbackServerName = "setpoint-loopback-client"

// security is what New derives from the Config's TLS and authentication
// settings.
type security struct {
	// tls is nil with InsecureHTTP.
	tls *tls.Config
	// auth authenticates every request but health checks.
	auth authenticator.Request
	// loopback reaches this server as the controllers' user; Host is
	// filled in once the server listens.
	loopback rest.Config
	// caPEM is the CA clients trust, nil when the user gave the serving
	// certificate.
	caPEM []byte
	// admin is the admin client certificate for the kubeconfig; empty when
	// the server does not trust the CA that signed it.
	admin pki.Pair
}

// scheme is the URL scheme of the server.
func (s *security) scheme() string {
	if s.tls == nil {
		return "http"
	}
	return "https"
}

// newSecurity builds TLS serving and the authenticators from cfg.
func newSecurity(cfg *Config) (*security, error) {
	token := authn.NewToken()
	tokens := (&authn.Tokens{}).WithToken(token, &user.DefaultInfo{Name: ControllersUser, Groups: []string{ControllersGroup}})
	if cfg.TokenAuthFile != "" {
		file, err := authn.LoadTokenFile(cfg.TokenAuthFile)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		tokens = file.WithToken(token, &user.DefaultInfo{Name: ControllersUser, Groups: []string{ControllersGroup}})
	}
	sec := &security{loopback: rest.Config{BearerToken: token, QPS: -1}}
	var auths []authenticator.Request
	if !cfg.InsecureHTTP {
		clientCAs, err := sec.setupTLS(cfg)
		if err != nil {
			return nil, err
		}
		auths = append(auths, authn.ClientCert(clientCAs, nil))
	}
	bearers := []authenticator.Token{tokens}
	if cfg.OIDC.IssuerURL != "" {
		oidc, err := authn.NewOIDC(cfg.OIDC)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		bearers = append(bearers, oidc)
	}
	auths = append(auths, authn.Bearer(bearers...))
	if cfg.AnonymousAuth {
		auths = append(auths, authn.Anonymous())
	}
	sec.auth = authn.Union(auths...)
	return sec, nil
}

// setupTLS makes or loads the PKI and the TLS configuration, and returns
// the CAs that client certificates are checked against.
func (sec *security) setupTLS(cfg *Config) (*x509.CertPool, error) {
	hosts, err := servingHosts(cfg)
	if err != nil {
		return nil, err
	}
	bundle, err := pki.Ensure(pki.Options{Dir: cfg.PKIDir, Hosts: hosts})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	sec.caPEM, sec.admin = bundle.CA.CertPEM, bundle.Admin
	serving, err := bundle.Serving.TLS()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if cfg.TLSCertFile != "" {
		if serving, err = tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			return nil, fmt.Errorf("server: --tls-cert-file/--tls-private-key-file: %w", err)
		}
		sec.caPEM = nil
	}
	clientCAs := bundle.CA.Pool()
	if cfg.ClientCAFile != "" {
		data, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server: --client-ca-file: %w", err)
		}
		clientCAs = x509.NewCertPool()
		if !clientCAs.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("server: --client-ca-file %s holds no PEM certificate", cfg.ClientCAFile)
		}
		sec.admin = pki.Pair{}
	}
	loopback, loopbackCA, err := pki.SelfSigned(loopbackServerName, time.Now(), pki.CAValidity)
	if err != nil {
		return nil, fmt.Errorf("server: loopback certificate: %w", err)
	}
	sec.loopback.TLSClientConfig = rest.TLSClientConfig{ServerName: loopbackServerName, CAData: loopbackCA}
	sec.tls = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Client certificates are checked by the authenticator, so a bad
		// one gets a 401 Status rather than a failed handshake.
		ClientAuth: tls.RequestClientCert,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName == loopbackServerName {
				return &loopback, nil
			}
			return &serving, nil
		},
	}
	return clientCAs, nil
}

// servingHosts are the names the generated serving certificate is for:
// localhost, the loopback addresses, the machine's host name, the listen
// host unless it is every address, and Config.TLSSANs.
func servingHosts(cfg *Config) ([]string, error) {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = append(hosts, name)
	}
	host, err := listenHost(cfg)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		hosts = append(hosts, host)
	}
	return append(hosts, cfg.TLSSANs...), nil
}

// listenHost is the host part of the address the server listens on.
func listenHost(cfg *Config) (string, error) {
	addr := cfg.Listen
	if cfg.Listener != nil {
		addr = cfg.Listener.Addr().String()
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", addr, err)
	}
	return host, nil
}

// checkExposure refuses plain HTTP and anonymous access on an address
// other machines can reach, unless AllowInsecureNonLoopback says the user
// means it.
func checkExposure(cfg *Config) error {
	if (!cfg.InsecureHTTP && !cfg.AnonymousAuth) || cfg.AllowInsecureNonLoopback {
		return nil
	}
	host, err := listenHost(cfg)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	var what []error
	if cfg.InsecureHTTP {
		what = append(what, errors.New("plain HTTP (--insecure-http) sends credentials and objects unencrypted"))
	}
	if cfg.AnonymousAuth {
		what = append(what, errors.New("anonymous access (--anonymous-auth) lets anyone who reaches the port in"))
	}
	return fmt.Errorf("refusing to serve on %q, which is not a loopback address: %w; "+
		"listen on 127.0.0.1, or add --allow-insecure-non-loopback if other machines must reach it so",
		host, errors.Join(what...))
}

// reachable returns the address clients on this machine use for addr: a
// listener on every address is reached on 127.0.0.1.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// defaultPKIDir is Config.PKIDir's default inside the data directory.
func defaultPKIDir(dataDir string) string { return filepath.Join(dataDir, "pki") }
