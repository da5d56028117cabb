package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// typedClient is client-go's typed clientset as controllers build it from
// a kubeconfig: protobuf request bodies, protobuf-or-JSON answers.
func typedClient(t *testing.T, s *server) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantStatusError fails unless err is a StatusError with code and reason.
func wantStatusError(t *testing.T, err error, code int32, reason metav1.StatusReason) *apierrors.StatusError {
	t.Helper()
	se, ok := err.(*apierrors.StatusError)
	if !ok {
		t.Fatalf("error %v (%T), want a %d %s Status", err, err, code, reason)
	}
	if se.ErrStatus.Code != code || se.ErrStatus.Reason != reason {
		t.Fatalf("status %d %s %q, want %d %s", se.ErrStatus.Code, se.ErrStatus.Reason, se.ErrStatus.Message, code, reason)
	}
	return se
}

// TestCoreTypesLeases drives Leases as leader election does, through the
// default (protobuf) typed client: create, get, renew by update, patch,
// list by label, watch, delete. MicroTime fields keep their microseconds.
func TestCoreTypesLeases(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := testContext(t, time.Minute)
	leases := typedClient(t, s).CoordinationV1().Leases("default")
	acquire := metav1.NewMicroTime(time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC))
	renew := metav1.NewMicroTime(time.Date(2026, 11, 26, 10, 0, 5, 654321000, time.UTC))
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "leader", Labels: map[string]string{"app": "ctrl"}},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: new("pod-a"), LeaseDurationSeconds: new(int32(15)),
			AcquireTime: &acquire, RenewTime: &renew, LeaseTransitions: new(int32(0)),
		},
	}
	created, err := leases.Create(ctx, lease, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Generation != 0 || created.UID == "" || created.ResourceVersion == "" {
		t.Errorf("created metadata %+v", created.ObjectMeta)
	}
	w, err := leases.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	got, err := leases.Get(ctx, "leader", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Spec.AcquireTime.Equal(&acquire) || !got.Spec.RenewTime.Equal(&renew) || *got.Spec.HolderIdentity != "pod-a" {
		t.Fatalf("read back %+v, want acquire %v renew %v", got.Spec, acquire, renew)
	}
	next := metav1.NewMicroTime(renew.Add(2*time.Second + 7*time.Microsecond))
	got.Spec.RenewTime = &next
	updated, err := leases.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !updated.Spec.RenewTime.Equal(&next) {
		t.Errorf("renewTime %v, want %v", updated.Spec.RenewTime, next)
	}
	ev := nextEvent(t, w)
	if l, ok := ev.Object.(*coordinationv1.Lease); ev.Type != watch.Modified || !ok || !l.Spec.RenewTime.Equal(&next) {
		t.Errorf("watch %s %#v, want MODIFIED with the new renewTime", ev.Type, ev.Object)
	}
	got.ResourceVersion = created.ResourceVersion
	_, err = leases.Update(ctx, got, metav1.UpdateOptions{})
	wantStatusError(t, err, http.StatusConflict, metav1.StatusReasonConflict)

	patched, err := leases.Patch(ctx, "leader", types.MergePatchType, []byte(`{"spec":{"holderIdentity":"pod-b","leaseTransitions":1}}`), metav1.PatchOptions{})
	if err != nil || *patched.Spec.HolderIdentity != "pod-b" || *patched.Spec.LeaseTransitions != 1 {
		t.Fatalf("patch: %v %+v", err, patched)
	}
	_, err = leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: new(int32(0))}}, metav1.CreateOptions{})
	se := wantStatusError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !strings.Contains(se.ErrStatus.Message, "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0") {
		t.Errorf("message %q", se.ErrStatus.Message)
	}
	if _, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: "app=ctrl"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "leader" {
		t.Fatalf("list by label: %v %+v", err, list)
	}
	if err := leases.Delete(ctx, "leader", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Get(ctx, "leader", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: %v", err)
	}
}

// TestCoreTypesConfigMaps covers ConfigMaps through the typed client: CRUD,
// list by label, watch, key and size validation, and immutability.
func TestCoreTypesConfigMaps(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := testContext(t, time.Minute)
	cms := typedClient(t, s).CoreV1().ConfigMaps("default")
	w, err := cms.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cm, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Labels: map[string]string{"tier": "web"}},
		Data:       map[string]string{"color": "blue", "app.properties": "a=1\n"},
		BinaryData: map[string][]byte{"blob": {0, 1, 2, 255}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, w); ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Data["color"] != "blue" {
		t.Errorf("watch %s %#v", ev.Type, ev.Object)
	}
	if string(cm.BinaryData["blob"]) != "\x00\x01\x02\xff" || cm.Generation != 0 {
		t.Errorf("created %+v", cm)
	}
	cm.Data["color"] = "green"
	cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil || cm.Data["color"] != "green" {
		t.Fatalf("update: %v %+v", err, cm)
	}
	if ev := nextEvent(t, w); ev.Type != watch.Modified || ev.Object.(*corev1.ConfigMap).Data["color"] != "green" {
		t.Errorf("watch %s %#v", ev.Type, ev.Object)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "tier=web"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "settings" {
		t.Fatalf("list by label: %v %+v", err, list)
	}
	list, err = cms.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=plain"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "plain" {
		t.Fatalf("list by name: %v %+v", err, list)
	}

	_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "badkey"},
		Data: map[string]string{"no/slash": "x"}}, metav1.CreateOptions{})
	se := wantStatusError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !strings.Contains(se.ErrStatus.Message, `data[no/slash]: Invalid value: "no/slash": a valid config key must consist of alphanumeric characters`) {
		t.Errorf("message %q", se.ErrStatus.Message)
	}
	_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "huge"},
		Data: map[string]string{"a": strings.Repeat("x", 600<<10), "b": strings.Repeat("y", 600<<10)}}, metav1.CreateOptions{})
	se = wantStatusError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !strings.Contains(se.ErrStatus.Message, "Too long: may not be more than 1048576 bytes") {
		t.Errorf("message %q", se.ErrStatus.Message)
	}

	frozen, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "frozen"},
		Data: map[string]string{"k": "v"}, Immutable: new(true)}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cms.Patch(ctx, "frozen", types.MergePatchType, []byte(`{"data":{"k":"w"}}`), metav1.PatchOptions{})
	se = wantStatusError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if want := "ConfigMap \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set"; se.ErrStatus.Message != want {
		t.Errorf("message %q, want %q", se.ErrStatus.Message, want)
	}
	frozen.Immutable = new(false)
	_, err = cms.Update(ctx, frozen, metav1.UpdateOptions{})
	se = wantStatusError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !strings.Contains(se.ErrStatus.Message, "immutable: Forbidden: field is immutable when `immutable` is set") {
		t.Errorf("message %q", se.ErrStatus.Message)
	}
	// Metadata of an immutable ConfigMap may still change.
	if _, err := cms.Patch(ctx, "frozen", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("label an immutable ConfigMap: %v", err)
	}
	if err := cms.Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestCoreTypesSecrets covers Secrets: stringData merged into data and
// never stored, type defaulting and immutability, immutable Secrets, and
// bad base64 answered 400 without echoing the value.
func TestCoreTypesSecrets(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := testContext(t, time.Minute)
	c := typedClient(t, s)
	secrets := c.CoreV1().Secrets("default")
	sec, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Labels: map[string]string{"owner": "helm"}},
		Data:       map[string][]byte{"user": []byte("admin"), "password": []byte("old")},
		StringData: map[string]string{"password": "s3cr3t-value", "token": "abc"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Type != corev1.SecretTypeOpaque || len(sec.StringData) != 0 || string(sec.Data["password"]) != "s3cr3t-value" ||
		string(sec.Data["token"]) != "abc" || string(sec.Data["user"]) != "admin" {
		t.Fatalf("created %+v", sec)
	}
	raw, err := c.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces/default/secrets/creds").DoRaw(ctx)
	if err != nil || strings.Contains(string(raw), "stringData") {
		t.Fatalf("stored secret %s: %v", raw, err)
	}
	sec.Type = corev1.SecretTypeTLS
	_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
	se := wantStatusError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !strings.Contains(se.ErrStatus.Message, `type: Invalid value: "kubernetes.io/tls": field is immutable`) {
		t.Errorf("message %q", se.ErrStatus.Message)
	}
	// Helm's Secret driver updates without a resourceVersion, which
	// Secrets allow.
	sec.Type, sec.ResourceVersion = corev1.SecretTypeOpaque, ""
	sec.Labels["status"] = "deployed"
	if sec, err = secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil || sec.Labels["status"] != "deployed" {
		t.Fatalf("unconditional update: %v %+v", err, sec)
	}
	patched, err := secrets.Patch(ctx, "creds", types.MergePatchType, []byte(`{"stringData":{"token":"xyz"}}`), metav1.PatchOptions{})
	if err != nil || string(patched.Data["token"]) != "xyz" || len(patched.StringData) != 0 {
		t.Fatalf("patch stringData: %v %+v", err, patched)
	}
	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v %+v", err, list)
	}
	if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "release"}, Type: "helm.sh/release.v1",
		Data: map[string][]byte{"release": []byte("H4sI")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err = secrets.List(ctx, metav1.ListOptions{FieldSelector: "type=helm.sh/release.v1"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "release" {
		t.Fatalf("list by type: %v %+v", err, list)
	}

	_, err = secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte("c")}}, metav1.CreateOptions{})
	se = wantStatusError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !strings.Contains(se.ErrStatus.Message, "data[tls.key]: Required value") {
		t.Errorf("message %q", se.ErrStatus.Message)
	}

	const hidden = "c2VjcmV0LXZhbHVl!!"
	body := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"bad"},"data":{"k":"` + hidden + `"}}`
	res := c.CoreV1().RESTClient().Post().AbsPath("/api/v1/namespaces/default/secrets").
		SetHeader("Content-Type", "application/json").Body([]byte(body)).Do(ctx)
	se = wantStatusError(t, res.Error(), http.StatusBadRequest, metav1.StatusReasonBadRequest)
	if strings.Contains(se.ErrStatus.Message, hidden) || !strings.Contains(se.ErrStatus.Message, "illegal base64") {
		t.Errorf("message %q", se.ErrStatus.Message)
	}

	if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sealed"},
		StringData: map[string]string{"k": "v"}, Immutable: new(true)}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = secrets.Patch(ctx, "sealed", types.MergePatchType, []byte(`{"stringData":{"k":"w"}}`), metav1.PatchOptions{})
	se = wantStatusError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if want := "Secret \"sealed\" is invalid: data: Forbidden: field is immutable when `immutable` is set"; se.ErrStatus.Message != want {
		t.Errorf("message %q, want %q", se.ErrStatus.Message, want)
	}
	if err := secrets.Delete(ctx, "creds", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestCoreTypesEventsBothAPIs writes Events through core v1 (as
// client-go's legacy recorder and kubectl describe see them) and through
// events.k8s.io/v1 (as newer recorders write them) and reads each through
// the other API: one stored resource, converted field by field.
func TestCoreTypesEventsBothAPIs(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := testContext(t, time.Minute)
	c := typedClient(t, s)
	core, events := c.CoreV1().Events("default"), c.EventsV1().Events("default")
	w, err := events.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	failed, err := core.Watch(ctx, metav1.ListOptions{FieldSelector: "reason=Failed,involvedObject.kind=Widget"})
	if err != nil {
		t.Fatal(err)
	}
	defer failed.Stop()

	first := metav1.NewTime(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	legacy, err := core.Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "widget-a.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Widget", Namespace: "default", Name: "a",
			APIVersion: "example.com/v1", UID: "u-1"},
		Reason: "Scaled", Message: "scaled to 3", Type: corev1.EventTypeNormal, Count: 2,
		Source: corev1.EventSource{Component: "widget-controller"}, FirstTimestamp: first, LastTimestamp: first,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, w)
	got, ok := ev.Object.(*eventsv1.Event)
	if ev.Type != watch.Added || !ok {
		t.Fatalf("watch %s %#v", ev.Type, ev.Object)
	}
	if got.Regarding.Name != "a" || got.Regarding.Kind != "Widget" || got.Note != "scaled to 3" || got.DeprecatedCount != 2 ||
		got.DeprecatedSource.Component != "widget-controller" || !got.DeprecatedFirstTimestamp.Equal(&first) ||
		got.Reason != "Scaled" || got.Type != "Normal" || got.ResourceVersion != legacy.ResourceVersion {
		t.Errorf("core event seen through events.k8s.io/v1: %+v", got)
	}

	when := metav1.NewMicroTime(time.Date(2026, 11, 26, 9, 30, 0, 250000000, time.UTC))
	modern, err := events.Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "widget-b.2"},
		EventTime:  when, ReportingController: "example.com/widget-controller", ReportingInstance: "ctrl-0",
		Action: "Reconcile", Reason: "Failed", Type: corev1.EventTypeWarning, Note: "could not scale",
		Regarding: corev1.ObjectReference{Kind: "Widget", Namespace: "default", Name: "b"},
		Related:   &corev1.ObjectReference{Kind: "Gadget", Namespace: "default", Name: "g"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if modern.Note != "could not scale" || modern.Regarding.Name != "b" || !modern.EventTime.Equal(&when) {
		t.Errorf("created %+v", modern)
	}
	old, err := core.Get(ctx, "widget-b.2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if old.InvolvedObject.Name != "b" || old.Message != "could not scale" || old.ReportingController != "example.com/widget-controller" ||
		old.ReportingInstance != "ctrl-0" || old.Action != "Reconcile" || old.Related.Name != "g" || !old.EventTime.Equal(&when) {
		t.Errorf("events.k8s.io event seen through core v1: %+v", old)
	}
	if ev := nextEvent(t, w); ev.Type != watch.Added || ev.Object.(*eventsv1.Event).Name != "widget-b.2" {
		t.Errorf("watch %s %#v", ev.Type, ev.Object)
	}

	if ev := nextEvent(t, failed); ev.Type != watch.Added || ev.Object.(*corev1.Event).Name != "widget-b.2" {
		t.Errorf("core watch by field selector: %s %#v, want only widget-b.2", ev.Type, ev.Object)
	}
	for _, tc := range []struct {
		api, selector, want string
	}{
		{"core", "involvedObject.name=a", "widget-a.1"},
		{"core", "source=widget-controller", "widget-a.1"},
		{"core", "source=example.com/widget-controller", "widget-b.2"},
		{"core", "reportingComponent=example.com/widget-controller,type=Warning", "widget-b.2"},
		{"core", "involvedObject.uid=u-1,involvedObject.apiVersion=example.com/v1", "widget-a.1"},
		{"events", "regarding.name=b", "widget-b.2"},
		{"events", "reportingController=example.com/widget-controller", "widget-b.2"},
		{"events", "type=Normal,reason=Scaled,regarding.namespace=default", "widget-a.1"},
		{"events", "regarding.name!=b,metadata.namespace=default", "widget-a.1"},
	} {
		var got []string
		opts := metav1.ListOptions{FieldSelector: tc.selector}
		if tc.api == "core" {
			l, err := core.List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range l.Items {
				got = append(got, e.Name)
			}
		} else {
			l, err := events.List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range l.Items {
				got = append(got, e.Name)
			}
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s events with %s: %v, want [%s]", tc.api, tc.selector, got, tc.want)
		}
	}
	_, err = events.List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=a"})
	wantStatusError(t, err, http.StatusBadRequest, metav1.StatusReasonBadRequest)

	// A series update through events.k8s.io/v1 shows as the same object.
	modern.Series = &eventsv1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(when.Add(time.Second))}
	if _, err := events.Update(ctx, modern, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if old, err = core.Get(ctx, "widget-b.2", metav1.GetOptions{}); err != nil || old.Series == nil || old.Series.Count != 2 {
		t.Fatalf("series through core v1: %v %+v", err, old)
	}
	coreList, err := core.List(ctx, metav1.ListOptions{})
	if err != nil || len(coreList.Items) != 2 {
		t.Fatalf("core list: %v %+v", err, coreList)
	}
	newList, err := events.List(ctx, metav1.ListOptions{})
	if err != nil || len(newList.Items) != 2 || newList.Items[1].Note != "could not scale" {
		t.Fatalf("events.k8s.io list: %v %+v", err, newList)
	}

	_, err = events.Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "incomplete"},
		Regarding: corev1.ObjectReference{Kind: "Widget", Namespace: "default", Name: "b"}}, metav1.CreateOptions{})
	se := wantStatusError(t, err, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	if !strings.Contains(se.ErrStatus.Message, "eventTime: Required value") {
		t.Errorf("message %q", se.ErrStatus.Message)
	}
	if err := events.Delete(ctx, "widget-a.1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Get(ctx, "widget-a.1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("core get after events.k8s.io delete: %v", err)
	}
}

// TestCoreTypesDynamicInformerResync runs a dynamic shared informer on
// ConfigMaps with a resync period: it syncs, sees a new object, and then
// delivers resync updates (same resourceVersion) for it every second,
// the shortest period client-go allows.
func TestCoreTypesDynamicInformerResync(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := testContext(t, time.Minute)
	dyn, err := dynamic.NewForConfig(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, time.Second, "default", nil)
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	informer := factory.ForResource(gvr).Informer()
	added := make(chan string, 10)
	resynced := make(chan string, 100)
	if _, err := informer.AddEventHandlerWithResyncPeriod(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { added <- obj.(*unstructured.Unstructured).GetName() },
		UpdateFunc: func(oldObj, newObj any) {
			o, n := oldObj.(*unstructured.Unstructured), newObj.(*unstructured.Unstructured)
			if o.GetResourceVersion() == n.GetResourceVersion() {
				select {
				case resynced <- n.GetName():
				default:
				}
			}
		},
	}, time.Second); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		t.Fatal("informer did not sync")
	}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "watched"}, "data": map[string]any{"a": "b"},
	}}
	if _, err := dyn.Resource(gvr).Namespace("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitName(ctx, t, added, "watched", "add")
	for range 2 {
		waitName(ctx, t, resynced, "watched", "resync")
	}
}

// waitName waits for name on ch.
func waitName(ctx context.Context, t *testing.T, ch <-chan string, name, what string) {
	t.Helper()
	for {
		select {
		case n := <-ch:
			if n == name {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no %s of %s", what, name)
		}
	}
}

// TestCoreTypesKubectl drives the core types with upstream kubectl: create
// from literals, the columns Kubernetes prints (Data, Type, Holder, Events'
// Last Seen/Object/Message), describe, explain from the schemas derived
// from the Go types, and api-resources listing them with their short names.
func TestCoreTypesKubectl(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := newKubectl(t, s)
	k.run(t, "create", "configmap", "app", "--from-literal=a=1", "--from-literal=b=2")
	k.run(t, "create", "secret", "generic", "pw", "--from-literal=password=x")
	manifest := filepath.Join(t.TempDir(), "objs.yaml")
	if err := os.WriteFile(manifest, []byte(`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: lead}
spec: {holderIdentity: pod-a, leaseDurationSeconds: 10, renewTime: "2026-11-26T09:00:00.123456Z"}
---
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: e2}
regarding: {kind: ConfigMap, name: app, namespace: default}
reason: Renewed
note: renewed it
type: Warning
eventTime: "2026-11-26T09:00:00.000001Z"
reportingController: example.com/ctl
reportingInstance: i-1
action: Renew
`), 0o644); err != nil {
		t.Fatal(err)
	}
	k.run(t, "apply", "-f", manifest)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"get", "cm", "app"}, []string{"NAME DATA AGE", "app 2"}},
		{[]string{"get", "secrets"}, []string{"NAME TYPE DATA AGE", "pw Opaque 1"}},
		{[]string{"get", "leases"}, []string{"NAME HOLDER AGE", "lead pod-a"}},
		{[]string{"get", "ev"}, []string{"LAST SEEN TYPE REASON OBJECT MESSAGE", "Warning Renewed configmap/app renewed it"}},
		{[]string{"get", "events.events.k8s.io", "-o", "wide"}, []string{"SOURCE", "example.com/ctl, i-1", "e2"}},
		{[]string{"get", "lease", "lead", "-o", "jsonpath={.spec.renewTime}"}, []string{"2026-11-26T09:00:00.123456Z"}},
		{[]string{"get", "ev", "e2", "-o", "jsonpath={.involvedObject.name}/{.message}"}, []string{"app/renewed it"}},
		{[]string{"describe", "configmap", "app"}, []string{"Name: app", "Data", "a:"}},
		{[]string{"explain", "configmap.data"}, []string{"FIELD: data <map[string]string>"}},
		{[]string{"explain", "secret.stringData"}, []string{"stringData"}},
		{[]string{"explain", "lease.spec.renewTime"}, []string{"renewTime"}},
		{[]string{"api-resources", "--api-group=events.k8s.io"}, []string{"events ev events.k8s.io/v1 true Event"}},
		{[]string{"api-resources", "--api-group="}, []string{"configmaps cm v1 true ConfigMap", "events ev v1 true Event", "secrets v1 true Secret"}},
	} {
		out := strings.Join(strings.Fields(k.run(t, tc.args...)), " ")
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("kubectl %s: %q missing from:\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
	}
	// kubectl patches built-in types with strategic merge patches by default,
	// and client-side apply computes one for them.
	k.run(t, "patch", "lease", "lead", "-p", `{"spec":{"holderIdentity":"pod-b"}}`)
	k.run(t, "patch", "events.events.k8s.io", "e2", "-p", `{"series":{"count":2,"lastObservedTime":"2026-11-26T09:00:01.000000Z"}}`)
	k.run(t, "patch", "events", "e2", "-p", `{"message":"patched"}`)
	if err := os.WriteFile(manifest, []byte("apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: lead}\nspec: {holderIdentity: pod-c}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k.run(t, "apply", "-f", manifest)
	if got := k.run(t, "get", "lease", "lead", "-o", "jsonpath={.spec.holderIdentity}/{.spec.renewTime}"); got != "pod-c/" {
		t.Errorf("lease after patch and apply: %q, want pod-c/ (renewTime removed by apply)", got)
	}
	if got := k.run(t, "get", "ev", "e2", "-o", "jsonpath={.message}"); got != "patched" {
		t.Errorf("event message %q after strategic patch of events.k8s.io note", got)
	}
	out := k.fail(t, "patch", "secret", "pw", "--type=merge", "-p", `{"type":"kubernetes.io/tls"}`)
	if !strings.Contains(out, `type: Invalid value: "kubernetes.io/tls": field is immutable`) {
		t.Errorf("patch secret type: %s", out)
	}
}
