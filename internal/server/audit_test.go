package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/setpoint/setpoint/internal/audit"
	"github.com/setpoint/setpoint/internal/authn"
	"github.com/setpoint/setpoint/internal/pki"
	"github.com/setpoint/setpoint/internal/server"
)

// TestNoSecretOrTokenInLogs runs a server that audits every request with
// its bodies (RequestResponse) and logs at debug level, writes, reads,
// watches and breaks Secrets through protobuf, JSON and YAML bodies with
// bearer tokens, then checks that neither log holds a secret value (plain
// or base64) nor a token. A ConfigMap handled the same way shows that
// bodies do reach the audit log, so the test can see a leak.
func TestNoSecretOrTokenInLogs(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit", "audit.log")
	logPath := filepath.Join(dir, "server.log")
	logs, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	// A token of a user who may do everything, as the JSON client's
	// credential; the other clients use the administrator's certificate.
	valid := authn.NewToken()
	line, err := authn.TokenLine(valid, &user.DefaultInfo{Name: "audit-alice", UID: "a1", Groups: []string{user.SystemPrivilegedGroup}})
	if err != nil {
		t.Fatal(err)
	}
	// And one of a user who may do nothing, refused with 403.
	stranger := authn.NewToken()
	strangerLine, err := authn.TokenLine(stranger, &user.DefaultInfo{Name: "audit-bob", UID: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokenFile, []byte(line+"\n"+strangerLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startReplica(t, "", func(c *server.Config) {
		c.TokenAuthFile = tokenFile
		c.Audit = audit.Config{Path: auditPath, PolicyFile: policy}
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	rc := rest.CopyConfig(srv.config)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	secretValues := []string{"s3cr3t-alpha-91f2", "s3cr3t-bravo-4c7e", "s3cr3t-charlie-e05d", "s3cr3t-delta-77ab", "s3cr3t-echo-1b9c", "s3cr3t-fox-8d31"}
	tokens := []string{"tok-invalid-5e8a0c1f9b2d4a6e", "tok-garbage-0f1e2d3c4b5a", valid, stranger}
	const control = "visible-configmap-value-3a9f"

	// typed sends protobuf bodies; jsonClient JSON ones.
	typed := kubernetes.NewForConfigOrDie(rc)
	jrc := rest.AnonymousClientConfig(rc)
	jrc.BearerToken = valid
	jrc.ContentType = "application/json"
	jsonClient := kubernetes.NewForConfigOrDie(jrc)
	bad := rest.AnonymousClientConfig(rc)
	bad.BearerToken = tokens[0]
	badClient := kubernetes.NewForConfigOrDie(bad)

	for _, c := range []*kubernetes.Clientset{typed, jsonClient} {
		if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "control-"}, Data: map[string]string{"k": control},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	secrets := jsonClient.CoreV1().Secrets("default")
	created, err := typed.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data:       map[string][]byte{"password": []byte(secretValues[0])},
		StringData: map[string]string{"token": secretValues[1]},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Data:       map[string][]byte{"key": []byte(secretValues[2])},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := secrets.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	got, err := secrets.Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	got.StringData = map[string]string{"extra": secretValues[3]}
	if _, err := secrets.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Patch(ctx, "db", types.StrategicMergePatchType, []byte(`{"stringData":{"token":"`+secretValues[4]+`"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	apply := "apiVersion: v1\nkind: Secret\nmetadata: {name: applied}\nstringData: {k: " + secretValues[5] + "}\n"
	if err := jsonClient.CoreV1().RESTClient().Patch(types.ApplyYAMLPatchType).AbsPath("/api/v1/namespaces/default/secrets/applied").
		Param("fieldManager", "test").Body([]byte(apply)).Do(ctx).Error(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		select {
		case <-w.ResultChan():
		case <-ctx.Done():
			t.Fatal("watch events did not arrive")
		}
	}

	// Requests that fail, each carrying secret values.
	enc := func(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }
	mustFail := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s succeeded, want an error", what)
		}
	}
	got.StringData = map[string]string{"late": secretValues[0]}
	_, err = secrets.Update(ctx, got, metav1.UpdateOptions{}) // got's resourceVersion is stale
	mustFail("update with a stale resourceVersion", err)
	_, err = secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Data: map[string][]byte{"bad key!": []byte(secretValues[1])}}, metav1.CreateOptions{})
	mustFail("invalid key", err)
	_, err = secrets.Patch(ctx, "db", types.JSONPatchType, []byte(`[{"op":"replace","path":"/data/password","value":"`+secretValues[2]+`"}]`), metav1.PatchOptions{})
	mustFail("patch to bad base64", err)
	_, err = secrets.Patch(ctx, "db", types.MergePatchType, []byte(`{"data":{"password":"`+enc(secretValues[3])), metav1.PatchOptions{})
	mustFail("malformed merge patch", err)
	_, err = secrets.Patch(ctx, "db", types.JSONPatchType, []byte(`[{"op":"test","path":"/data/password","value":"`+enc(secretValues[4])+`"}]`), metav1.PatchOptions{})
	mustFail("failed json patch test", err)
	_, err = secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"k": secretValues[5]}}, metav1.CreateOptions{})
	mustFail("create of an existing name", err)
	// A bad token, refused with 401, must not be logged either.
	_, err = badClient.CoreV1().Secrets("default").Get(ctx, "db", metav1.GetOptions{})
	mustFail("a request with a bad token", err)
	strangerConfig := rest.AnonymousClientConfig(rc)
	strangerConfig.BearerToken = stranger
	_, err = kubernetes.NewForConfigOrDie(strangerConfig).CoreV1().Secrets("default").Get(ctx, "db", metav1.GetOptions{})
	mustFail("a read by a user without permissions", err)
	raw := badClient.CoreV1().RESTClient()
	for _, header := range []string{"Bearer " + tokens[1] + " " + valid, "Basic " + enc("alice:"+tokens[1]), "Bearer  " + tokens[1]} {
		err := raw.Get().AbsPath("/api/v1/namespaces/default/secrets").SetHeader("Authorization", header).Do(ctx).Error()
		mustFail("a malformed Authorization header", err)
	}
	if err := secrets.Delete(ctx, "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	w.Stop()
	srv.stop()

	auditLog, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	secretEvents, withBodies, refused := 0, 0, 0
	users := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(auditLog))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var ev auditv1.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if ev.ObjectRef != nil && ev.ObjectRef.Resource == "secrets" {
			secretEvents++
		}
		if ev.RequestObject != nil || ev.ResponseObject != nil {
			withBodies++
		}
		users[ev.User.Username] = true
		if ev.User.Username == "audit-bob" && (ev.ResponseStatus == nil || ev.ResponseStatus.Code != 403) {
			t.Errorf("audit-bob's request audited as %+v, want 403", ev.ResponseStatus)
		}
		if ev.ResponseStatus != nil && ev.ResponseStatus.Code == 401 {
			refused++
			if ev.User.Username != "" {
				t.Errorf("a refused request was audited as user %q", ev.User.Username)
			}
		}
	}
	if secretEvents < 15 || !bytes.Contains(auditLog, []byte(control)) || withBodies == 0 {
		t.Fatalf("the audit log has %d Secret events and %d with bodies, and the control value %v: the test proves nothing",
			secretEvents, withBodies, bytes.Contains(auditLog, []byte(control)))
	}
	if !users["audit-alice"] || !users["audit-bob"] || !users[pki.AdminUser] || refused != 4 {
		t.Errorf("audited users %v and %d refused requests: want the tokens' users, the certificate's and 4 refusals", users, refused)
	}
	serverLogBytes, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	serverLog := string(serverLogBytes)
	if !strings.Contains(serverLog, "level=DEBUG") || !strings.Contains(serverLog, "/secrets") {
		t.Fatal("no debug request logs: the test proves nothing")
	}
	for name, text := range map[string]string{"audit log": string(auditLog), "server log": serverLog} {
		for _, v := range secretValues {
			for _, form := range []string{v, enc(v)} {
				if strings.Contains(text, form) {
					t.Errorf("%s holds secret value %q", name, form)
				}
			}
		}
		for _, tok := range tokens {
			if strings.Contains(text, tok) {
				t.Errorf("%s holds token %q", name, tok)
			}
		}
	}
	if t.Failed() {
		t.Logf("audit log:\n%s", auditLog)
	}
}
