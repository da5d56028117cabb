package apiserver_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// syncBuffer is a bytes.Buffer safe for the server's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSecretValuesNeverLogged writes, reads, patches and breaks Secrets on
// a server logging at debug level, through protobuf and JSON bodies, and
// checks that no log line and no error message carries a secret value,
// plain or base64, as Kubernetes redacts them.
func TestSecretValuesNeverLogged(t *testing.T) {
	logs := &syncBuffer{}
	srv := setpointtest.Start(t, setpointtest.Options{Logs: logs, LogLevel: slog.LevelDebug})
	c, err := kubernetes.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	secrets := c.CoreV1().Secrets("default")
	values := []string{"hunter2-alpha", "hunter2-bravo", "hunter2-charlie", "hunter2-delta", "hunter2-echo"}
	forms := func(v string) []string { return []string{v, base64.StdEncoding.EncodeToString([]byte(v))} }
	var messages []string
	// fail records the error of a request that must fail.
	fail := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s succeeded, want an error", what)
			return
		}
		messages = append(messages, err.Error())
	}

	created, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data:       map[string][]byte{"password": []byte(values[0])},
		StringData: map[string]string{"token": values[1]},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Get(ctx, "db", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := secrets.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := secrets.Patch(ctx, "db", types.MergePatchType, []byte(`{"stringData":{"token":"`+values[2]+`"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := <-w.ResultChan(); ev.Type != "MODIFIED" {
		t.Fatalf("watch event %s", ev.Type)
	}

	raw := func(contentType, body string) error {
		return c.CoreV1().RESTClient().Post().AbsPath("/api/v1/namespaces/default/secrets").
			SetHeader("Content-Type", contentType).Body([]byte(body)).Do(ctx).Error()
	}
	enc3 := base64.StdEncoding.EncodeToString([]byte(values[3]))
	fail("bad base64", raw("application/json", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b1"},"data":{"k":"`+values[3]+`"}}`))
	fail("non-string data", raw("application/json", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b2"},"data":{"k":["`+enc3+`"]}}`))
	fail("bad key", raw("application/json", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b3"},"data":{"bad key":"`+enc3+`"}}`))
	fail("bad yaml", raw("application/yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: b4}\ndata:\n  k: "+values[3]+"\n  - "+values[3]+"\n"))
	fail("bad json", raw("application/json", `{"apiVersion":"v1","kind":"Secret","data":{"k":"`+enc3+`"`))
	fail("unknown field under Strict", c.CoreV1().RESTClient().Post().AbsPath("/api/v1/namespaces/default/secrets").
		Param("fieldValidation", "Strict").SetHeader("Content-Type", "application/json").
		Body([]byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b5"},"extra":"`+values[3]+`","data":{"k":"`+enc3+`"}}`)).Do(ctx).Error())
	_, err = secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "b6"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(values[3])}}, metav1.CreateOptions{})
	fail("invalid docker config", err)
	_, err = secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "b7"},
		Data: map[string][]byte{"a": bytes.Repeat([]byte(values[3]), 1<<16), "b": bytes.Repeat([]byte(values[3]), 1<<16)}}, metav1.CreateOptions{})
	fail("too large", err)
	if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sealed"},
		StringData: map[string]string{"k": values[4]}, Immutable: new(true)}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = secrets.Patch(ctx, "sealed", types.MergePatchType, []byte(`{"stringData":{"k":"`+values[3]+`"}}`), metav1.PatchOptions{})
	fail("change an immutable secret", err)
	_, err = secrets.Patch(ctx, "db", types.JSONPatchType, []byte(`[{"op":"test","path":"/data/password","value":"`+enc3+`"}]`), metav1.PatchOptions{})
	fail("failed json patch test", err)
	_, err = secrets.Patch(ctx, "db", types.JSONPatchType, []byte(`[{"op":"replace","path":"/data/password","value":"`+values[3]+`"}]`), metav1.PatchOptions{})
	fail("patch to bad base64", err)
	_, err = secrets.Patch(ctx, "db", types.MergePatchType, []byte(`{"data":{"password":"`+values[3]), metav1.PatchOptions{})
	fail("malformed merge patch", err)

	if err := secrets.Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if srv.Stop() != nil {
		t.Fatal("stop")
	}
	out := logs.String()
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "/secrets") {
		t.Fatalf("no debug request logs, the test proves nothing:\n%s", out)
	}
	for _, v := range values {
		for _, f := range forms(v) {
			if strings.Contains(out, f) {
				t.Errorf("logs contain secret value %q:\n%s", f, out)
			}
			for _, m := range messages {
				if strings.Contains(m, f) {
					t.Errorf("error message contains secret value %q: %s", f, m)
				}
			}
		}
	}
}
