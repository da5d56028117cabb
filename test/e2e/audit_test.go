package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// auditEvent is the part of an audit.k8s.io/v1 Event these tests read.
type auditEvent struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Level      string `json:"level"`
	Verb       string `json:"verb"`
	UserAgent  string `json:"userAgent"`
	User       struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"user"`
	ObjectRef *struct {
		Resource, Namespace, Name string
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestObject  json.RawMessage `json:"requestObject"`
	ResponseObject json.RawMessage `json:"responseObject"`
}

// TestAuditLog runs the binary with --audit-log-path and a policy that
// asks for every body, drives it with kubectl, and reads the log: a file
// of mode 0600 with one event per request, by the kubeconfig's user,
// ConfigMap bodies in it, and Secrets at Metadata level only.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "audit", "audit.log")
	s := startServerEnv(t, []string{"SETPOINT_AUDIT_POLICY_FILE=" + policy}, "--audit-log-path", logPath)
	kubectl := kubectlIn(t, s, dir)
	const secret, control = "e2e-audit-secret-value-93ad", "e2e-audit-visible-value-51c0"
	kubectl(false, "create", "secret", "generic", "db", "--from-literal=password="+secret)
	kubectl(false, "get", "secret", "db", "-o", "yaml")
	kubectl(false, "create", "configmap", "cm", "--from-literal=k="+control)
	s.stop()

	st, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, want 0600", st.Mode().Perm())
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var secretCreate, configMapCreate *auditEvent
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		ev := &auditEvent{}
		if err := json.Unmarshal(sc.Bytes(), ev); err != nil || ev.APIVersion != "audit.k8s.io/v1" || ev.Kind != "Event" || ev.AuditID == "" {
			t.Fatalf("line %q is no audit event (%v)", sc.Text(), err)
		}
		if ev.Verb != "create" || ev.ObjectRef == nil || !strings.HasPrefix(ev.UserAgent, "kubectl") {
			continue
		}
		switch ev.ObjectRef.Resource {
		case "secrets":
			secretCreate = ev
		case "configmaps":
			configMapCreate = ev
		}
	}
	if secretCreate == nil || configMapCreate == nil {
		t.Fatalf("no audit event of kubectl's creates in:\n%s", data)
	}
	if e := secretCreate; e.User.Username != "setpoint-admin" || e.Level != "Metadata" || e.ObjectRef.Name != "db" || e.ObjectRef.Namespace != "default" ||
		e.ResponseStatus.Code != 201 || e.RequestObject != nil || e.ResponseObject != nil {
		t.Errorf("Secret create audited as %+v", e)
	}
	if e := configMapCreate; e.Level != "RequestResponse" || !bytes.Contains(e.RequestObject, []byte(control)) || !bytes.Contains(e.ResponseObject, []byte(control)) {
		t.Errorf("ConfigMap create audited as %+v, want its bodies", e)
	}
	for _, form := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret))} {
		if bytes.Contains(data, []byte(form)) {
			t.Errorf("the audit log holds the secret value %q", form)
		}
	}
}
