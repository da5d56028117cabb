package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"slices"
	"testing"
)

func TestWritePKI(t *testing.T) {
	p, err := writePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	t.Run("serving_certificate_for_loopback", func(t *testing.T) {
		pair, err := tls.LoadX509KeyPair(p.ServingCert, p.ServingKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{"127.0.0.1", "localhost"} {
			if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
				t.Errorf("verify for %s: %v", host, err)
			}
		}
	})
	t.Run("admin_client_in_system_masters", func(t *testing.T) {
		pair, err := tls.LoadX509KeyPair(p.AdminCert, p.AdminKey)
		if err != nil {
			t.Fatal(err)
		}
		opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if _, err := pair.Leaf.Verify(opts); err != nil {
			t.Fatalf("verify client certificate: %v", err)
		}
		if !slices.Contains(pair.Leaf.Subject.Organization, "system:masters") {
			t.Fatalf("groups %v lack system:masters", pair.Leaf.Subject.Organization)
		}
	})
}
