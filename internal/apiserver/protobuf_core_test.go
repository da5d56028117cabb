package apiserver_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// contentTypes records the Content-Type of every request with a body.
type contentTypes struct {
	mu   sync.Mutex
	seen map[string]int
	next http.RoundTripper
}

func (c *contentTypes) RoundTrip(r *http.Request) (*http.Response, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		c.mu.Lock()
		c.seen[ct]++
		c.mu.Unlock()
	}
	return c.next.RoundTrip(r)
}

// TestTypedClientProtobufCoreTypes writes every served core type with the
// protobuf bodies client-go's typed clientset sends, and reads them back:
// bytes, MicroTime with microseconds, and Events through both APIs.
func TestTypedClientProtobufCoreTypes(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	rec := &contentTypes{seen: map[string]int{}}
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: e.srv.URL, WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		rec.next = rt
		return rec
	}})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"},
		Data: map[string]string{"a": "1"}, BinaryData: map[string][]byte{"b": {0xff, 0}}}, metav1.CreateOptions{})
	if err != nil || cm.Data["a"] != "1" || string(cm.BinaryData["b"]) != "\xff\x00" {
		t.Fatalf("configmap: %v %+v", err, cm)
	}
	sec, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Data: map[string][]byte{"k": []byte("v")}, StringData: map[string]string{"t": "u"}}, metav1.CreateOptions{})
	if err != nil || string(sec.Data["k"]) != "v" || string(sec.Data["t"]) != "u" || sec.Type != corev1.SecretTypeOpaque {
		t.Fatalf("secret: %v %+v", err, sec)
	}
	renew := metav1.NewMicroTime(time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC))
	lease, err := cs.CoordinationV1().Leases("default").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l"},
		Spec: coordinationv1.LeaseSpec{RenewTime: &renew}}, metav1.CreateOptions{})
	if err != nil || !lease.Spec.RenewTime.Equal(&renew) {
		t.Fatalf("lease: %v %+v", err, lease)
	}
	if _, err := cs.CoreV1().Events("default").Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1"},
		InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", Name: "c", Namespace: "default"}, Message: "m1"}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev, err := cs.EventsV1().Events("default").Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e2"},
		EventTime: renew, ReportingController: "c", ReportingInstance: "i", Action: "A", Reason: "R", Type: "Normal", Note: "m2",
		Regarding: corev1.ObjectReference{Kind: "ConfigMap", Name: "c", Namespace: "default"}}, metav1.CreateOptions{})
	if err != nil || ev.Note != "m2" || !ev.EventTime.Equal(&renew) {
		t.Fatalf("events.k8s.io event: %v %+v", err, ev)
	}
	old, err := cs.EventsV1().Events("default").Get(ctx, "e1", metav1.GetOptions{})
	if err != nil || old.Note != "m1" || old.Regarding.Name != "c" {
		t.Fatalf("core event through events.k8s.io: %v %+v", err, old)
	}
	if err := cs.CoreV1().Events("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if l, err := cs.EventsV1().Events("default").List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Fatalf("events after deletecollection: %v %+v", err, l)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if n := rec.seen["application/vnd.kubernetes.protobuf"]; n < 6 || len(rec.seen) != 1 {
		t.Errorf("request content types %v, want only protobuf", rec.seen)
	}
}
