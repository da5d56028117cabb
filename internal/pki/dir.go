package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Lifetimes of what Ensure makes, and how long before its end a
// certificate is replaced.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	CertValidity = 365 * 24 * time.Hour
	RenewBefore  = 30 * 24 * time.Hour
)

// The administrator's identity in the admin client certificate: user
// AdminUser in group AdminGroup, which is allowed everything.
const (
	AdminUser  = "setpoint-admin"
	AdminGroup = "system:masters"
)

// Files of a PKI directory; each key sits beside its certificate with the
// extension .key.
const (
	caBase      = "ca"
	servingBase = "serving"
	adminBase   = "admin"
	lockName    = ".lock"
)

// Options say where Ensure keeps the files and what the serving
// certificate must cover.
type Options struct {
	// Dir holds the files; it is created with mode 0700.
	Dir string
	// Hosts are the DNS names and IP addresses the serving certificate
	// must be valid for.
	Hosts []string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Bundle is what Ensure returns: the CA and the certificates it signed.
type Bundle struct {
	CA      *CA
	Serving Pair
	Admin   Pair
}

// Ensure returns the PKI kept in opts.Dir, creating what is missing: a CA
// (10 years), a serving certificate for opts.Hosts and an admin client
// certificate (1 year each). A certificate is replaced when it is not
// signed by the CA, ends within RenewBefore, or (the serving one) misses
// one of opts.Hosts; a new serving certificate keeps the names of the one
// it replaces, so servers sharing the directory each find theirs. Servers
// sharing the directory take turns under a file lock. Files are mode 0600.
// An expired CA is an error: replacing it would silently invalidate every
// kubeconfig handed out.
func Ensure(opts Options) (*Bundle, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create directory: %w", err)
	}
	if err := os.Chmod(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	l, err := lock(filepath.Join(opts.Dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if l != nil {
		defer l.Close()
	}
	d := dir(opts.Dir)
	ca, err := d.ca(now())
	if err != nil {
		return nil, err
	}
	serving, err := d.leaf(servingBase, ca, x509.ExtKeyUsageServerAuth, now(),
		func(c *x509.Certificate) bool { return covers(c, opts.Hosts) },
		func(old *x509.Certificate) (Pair, error) {
			hosts := opts.Hosts
			if old != nil {
				hosts = union(Hosts(old), hosts)
			}
			return ca.IssueServing(hosts, now(), CertValidity)
		})
	if err != nil {
		return nil, err
	}
	admin, err := d.leaf(adminBase, ca, x509.ExtKeyUsageClientAuth, now(),
		func(c *x509.Certificate) bool {
			return c.Subject.CommonName == AdminUser && slices.Equal(c.Subject.Organization, []string{AdminGroup})
		},
		func(*x509.Certificate) (Pair, error) {
			return ca.IssueClient(AdminUser, []string{AdminGroup}, now().Add(-backdate), now().Add(CertValidity))
		})
	if err != nil {
		return nil, err
	}
	return &Bundle{CA: ca, Serving: serving, Admin: admin}, nil
}

// dir is a PKI directory.
type dir string

func (d dir) path(base, ext string) string { return filepath.Join(string(d), base+ext) }

// ca loads the CA, or makes one if its certificate is missing (a key
// without a certificate is what a crash during the first start leaves).
func (d dir) ca(now time.Time) (*CA, error) {
	certPEM, err := os.ReadFile(d.path(caBase, ".crt"))
	if errors.Is(err, fs.ErrNotExist) {
		ca, err := NewCA("setpoint-ca", now, CAValidity)
		if err != nil {
			return nil, err
		}
		keyPEM, err := ca.KeyPEM()
		if err != nil {
			return nil, err
		}
		if err := d.write(caBase, Pair{CertPEM: ca.CertPEM, KeyPEM: keyPEM}); err != nil {
			return nil, err
		}
		return ca, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pki: read CA: %w", err)
	}
	keyPEM, err := os.ReadFile(d.path(caBase, ".key"))
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key: %w", err)
	}
	ca, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, d)
	}
	if now.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("pki: the CA in %s expired at %v; move the directory away to make a new one", d, ca.Cert.NotAfter)
	}
	return ca, nil
}

// leaf loads the pair named base if ca signed it for usage, it is not
// about to expire, and ok accepts it; otherwise it writes and returns
// issue's, handing issue the certificate it replaces if ca signed it.
func (d dir) leaf(base string, ca *CA, usage x509.ExtKeyUsage, now time.Time,
	ok func(*x509.Certificate) bool, issue func(old *x509.Certificate) (Pair, error)) (Pair, error) {
	var old *x509.Certificate
	if p, err := d.read(base); err == nil {
		cert, err := p.TLS()
		if err == nil && ca.Verify(cert.Leaf, usage, now, 0) == nil {
			old = cert.Leaf
			if ca.Verify(cert.Leaf, usage, now, RenewBefore) == nil && ok(cert.Leaf) {
				return p, nil
			}
		}
	}
	p, err := issue(old)
	if err != nil {
		return Pair{}, err
	}
	if err := d.write(base, p); err != nil {
		return Pair{}, err
	}
	return p, nil
}

func (d dir) read(base string) (Pair, error) {
	certPEM, err := os.ReadFile(d.path(base, ".crt"))
	if err != nil {
		return Pair{}, err
	}
	keyPEM, err := os.ReadFile(d.path(base, ".key"))
	if err != nil {
		return Pair{}, err
	}
	return Pair{CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// write replaces the pair named base, key first, each file atomically.
func (d dir) write(base string, p Pair) error {
	if err := WriteFile(d.path(base, ".key"), p.KeyPEM); err != nil {
		return err
	}
	return WriteFile(d.path(base, ".crt"), p.CertPEM)
}

// WriteFile replaces path with data atomically, readable only by its
// owner (mode 0600), creating its directory (mode 0700) if needed.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// covers reports whether cert is valid for every one of hosts.
func covers(cert *x509.Certificate, hosts []string) bool {
	have := Hosts(cert)
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		if !slices.Contains(have, h) {
			return false
		}
	}
	return true
}

// union returns a followed by the elements of b not in a.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
