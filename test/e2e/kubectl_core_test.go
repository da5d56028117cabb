package e2e

import (
	"encoding/base64"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKubectlConfigMapsSecrets creates ConfigMaps and Secrets with kubectl
// create, reads them with kubectl get (table, JSONPath) and client-go,
// applies, describes and deletes them.
func TestKubectlConfigMapsSecrets(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	cms := e.c.core.CoreV1().ConfigMaps(e.ns)
	secrets := e.c.core.CoreV1().Secrets(e.ns)
	e.write(t, "app.properties", "color=red\nsize=3\n")

	t.Run("create-configmap", func(t *testing.T) {
		wantOutput(t, e.kn(t, "create", "configmap", "cm1", "--from-literal=a=1", "--from-literal=b=two"), "configmap/cm1 created")
		wantOutput(t, e.kn(t, "create", "configmap", "cm2", "--from-file=app.properties"), "configmap/cm2 created")
		cm1, err := cms.Get(t.Context(), "cm1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"a": "1", "b": "two"}; !maps.Equal(cm1.Data, want) {
			t.Errorf("cm1 data %v, want %v", cm1.Data, want)
		}
		cm2, err := cms.Get(t.Context(), "cm2", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := cm2.Data["app.properties"]; got != "color=red\nsize=3\n" {
			t.Errorf("cm2 data %v, want the file under app.properties", cm2.Data)
		}
		wantOutput(t, e.fail(t, "-n", e.ns, "create", "configmap", "cm1", "--from-literal=a=2"), `configmaps "cm1" already exists`)
	})
	t.Run("get-configmaps", func(t *testing.T) {
		got := kubectlTable(e.kn(t, "get", "configmaps"))
		want := [][]string{{"NAME", "DATA", "AGE"}, {"cm1", "2"}, {"cm2", "1"}}
		if len(got) != 3 || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1][:2], want[1]) || !slices.Equal(got[2][:2], want[2]) {
			t.Errorf("kubectl get configmaps printed %q, want %q and ages", got, want)
		}
		if out := e.kn(t, "get", "cm", "cm1", "-o", "jsonpath={.data.b}"); out != "two" {
			t.Errorf("kubectl get cm cm1 -o jsonpath={.data.b} printed %q, want two", out)
		}
	})
	t.Run("apply-configmap", func(t *testing.T) {
		// Client-side apply of a built-in type sends a strategic merge
		// patch.
		manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm3\ndata:\n  a: \"1\"\n  b: \"2\"\n"
		e.write(t, "cm3.yaml", manifest)
		wantOutput(t, e.kn(t, "apply", "-f", "cm3.yaml"), "configmap/cm3 created")
		e.write(t, "cm3.yaml", strings.Replace(manifest, `b: "2"`, `c: "3"`, 1))
		wantOutput(t, e.kn(t, "apply", "-f", "cm3.yaml"), "configmap/cm3 configured")
		cm3, err := cms.Get(t.Context(), "cm3", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"a": "1", "c": "3"}; !maps.Equal(cm3.Data, want) {
			t.Errorf("cm3 data %v after the second apply, want %v", cm3.Data, want)
		}
	})
	t.Run("edit-configmap", func(t *testing.T) {
		// kubectl edit sends a strategic merge patch for built-in types.
		script := filepath.Join(e.dir, "edit-cm.sh")
		if err := os.WriteFile(script, []byte("#!/bin/sh\nsed -i 's/^  a: \"1\"/  a: \"edited\"/' \"$1\"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := e.exec(t, []string{"KUBE_EDITOR=" + script}, "-n", e.ns, "edit", "configmap", "cm3")
		if err != nil {
			t.Fatalf("kubectl edit configmap: %v\n%s%s", err, stdout, stderr)
		}
		wantOutput(t, stdout, "configmap/cm3 edited")
		cm3, err := cms.Get(t.Context(), "cm3", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"a": "edited", "c": "3"}; !maps.Equal(cm3.Data, want) {
			t.Errorf("cm3 data %v after kubectl edit, want %v", cm3.Data, want)
		}
	})
	t.Run("create-secret", func(t *testing.T) {
		wantOutput(t, e.kn(t, "create", "secret", "generic", "s1", "--from-literal=password=hunter2", "--from-literal=user=admin"), "secret/s1 created")
		wantOutput(t, e.kn(t, "create", "secret", "docker-registry", "reg", "--docker-server=registry.example", "--docker-username=u", "--docker-password=p"), "secret/reg created")
		s1, err := secrets.Get(t.Context(), "s1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s1.Type != corev1.SecretTypeOpaque || string(s1.Data["password"]) != "hunter2" || string(s1.Data["user"]) != "admin" || len(s1.Data) != 2 {
			t.Errorf("s1: type %q data %q, want Opaque with password and user", s1.Type, s1.Data)
		}
		reg, err := secrets.Get(t.Context(), "reg", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if reg.Type != corev1.SecretTypeDockerConfigJson || !strings.Contains(string(reg.Data[corev1.DockerConfigJsonKey]), "registry.example") {
			t.Errorf("reg: type %q data %q, want a docker config for registry.example", reg.Type, reg.Data)
		}
	})
	t.Run("get-secrets", func(t *testing.T) {
		got := kubectlTable(e.kn(t, "get", "secrets"))
		want := [][]string{{"NAME", "TYPE", "DATA", "AGE"}, {"reg", string(corev1.SecretTypeDockerConfigJson), "1"}, {"s1", "Opaque", "2"}}
		if len(got) != 3 || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1][:3], want[1]) || !slices.Equal(got[2][:3], want[2]) {
			t.Errorf("kubectl get secrets printed %q, want %q and ages", got, want)
		}
		if out := e.kn(t, "get", "secret", "s1", "-o", "jsonpath={.data.password}"); out != base64.StdEncoding.EncodeToString([]byte("hunter2")) {
			t.Errorf("kubectl get secret -o jsonpath={.data.password} printed %q, want the base64 of the value", out)
		}
		out := e.kn(t, "describe", "secret", "s1")
		wantOutput(t, out, "Type:  Opaque", "password:  7 bytes", "user:      5 bytes")
		if strings.Contains(out, "hunter2") {
			t.Errorf("kubectl describe secret printed the value:\n%s", out)
		}
	})
	t.Run("delete", func(t *testing.T) {
		wantOutput(t, e.kn(t, "delete", "configmap", "cm1"), `configmap "cm1" deleted`)
		wantOutput(t, e.kn(t, "delete", "secret", "s1"), `secret "s1" deleted`)
		if _, err := cms.Get(t.Context(), "cm1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("get cm1 after kubectl delete: %v, want NotFound", err)
		}
		if _, err := secrets.Get(t.Context(), "s1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("get s1 after kubectl delete: %v, want NotFound", err)
		}
	})
}

// knobEvent is a core v1 Event about the knob k.
func knobEvent(k *metav1.ObjectMeta, name, typ, reason, message string, count int32) *corev1.Event {
	now := metav1.NewTime(time.Now())
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k.Namespace},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: testGroup + "/" + testVersion, Kind: "Knob",
			Namespace: k.Namespace, Name: k.Name, UID: k.UID,
		},
		Type: typ, Reason: reason, Message: message, Count: count,
		Source:         corev1.EventSource{Component: "knob-controller"},
		FirstTimestamp: now, LastTimestamp: now,
	}
}

// TestKubectlEvents lists Events with kubectl get events and kubectl events
// and shows them in kubectl describe of the knob they are about.
func TestKubectlEvents(t *testing.T) {
	t.Parallel()
	e := newKubectlEnv(t)
	k1 := e.createKnob(t, "k1", nil, map[string]any{"position": int64(10)})
	k2 := e.createKnob(t, "k2", nil, map[string]any{"position": int64(20)})
	m1 := metav1.ObjectMeta{Namespace: e.ns, Name: "k1", UID: k1.GetUID()}
	m2 := metav1.ObjectMeta{Namespace: e.ns, Name: "k2", UID: k2.GetUID()}
	events := e.c.core.CoreV1().Events(e.ns)
	for _, ev := range []*corev1.Event{
		knobEvent(&m1, "k1.turned", corev1.EventTypeNormal, "Turned", "turned to 10", 1),
		knobEvent(&m1, "k1.stuck", corev1.EventTypeWarning, "Stuck", "the knob is stuck", 4),
		knobEvent(&m2, "k2.turned", corev1.EventTypeNormal, "Turned", "turned to 20", 1),
	} {
		if _, err := events.Create(t.Context(), ev, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create event %s: %v", ev.Name, err)
		}
	}

	t.Run("get-events", func(t *testing.T) {
		got := kubectlTable(e.kn(t, "get", "events", "--field-selector", "involvedObject.name=k1", "--sort-by", ".metadata.name"))
		want := [][]string{
			{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"},
			{"Warning", "Stuck", "knob/k1", "the knob is stuck"},
			{"Normal", "Turned", "knob/k1", "turned to 10"},
		}
		if len(got) != len(want) || !slices.Equal(got[0], want[0]) {
			t.Fatalf("kubectl get events printed %q, want header %q and two rows", got, want[0])
		}
		for i, row := range got[1:] {
			if !slices.Equal(row[1:], want[i+1]) || row[0] == "" {
				t.Errorf("event row %d: %q, want an age and %q", i+1, row, want[i+1])
			}
		}
	})
	t.Run("kubectl-events", func(t *testing.T) {
		out := e.kn(t, "events", "--for", "knob.e2e.setpoint.dev/k1", "--types", "Warning")
		wantOutput(t, out, "Warning", "Stuck", "Knob/k1", "the knob is stuck")
		if strings.Contains(out, "Turned") {
			t.Errorf("kubectl events --types Warning printed a Normal event:\n%s", out)
		}
	})
	t.Run("describe", func(t *testing.T) {
		got := kubectlDescribeLines(e.kn(t, "describe", "knob", "k1"))
		i := slices.Index(got, "Events:")
		if i < 0 || i+4 > len(got) {
			t.Fatalf("kubectl describe has no Events table:\n%s", strings.Join(got, "\n"))
		}
		if got[i+1] != "  Type Reason Age From Message" {
			t.Errorf("Events header %q", got[i+1])
		}
		rows := strings.Join(got[i+3:], "\n")
		wantOutput(t, rows, "Normal Turned", "knob-controller turned to 10", "Warning Stuck", "(x4 over", "knob-controller the knob is stuck")
		if strings.Contains(rows, "turned to 20") {
			t.Errorf("kubectl describe k1 shows k2's event:\n%s", rows)
		}
	})
}
