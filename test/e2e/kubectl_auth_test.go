package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// userKubeconfig writes a kubeconfig for s as user name in groups, with
// a client certificate signed by the CA the server keeps in its data
// directory, and returns its path.
func userKubeconfig(t *testing.T, s *server, name string, groups ...string) string {
	t.Helper()
	caCert, caKey := readCA(t, filepath.Join(s.dataDir, "pki"))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: groups},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(s.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.ClientCertificate, auth.ClientKey, auth.Token, auth.TokenFile = "", "", "", ""
		auth.ClientCertificateData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		auth.ClientKeyData = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	}
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// readCA reads the server's CA certificate and key from dir.
func readCA(t *testing.T, dir string) (*x509.Certificate, any) {
	t.Helper()
	block := func(name string) *pem.Block {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := pem.Decode(b)
		if p == nil {
			t.Fatalf("%s holds no PEM", name)
		}
		return p
	}
	cert, err := x509.ParseCertificate(block("ca.crt").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	keyBlock := block("ca.key")
	key, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		var ecErr error
		if key, ecErr = x509.ParseECPrivateKey(keyBlock.Bytes); ecErr != nil {
			t.Fatal(errors.Join(err, ecErr))
		}
	}
	return cert, key
}

// TestKubectlAuth drives RBAC with the real kubectl: the administrator
// creates roles and bindings with kubectl create and lists them; a user
// with a client certificate asks kubectl auth can-i and whoami, and gets
// Kubernetes' 403 message where the binding does not reach.
func TestKubectlAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	installCRD(t, c, widgetCRD())
	for _, ns := range []string{"a", "b"} {
		createNamespace(t, c, ns)
	}
	admin := newKubectl(t, s)
	widgets := "widgets." + testGroup
	admin.run(t, "create", "clusterrole", "widget-editor", "--verb=create,get,list,watch", "--resource="+widgets)
	admin.run(t, "create", "rolebinding", "alice-widgets", "--clusterrole=widget-editor", "--user=alice", "-n", "a")
	admin.run(t, "create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps", "-n", "a")
	admin.run(t, "create", "rolebinding", "devs-cm", "--role=cm-reader", "--group=devs", "--serviceaccount=a:robot", "-n", "a")
	admin.run(t, "create", "clusterrolebinding", "alice-view", "--clusterrole=view", "--user=alice")
	wantOutput(t, admin.run(t, "get", "roles", "-n", "a"), "cm-reader")
	wantOutput(t, admin.run(t, "get", "rolebindings", "-n", "a", "-o", "wide"), "devs-cm", "Role/cm-reader", "devs", "a/robot")
	wantOutput(t, admin.run(t, "get", "clusterroles"), "cluster-admin", "system:basic-user", "widget-editor")
	wantOutput(t, admin.run(t, "auth", "can-i", "delete", "secrets", "-A"), "yes")

	alice := &kubectlRunner{bin: admin.bin, kubeconfig: userKubeconfig(t, s, "alice", "devs"), dir: t.TempDir()}
	wantOutput(t, alice.run(t, "auth", "whoami"), "alice", "devs", "system:authenticated")
	wantOutput(t, alice.run(t, "auth", "can-i", "create", "widgets", "-n", "a"), "yes")
	wantOutput(t, alice.run(t, "auth", "can-i", "get", "configmaps", "-n", "a"), "yes")
	for _, args := range [][]string{
		{"create", "widgets", "-n", "b"},
		{"delete", "widgets", "-n", "a"},
		{"get", "secrets", "-n", "a"},
	} {
		stdout, _, err := alice.exec(t, nil, append([]string{"auth", "can-i"}, args...)...)
		if err == nil || strings.TrimSpace(stdout) != "no" {
			t.Errorf("kubectl auth can-i %s: %q, %v; want no", strings.Join(args, " "), stdout, err)
		}
	}
	wantOutput(t, alice.run(t, "auth", "can-i", "--list", "-n", "a"), widgets, "configmaps", "selfsubjectaccessreviews.authorization.k8s.io")
	alice.run(t, "get", "widgets", "-n", "a")
	got := alice.fail(t, "get", "widgets", "-n", "b")
	if want := `Error from server (Forbidden): ` + widgets + ` is forbidden: User "alice" cannot list resource "widgets" in API group "` + testGroup + `" in the namespace "b"`; !strings.Contains(got, want) {
		t.Errorf("kubectl get widgets -n b as alice:\n%s\nwant %s", got, want)
	}

	// A binding removed takes effect on the next request.
	admin.run(t, "delete", "rolebinding", "alice-widgets", "-n", "a")
	stdout, _, err := alice.exec(t, nil, "auth", "can-i", "create", "widgets", "-n", "a")
	if err == nil || strings.TrimSpace(stdout) != "no" {
		t.Errorf("can-i after the binding went: %q, %v; want no", stdout, err)
	}
}

// TestKubectlEscalation checks privilege-escalation prevention with the
// real kubectl: an admin of namespace a may bind edit in a, and gets
// Kubernetes' refusal binding cluster-admin.
func TestKubectlEscalation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	createNamespace(t, newClients(t, s), "a")
	admin := newKubectl(t, s)
	admin.run(t, "create", "rolebinding", "dave-admin", "--clusterrole=admin", "--user=dave", "-n", "a")
	dave := &kubectlRunner{bin: admin.bin, kubeconfig: userKubeconfig(t, s, "dave"), dir: t.TempDir()}
	dave.run(t, "create", "rolebinding", "erin-edit", "--clusterrole=edit", "--user=erin", "-n", "a")
	got := dave.fail(t, "create", "rolebinding", "erin-root", "--clusterrole=cluster-admin", "--user=erin", "-n", "a")
	if want := `error: failed to create rolebinding: rolebindings.rbac.authorization.k8s.io "erin-root" is forbidden: user "dave" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:`; !strings.Contains(got, want) {
		t.Errorf("kubectl create rolebinding to cluster-admin as dave:\n%s\nwant %s", got, want)
	}
}
