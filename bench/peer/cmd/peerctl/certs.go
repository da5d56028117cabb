package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the PEM files of a throwaway certificate authority, the
// apiserver's serving certificate and an admin client certificate.
type pki struct {
	CA, ServingCert, ServingKey, AdminCert, AdminKey string
}

// keyPair is a certificate with its private key.
type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// writePKI creates the CA, a serving certificate for 127.0.0.1 and localhost,
// and a client certificate in group system:masters, under dir.
func writePKI(dir string) (pki, error) {
	p := pki{
		CA:          filepath.Join(dir, "ca.crt"),
		ServingCert: filepath.Join(dir, "serving.crt"),
		ServingKey:  filepath.Join(dir, "serving.key"),
		AdminCert:   filepath.Join(dir, "admin.crt"),
		AdminKey:    filepath.Join(dir, "admin.key"),
	}
	ca, err := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "setpoint-bench-peer-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, p.CA, "")
	if err != nil {
		return pki{}, fmt.Errorf("issue CA: %w", err)
	}
	if _, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "apiextensions-apiserver"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, &ca, p.ServingCert, p.ServingKey); err != nil {
		return pki{}, fmt.Errorf("issue serving certificate: %w", err)
	}
	if _, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &ca, p.AdminCert, p.AdminKey); err != nil {
		return pki{}, fmt.Errorf("issue admin certificate: %w", err)
	}
	return p, nil
}

// issue completes template with a fresh key, serial and validity, signs it
// with parent (self-signed when parent is nil) and writes the certificate to
// certPath and, when keyPath is not empty, the key to keyPath.
func issue(template *x509.Certificate, parent *keyPair, certPath, keyPath string) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return keyPair{}, fmt.Errorf("generate serial: %w", err)
	}
	template.SerialNumber = serial
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(30 * 24 * time.Hour)
	signer, signerCert := key, template
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, template, signerCert, &key.PublicKey, signer)
	if err != nil {
		return keyPair{}, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return keyPair{}, fmt.Errorf("parse certificate: %w", err)
	}
	if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
		return keyPair{}, err
	}
	if keyPath != "" {
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return keyPair{}, fmt.Errorf("encode key: %w", err)
		}
		if err := writePEM(keyPath, "EC PRIVATE KEY", keyDER); err != nil {
			return keyPair{}, err
		}
	}
	return keyPair{cert: cert, key: key}, nil
}

// writePEM writes one PEM block to path, readable by the owner only.
func writePEM(path, kind string, der []byte) error {
	data := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
