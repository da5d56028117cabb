package pki_test

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/setpoint/setpoint/internal/pki"
)

func ensure(t *testing.T, dir string, now time.Time, hosts ...string) *pki.Bundle {
	t.Helper()
	b, err := pki.Ensure(pki.Options{Dir: dir, Hosts: hosts, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func leaf(t *testing.T, p pki.Pair) *x509.Certificate {
	t.Helper()
	c, err := p.TLS()
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func TestEnsureMakesAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	now := time.Now()
	first := ensure(t, dir, now, "localhost", "127.0.0.1", "::1")

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode %v, want 0700", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode %v, want 0600", e.Name(), perm)
		}
		names = append(names, e.Name())
	}
	for _, want := range []string{"ca.crt", "ca.key", "serving.crt", "serving.key", "admin.crt", "admin.key"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s in %v", want, names)
		}
	}

	ca := first.CA.Cert
	if ca.PublicKeyAlgorithm != x509.ECDSA || !ca.IsCA || ca.NotAfter.Sub(now) < 9*365*24*time.Hour {
		t.Errorf("CA: %v IsCA=%v until %v", ca.PublicKeyAlgorithm, ca.IsCA, ca.NotAfter)
	}
	serving := leaf(t, first.Serving)
	if err := first.CA.Verify(serving, x509.ExtKeyUsageServerAuth, now, 0); err != nil {
		t.Errorf("serving certificate: %v", err)
	}
	if err := serving.VerifyHostname("::1"); err != nil {
		t.Error(err)
	}
	admin := leaf(t, first.Admin)
	if admin.Subject.CommonName != pki.AdminUser || !slices.Equal(admin.Subject.Organization, []string{pki.AdminGroup}) {
		t.Errorf("admin subject %v", admin.Subject)
	}
	if err := first.CA.Verify(admin, x509.ExtKeyUsageClientAuth, now, 0); err != nil {
		t.Errorf("admin certificate: %v", err)
	}

	again := ensure(t, dir, now.Add(time.Hour), "localhost")
	if !bytes.Equal(again.CA.CertPEM, first.CA.CertPEM) || !bytes.Equal(again.Serving.CertPEM, first.Serving.CertPEM) ||
		!bytes.Equal(again.Admin.KeyPEM, first.Admin.KeyPEM) {
		t.Error("a second Ensure replaced valid certificates")
	}
}

func TestEnsureRenews(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first := ensure(t, dir, now, "localhost")

	// A new name: a new serving certificate that keeps the old names.
	named := ensure(t, dir, now, "localhost", "api.example", "10.1.2.3")
	if bytes.Equal(named.Serving.CertPEM, first.Serving.CertPEM) {
		t.Fatal("serving certificate not replaced for a new name")
	}
	if !bytes.Equal(named.Admin.CertPEM, first.Admin.CertPEM) {
		t.Error("admin certificate replaced for a new serving name")
	}
	c := leaf(t, named.Serving)
	for _, h := range []string{"localhost", "api.example", "10.1.2.3"} {
		if err := c.VerifyHostname(h); err != nil {
			t.Error(err)
		}
	}
	kept := ensure(t, dir, now, "api.example")
	if !bytes.Equal(kept.Serving.CertPEM, named.Serving.CertPEM) {
		t.Error("serving certificate replaced though it covers the names")
	}

	// Near the end of their year, both leaves are replaced, by the same CA.
	late := now.Add(pki.CertValidity - pki.RenewBefore/2)
	renewed := ensure(t, dir, late, "localhost")
	if bytes.Equal(renewed.Serving.CertPEM, named.Serving.CertPEM) || bytes.Equal(renewed.Admin.CertPEM, named.Admin.CertPEM) {
		t.Error("certificates near expiry not replaced")
	}
	if !bytes.Equal(renewed.CA.CertPEM, first.CA.CertPEM) {
		t.Error("CA replaced")
	}
	if got := leaf(t, renewed.Admin).NotAfter; got.Before(late.Add(pki.CertValidity - time.Hour)) {
		t.Errorf("renewed admin certificate ends at %v", got)
	}

	// An expired CA is not silently replaced.
	_, err := pki.Ensure(pki.Options{Dir: dir, Now: func() time.Time { return now.Add(pki.CAValidity + time.Hour) }})
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Ensure with an expired CA: %v", err)
	}
}

func TestEnsureReplacesForeignLeaf(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ensure(t, dir, now, "localhost")
	other, err := pki.NewCA("other", now, time.Hour*24)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.IssueServing([]string{"localhost"}, now, time.Hour*24)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"serving.crt": foreign.CertPEM, "serving.key": foreign.KeyPEM} {
		if err := pki.WriteFile(filepath.Join(dir, name), data); err != nil {
			t.Fatal(err)
		}
	}
	b := ensure(t, dir, now, "localhost")
	if err := b.CA.Verify(leaf(t, b.Serving), x509.ExtKeyUsageServerAuth, now, 0); err != nil {
		t.Errorf("a serving certificate of another CA was kept: %v", err)
	}
}

// TestEnsureConcurrent starts several Ensure at once on one directory, as
// replicas sharing --pki-dir do: all get the same CA.
func TestEnsureConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 6
	cas := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			b, err := pki.Ensure(pki.Options{Dir: dir, Hosts: []string{"localhost"}})
			if err != nil {
				t.Error(err)
				return
			}
			cas[i] = b.CA.CertPEM
		})
	}
	wg.Wait()
	for i := range cas {
		if !bytes.Equal(cas[i], cas[0]) {
			t.Fatalf("Ensure %d got another CA than Ensure 0", i)
		}
	}
}
