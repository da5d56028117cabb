package e2e

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// TestCustomResourceVerbs runs every verb of the Kubernetes API on a custom
// resource through client-go's dynamic client, one server for all subtests,
// one namespace per subtest.
func TestCustomResourceVerbs(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	installCRD(t, c, widgetCRD())
	// setup gives a subtest its own namespace and the widgets client in it.
	setup := func(t *testing.T) (context.Context, dynamic.ResourceInterface, string) {
		ns := strings.ToLower(strings.ReplaceAll(t.Name()[strings.LastIndex(t.Name(), "/")+1:], "_", "-"))
		createNamespace(t, c, ns)
		return testContext(t, 60*time.Second), c.widgets(ns), ns
	}

	t.Run("CreateGenerateNameAndGet", func(t *testing.T) {
		ctx, wc, ns := setup(t)
		created := mustCreate(t, ctx, wc, widget(ns, "wd-", nil, validSpec()))
		if !strings.HasPrefix(created.GetName(), "wd-") || len(created.GetName()) <= len("wd-") {
			t.Fatalf("generateName wd-: got name %q", created.GetName())
		}
		if created.GetUID() == "" || created.GetResourceVersion() == "" || created.GetCreationTimestamp().Time.IsZero() {
			t.Fatalf("created object lacks uid, resourceVersion or creationTimestamp: %v", created.Object["metadata"])
		}
		if created.GetGeneration() != 1 {
			t.Errorf("generation on create = %d, want 1", created.GetGeneration())
		}
		if got := nested[string](t, created, "spec", "mode"); got != "auto" {
			t.Errorf("defaulted spec.mode = %q, want auto", got)
		}
		if got := nested[int64](t, created, "spec", "replicas"); got != 1 {
			t.Errorf("defaulted spec.replicas = %d, want 1", got)
		}
		got := mustGet(t, ctx, wc, created.GetName())
		if got.GetResourceVersion() != created.GetResourceVersion() || got.GetUID() != created.GetUID() {
			t.Errorf("get returned rv %s uid %s, create returned rv %s uid %s",
				got.GetResourceVersion(), got.GetUID(), created.GetResourceVersion(), created.GetUID())
		}
		if got.GetAPIVersion() != testGroup+"/"+testVersion || got.GetKind() != "Widget" {
			t.Errorf("get returned apiVersion %q kind %q", got.GetAPIVersion(), got.GetKind())
		}
		if nested[int64](t, got, "spec", "size") != 3 || nested[string](t, got, "spec", "color") != "red" {
			t.Errorf("get returned spec %v, want size 3 color red", got.Object["spec"])
		}
		if _, err := wc.Create(ctx, widget(ns, created.GetName(), nil, validSpec()), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
			t.Errorf("second create of %s: want AlreadyExists, got %v", created.GetName(), err)
		}
	})

	t.Run("ListSelectors", func(t *testing.T) {
		ctx, wc, ns := setup(t)
		for name, labels := range map[string]map[string]string{
			"sel-1": {"app": "a", "tier": "x"},
			"sel-2": {"app": "a"},
			"sel-3": {"app": "b", "tier": "y"},
			"sel-4": {"app": "c", "tier": "x"},
		} {
			mustCreate(t, ctx, wc, widget(ns, name, labels, validSpec()))
		}
		for _, tc := range []struct {
			label, field string
			want         []string
		}{
			{"", "", []string{"sel-1", "sel-2", "sel-3", "sel-4"}},
			{"app=a", "", []string{"sel-1", "sel-2"}},
			{"app==a,tier=x", "", []string{"sel-1"}},
			{"app!=a", "", []string{"sel-3", "sel-4"}},
			{"app in (a,b)", "", []string{"sel-1", "sel-2", "sel-3"}},
			{"app notin (a,b)", "", []string{"sel-4"}},
			{"tier", "", []string{"sel-1", "sel-3", "sel-4"}},
			{"!tier", "", []string{"sel-2"}},
			{"", "metadata.name=sel-3", []string{"sel-3"}},
			{"", "metadata.name!=sel-3", []string{"sel-1", "sel-2", "sel-4"}},
			{"app=a", "metadata.name=sel-3", []string{}},
			{"", "metadata.namespace=" + ns, []string{"sel-1", "sel-2", "sel-3", "sel-4"}},
		} {
			list, err := wc.List(ctx, metav1.ListOptions{LabelSelector: tc.label, FieldSelector: tc.field})
			if err != nil {
				t.Errorf("list label %q field %q: %v", tc.label, tc.field, err)
				continue
			}
			got := names(list.Items)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("list label %q field %q = %v, want %v", tc.label, tc.field, got, tc.want)
			}
			if list.GetResourceVersion() == "" {
				t.Errorf("list label %q field %q: no metadata.resourceVersion", tc.label, tc.field)
			}
			for _, it := range list.Items {
				if it.GetKind() != "Widget" || it.GetAPIVersion() != testGroup+"/"+testVersion {
					t.Errorf("list item %s has kind %q apiVersion %q", it.GetName(), it.GetKind(), it.GetAPIVersion())
				}
			}
		}
		if _, err := wc.List(ctx, metav1.ListOptions{LabelSelector: "app in (a"}); !apierrors.IsBadRequest(err) {
			t.Errorf("list with a malformed label selector: want BadRequest, got %v", err)
		}
		if _, err := wc.List(ctx, metav1.ListOptions{FieldSelector: "spec.color=red"}); !apierrors.IsBadRequest(err) {
			t.Errorf("list with an unsupported field selector: want BadRequest, got %v", err)
		}
	})

	t.Run("Pagination", func(t *testing.T) {
		ctx, wc, ns := setup(t)
		var want []string
		for range 7 {
			want = append(want, mustCreate(t, ctx, wc, widget(ns, "page-", nil, validSpec())).GetName())
		}
		slices.Sort(want)
		var got []string
		var snapshot string
		opts := metav1.ListOptions{Limit: 3}
		for page := 0; ; page++ {
			list, err := wc.List(ctx, opts)
			if err != nil {
				t.Fatalf("list page %d: %v", page, err)
			}
			if page == 0 {
				snapshot = list.GetResourceVersion()
				// A write after the first page must not show up in later
				// pages: they read the first page's snapshot.
				mustCreate(t, ctx, wc, widget(ns, "page-late", nil, validSpec()))
			} else if list.GetResourceVersion() != snapshot {
				t.Errorf("page %d resourceVersion %s, first page %s", page, list.GetResourceVersion(), snapshot)
			}
			if len(list.Items) > 3 {
				t.Fatalf("page %d has %d items, limit 3", page, len(list.Items))
			}
			got = append(got, names(list.Items)...)
			if n := list.GetRemainingItemCount(); n != nil && int(*n) != len(want)-len(got) {
				t.Errorf("page %d remainingItemCount %d, want %d", page, *n, len(want)-len(got))
			}
			if list.GetContinue() == "" {
				if page != 2 {
					t.Errorf("pagination ended after page %d, want 3 pages of 3, 3, 1", page)
				}
				break
			}
			if page > 3 {
				t.Fatalf("more than 3 pages for 7 objects with limit 3: %v", got)
			}
			opts.Continue = list.GetContinue()
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("paginated list = %v, want %v", got, want)
		}
		// Pages of a filtered list hold only matches and miss none.
		var labeled []string
		for i := range 9 {
			l := map[string]string{"odd": strconv.FormatBool(i%2 == 1)}
			labeled = append(labeled, mustCreate(t, ctx, wc, widget(ns, "sel-", l, validSpec())).GetName())
		}
		var wantOdd, gotOdd []string
		for i, n := range labeled {
			if i%2 == 1 {
				wantOdd = append(wantOdd, n)
			}
		}
		opts = metav1.ListOptions{Limit: 2, LabelSelector: "odd=true"}
		pages := 0
		for page := 0; page < 10; page++ {
			pages++
			list, err := wc.List(ctx, opts)
			if err != nil {
				t.Fatalf("filtered page %d: %v", page, err)
			}
			if len(list.Items) > 2 {
				t.Errorf("filtered page %d has %d items, limit 2", page, len(list.Items))
			}
			for _, it := range list.Items {
				if it.GetLabels()["odd"] != "true" {
					t.Errorf("filtered page %d holds %s with labels %v", page, it.GetName(), it.GetLabels())
				}
			}
			gotOdd = append(gotOdd, names(list.Items)...)
			if opts.Continue = list.GetContinue(); opts.Continue == "" {
				break
			}
		}
		// Four matches with limit 2: the second page says nothing is left.
		if pages != 2 {
			t.Errorf("4 matches with limit 2 took %d pages, want 2 (no empty last page)", pages)
		}
		slices.Sort(gotOdd)
		slices.Sort(wantOdd)
		if !slices.Equal(gotOdd, wantOdd) {
			t.Errorf("filtered pages = %v, want %v", gotOdd, wantOdd)
		}
		if _, err := wc.List(ctx, metav1.ListOptions{Limit: 3, Continue: "not-a-token"}); !apierrors.IsBadRequest(err) {
			t.Errorf("list with a malformed continue token: want BadRequest, got %v", err)
		}
	})

	t.Run("ListResourceVersion", func(t *testing.T) {
		ctx, wc, ns := setup(t)
		first := mustCreate(t, ctx, wc, widget(ns, "versioned", nil, validSpec()))
		second, err := wc.Patch(ctx, "versioned", types.MergePatchType, []byte(`{"spec":{"size":6}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, ctx, wc, widget(ns, "later", nil, validSpec()))
		for _, tc := range []struct {
			name string
			opts metav1.ListOptions
			want []string
			size int64
		}{
			{"Any", metav1.ListOptions{ResourceVersion: "0"}, []string{"later", "versioned"}, 6},
			{"NotOlderThan", metav1.ListOptions{ResourceVersion: second.GetResourceVersion(), ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}, []string{"later", "versioned"}, 6},
			{"ExactFirst", metav1.ListOptions{ResourceVersion: first.GetResourceVersion(), ResourceVersionMatch: metav1.ResourceVersionMatchExact}, []string{"versioned"}, 3},
			{"ExactSecond", metav1.ListOptions{ResourceVersion: second.GetResourceVersion(), ResourceVersionMatch: metav1.ResourceVersionMatchExact}, []string{"versioned"}, 6},
		} {
			list, err := wc.List(ctx, tc.opts)
			if err != nil {
				t.Errorf("%s: list %+v: %v", tc.name, tc.opts, err)
				continue
			}
			got := names(list.Items)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: list %+v = %v, want %v", tc.name, tc.opts, got, tc.want)
				continue
			}
			for _, it := range list.Items {
				if it.GetName() == "versioned" && nested[int64](t, &it, "spec", "size") != tc.size {
					t.Errorf("%s: versioned has size %v, want %d", tc.name, it.Object["spec"], tc.size)
				}
			}
			if tc.opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact && list.GetResourceVersion() != tc.opts.ResourceVersion {
				t.Errorf("%s: list resourceVersion %s, want exactly %s", tc.name, list.GetResourceVersion(), tc.opts.ResourceVersion)
			}
		}
	})

	t.Run("UpdateConflict", func(t *testing.T) {
		ctx, wc, ns := setup(t)
		orig := mustCreate(t, ctx, wc, widget(ns, "conflict", nil, validSpec()))
		first := orig.DeepCopy()
		if err := unstructured.SetNestedField(first.Object, int64(4), "spec", "size"); err != nil {
			t.Fatal(err)
		}
		updated, err := wc.Update(ctx, first, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update with the current resourceVersion: %v", err)
		}
		if updated.GetResourceVersion() == orig.GetResourceVersion() || updated.GetGeneration() != 2 {
			t.Errorf("update: rv %s -> %s, generation %d; want a new rv and generation 2",
				orig.GetResourceVersion(), updated.GetResourceVersion(), updated.GetGeneration())
		}
		stale := orig.DeepCopy()
		if err := unstructured.SetNestedField(stale.Object, int64(5), "spec", "size"); err != nil {
			t.Fatal(err)
		}
		if _, err := wc.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			t.Errorf("update with stale resourceVersion %s: want Conflict, got %v", orig.GetResourceVersion(), err)
		}
		noRV := stale.DeepCopy()
		noRV.SetResourceVersion("")
		if _, err := wc.Update(ctx, noRV, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("update of a custom resource without resourceVersion: want Invalid, got %v", err)
		}
		// System fields: uid is immutable, creationTimestamp and
		// generation are the server's.
		changedUID := updated.DeepCopy()
		changedUID.SetUID("00000000-0000-0000-0000-000000000001")
		if _, err := wc.Update(ctx, changedUID, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("update changing metadata.uid: want Invalid, got %v", err)
		}
		system := updated.DeepCopy()
		system.SetCreationTimestamp(metav1.NewTime(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)))
		system.SetGeneration(99)
		system.SetAnnotations(map[string]string{"touch": "yes"})
		sys, err := wc.Update(ctx, system, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update setting creationTimestamp and generation: %v", err)
		}
		if !sys.GetCreationTimestamp().Time.Equal(orig.GetCreationTimestamp().Time) || sys.GetGeneration() != 2 {
			t.Errorf("update set creationTimestamp %v generation %d; want the server's %v and 2",
				sys.GetCreationTimestamp(), sys.GetGeneration(), orig.GetCreationTimestamp())
		}
		updated = sys

		got := mustGet(t, ctx, wc, "conflict")
		if nested[int64](t, got, "spec", "size") != 4 || got.GetResourceVersion() != updated.GetResourceVersion() {
			t.Errorf("after rejected updates: size %v rv %s, want 4 and %s",
				got.Object["spec"], got.GetResourceVersion(), updated.GetResourceVersion())
		}
		if _, err := wc.Update(ctx, widget(ns, "missing", nil, validSpec()), metav1.UpdateOptions{}); !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
			t.Errorf("update of a missing object: want NotFound (or Invalid for no resourceVersion), got %v", err)
		}
	})

	t.Run("Patch", func(t *testing.T) {
		ctx, wc, ns := setup(t)
		orig := mustCreate(t, ctx, wc, widget(ns, "patched", map[string]string{"keep": "me"}, validSpec()))

		jp := `[{"op":"test","path":"/spec/size","value":3},{"op":"replace","path":"/spec/size","value":7},{"op":"add","path":"/metadata/labels/patched","value":"json"}]`
		got, err := wc.Patch(ctx, "patched", types.JSONPatchType, []byte(jp), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("JSON patch: %v", err)
		}
		if nested[int64](t, got, "spec", "size") != 7 || got.GetLabels()["patched"] != "json" || got.GetLabels()["keep"] != "me" {
			t.Errorf("JSON patch result: spec %v labels %v", got.Object["spec"], got.GetLabels())
		}
		if got.GetGeneration() != 2 || got.GetResourceVersion() == orig.GetResourceVersion() {
			t.Errorf("JSON patch: generation %d rv %s, want 2 and a new rv", got.GetGeneration(), got.GetResourceVersion())
		}

		failing := `[{"op":"test","path":"/spec/size","value":99},{"op":"replace","path":"/spec/size","value":8}]`
		if _, err := wc.Patch(ctx, "patched", types.JSONPatchType, []byte(failing), metav1.PatchOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("JSON patch with a failing test op: want Invalid (422), got %v", err)
		}

		mp := `{"metadata":{"labels":{"merged":"yes","patched":null}},"spec":{"color":"blue","code":null}}`
		got, err = wc.Patch(ctx, "patched", types.MergePatchType, []byte(mp), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("merge patch: %v", err)
		}
		spec := got.Object["spec"].(map[string]any)
		if spec["color"] != "blue" || spec["size"] != int64(7) || spec["code"] != nil {
			t.Errorf("merge patch result spec %v, want color blue, size 7, no code", spec)
		}
		if l := got.GetLabels(); l["merged"] != "yes" || l["keep"] != "me" || l["patched"] != "" {
			t.Errorf("merge patch result labels %v", l)
		}
		if got.GetGeneration() != 3 {
			t.Errorf("merge patch generation %d, want 3", got.GetGeneration())
		}
		before := got.GetResourceVersion()

		if _, err := wc.Patch(ctx, "patched", types.StrategicMergePatchType, []byte(`{"spec":{"size":2}}`), metav1.PatchOptions{}); !apierrors.IsUnsupportedMediaType(err) {
			t.Errorf("strategic merge patch on a custom resource: want UnsupportedMediaType (415), got %v", err)
		}
		if _, err := wc.Patch(ctx, "patched", types.MergePatchType, []byte(`{"spec":{"size":100}}`), metav1.PatchOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("merge patch breaking the schema: want Invalid, got %v", err)
		}
		if _, err := wc.Patch(ctx, "patched", types.MergePatchType, []byte(`{"metadata":{"resourceVersion":"1"},"spec":{"size":2}}`), metav1.PatchOptions{}); !apierrors.IsConflict(err) {
			t.Errorf("merge patch with a stale resourceVersion: want Conflict, got %v", err)
		}
		if _, err := wc.Patch(ctx, "absent", types.MergePatchType, []byte(`{"spec":{"size":2}}`), metav1.PatchOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("merge patch of a missing object: want NotFound, got %v", err)
		}
		if got := mustGet(t, ctx, wc, "patched"); got.GetResourceVersion() != before {
			t.Errorf("rejected patches changed the object: rv %s -> %s", before, got.GetResourceVersion())
		}
	})

	t.Run("StatusSubresource", func(t *testing.T) {
		ctx, wc, ns := setup(t)
		w := widget(ns, "status", nil, validSpec())
		w.Object["status"] = map[string]any{"phase": "Preset"}
		created := mustCreate(t, ctx, wc, w)
		if p, _, _ := unstructured.NestedString(created.Object, "status", "phase"); p != "" {
			t.Errorf("create kept status.phase %q; the status subresource owns status", p)
		}

		// A status update changes status only.
		st := created.DeepCopy()
		st.Object["status"] = map[string]any{"phase": "Ready"}
		if err := unstructured.SetNestedField(st.Object, int64(9), "spec", "size"); err != nil {
			t.Fatal(err)
		}
		got, err := wc.UpdateStatus(ctx, st, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update status: %v", err)
		}
		if nested[string](t, got, "status", "phase") != "Ready" || nested[int64](t, got, "spec", "size") != 3 || got.GetGeneration() != 1 {
			t.Errorf("status update: phase %v size %v generation %d; want Ready, 3, 1",
				got.Object["status"], got.Object["spec"], got.GetGeneration())
		}

		// A main update changes spec and ignores status.
		main := got.DeepCopy()
		main.Object["status"] = map[string]any{"phase": "Gone"}
		if err := unstructured.SetNestedField(main.Object, int64(5), "spec", "size"); err != nil {
			t.Fatal(err)
		}
		got, err = wc.Update(ctx, main, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if nested[string](t, got, "status", "phase") != "Ready" || nested[int64](t, got, "spec", "size") != 5 || got.GetGeneration() != 2 {
			t.Errorf("main update: status %v spec %v generation %d; want Ready, 5, 2",
				got.Object["status"], got.Object["spec"], got.GetGeneration())
		}

		// Metadata changes do not bump the generation.
		meta := got.DeepCopy()
		meta.SetLabels(map[string]string{"only": "labels"})
		meta.SetAnnotations(map[string]string{"note": "metadata"})
		got, err = wc.Update(ctx, meta, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update labels: %v", err)
		}
		if got.GetGeneration() != 2 || got.GetLabels()["only"] != "labels" {
			t.Errorf("labels update: generation %d labels %v; want 2 and the new label", got.GetGeneration(), got.GetLabels())
		}

		// A status patch sets status and leaves the generation alone.
		got, err = wc.Patch(ctx, "status", types.MergePatchType, []byte(`{"status":{"observedGeneration":2},"spec":{"size":1}}`), metav1.PatchOptions{}, "status")
		if err != nil {
			t.Fatalf("patch status: %v", err)
		}
		if nested[int64](t, got, "status", "observedGeneration") != 2 || nested[int64](t, got, "spec", "size") != 5 || got.GetGeneration() != 2 {
			t.Errorf("status patch: status %v spec %v generation %d", got.Object["status"], got.Object["spec"], got.GetGeneration())
		}
		if _, err := wc.Patch(ctx, "status", types.MergePatchType, []byte(`{"status":{"phase":7}}`), metav1.PatchOptions{}, "status"); !apierrors.IsInvalid(err) {
			t.Errorf("status patch breaking the status schema: want Invalid, got %v", err)
		}

		// A status update changes nothing but status, labels included.
		labeled := got.DeepCopy()
		labeled.SetLabels(map[string]string{"from": "status"})
		labeled.Object["status"] = map[string]any{"phase": "Relabeled"}
		got, err = wc.UpdateStatus(ctx, labeled, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update status with a label change: %v", err)
		}
		if got.GetLabels()["from"] != "" || got.GetLabels()["only"] != "labels" || nested[string](t, got, "status", "phase") != "Relabeled" {
			t.Errorf("status update with a label change: labels %v status %v; want the old labels and the new status", got.GetLabels(), got.Object["status"])
		}
	})

	t.Run("Finalizers", func(t *testing.T) {
		ctx, wc, ns := setup(t)
		w := widget(ns, "held", nil, validSpec())
		w.SetFinalizers([]string{holdFinalizer})
		mustCreate(t, ctx, wc, w)
		if err := wc.Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete: %v", err)
		}
		got := mustGet(t, ctx, wc, "held")
		if got.GetDeletionTimestamp() == nil || !slices.Equal(got.GetFinalizers(), []string{holdFinalizer}) {
			t.Fatalf("after delete with a finalizer: deletionTimestamp %v finalizers %v; want set and kept",
				got.GetDeletionTimestamp(), got.GetFinalizers())
		}
		// Deleting again changes nothing.
		if err := wc.Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
			t.Errorf("second delete while finalizing: %v", err)
		}
		list, err := wc.List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 1 {
			t.Fatalf("list while finalizing: %v items, err %v; want the object", len(list.Items), err)
		}
		// No finalizer may be added once deletion started.
		more := got.DeepCopy()
		more.SetFinalizers([]string{holdFinalizer, testGroup + "/another"})
		if _, err := wc.Update(ctx, more, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("adding a finalizer to an object being deleted: want Invalid, got %v", err)
		}
		// Nor may the deletionTimestamp be cleared.
		revive := got.DeepCopy()
		revive.SetDeletionTimestamp(nil)
		if upd, err := wc.Update(ctx, revive, metav1.UpdateOptions{}); err == nil && upd.GetDeletionTimestamp() == nil {
			t.Errorf("an update cleared deletionTimestamp")
		}
		got = mustGet(t, ctx, wc, "held")
		got.SetFinalizers(nil)
		if _, err := wc.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("remove the finalizer: %v", err)
		}
		wantNotFound(t, ctx, wc, "held")

		// Preconditions on delete.
		obj := mustCreate(t, ctx, wc, widget(ns, "guarded", nil, validSpec()))
		staleRV := obj.GetResourceVersion()
		if _, err := wc.Patch(ctx, "guarded", types.MergePatchType, []byte(`{"spec":{"size":6}}`), metav1.PatchOptions{}); err != nil {
			t.Fatalf("patch: %v", err)
		}
		if err := wc.Delete(ctx, "guarded", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &staleRV}}); !apierrors.IsConflict(err) {
			t.Errorf("delete with a stale resourceVersion precondition: want Conflict, got %v", err)
		}
		wrongUID := types.UID("00000000-0000-0000-0000-000000000000")
		if err := wc.Delete(ctx, "guarded", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &wrongUID}}); !apierrors.IsConflict(err) {
			t.Errorf("delete with a wrong uid precondition: want Conflict, got %v", err)
		}
		uid := obj.GetUID()
		if err := wc.Delete(ctx, "guarded", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil {
			t.Errorf("delete with the right uid precondition: %v", err)
		}
		wantNotFound(t, ctx, wc, "guarded")
		if err := wc.Delete(ctx, "guarded", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("delete of a missing object: want NotFound, got %v", err)
		}
	})

	t.Run("DeleteCollection", func(t *testing.T) {
		ctx, wc, ns := setup(t)
		for i := range 6 {
			group := "keep"
			if i < 4 {
				group = "drop"
			}
			mustCreate(t, ctx, wc, widget(ns, "dc-", map[string]string{"group": group}, validSpec()))
		}
		if err := wc.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "group=drop"}); err != nil {
			t.Fatalf("delete collection: %v", err)
		}
		list, err := wc.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(list.Items) != 2 {
			t.Fatalf("after deleting group=drop: %d objects left, want the 2 of group=keep", len(list.Items))
		}
		for _, it := range list.Items {
			if it.GetLabels()["group"] != "keep" {
				t.Errorf("object %s of group %q survived", it.GetName(), it.GetLabels()["group"])
			}
		}
	})

	t.Run("DryRun", func(t *testing.T) {
		ctx, wc, ns := setup(t)
		all := []string{metav1.DryRunAll}
		got, err := wc.Create(ctx, widget(ns, "dry", nil, validSpec()), metav1.CreateOptions{DryRun: all})
		if err != nil {
			t.Fatalf("dry-run create: %v", err)
		}
		if got.GetName() != "dry" || nested[string](t, got, "spec", "mode") != "auto" {
			t.Errorf("dry-run create returned %v, want the defaulted object", got.Object)
		}
		wantNotFound(t, ctx, wc, "dry")
		if _, err := wc.Create(ctx, widget(ns, "dry-", nil, validSpec()), metav1.CreateOptions{DryRun: all}); err != nil {
			t.Errorf("dry-run create with generateName: %v", err)
		}
		if _, err := wc.Create(ctx, widget(ns, "dry-bad", nil, map[string]any{"size": int64(0)}), metav1.CreateOptions{DryRun: all}); !apierrors.IsInvalid(err) {
			t.Errorf("dry-run create of an invalid object: want Invalid, got %v", err)
		}

		real := mustCreate(t, ctx, wc, widget(ns, "wet", nil, validSpec()))
		upd := real.DeepCopy()
		if err := unstructured.SetNestedField(upd.Object, int64(8), "spec", "size"); err != nil {
			t.Fatal(err)
		}
		if got, err := wc.Update(ctx, upd, metav1.UpdateOptions{DryRun: all}); err != nil || nested[int64](t, got, "spec", "size") != 8 {
			t.Errorf("dry-run update: %v (result %v)", err, got)
		}
		if _, err := wc.Patch(ctx, "wet", types.MergePatchType, []byte(`{"spec":{"size":9}}`), metav1.PatchOptions{DryRun: all}); err != nil {
			t.Errorf("dry-run patch: %v", err)
		}
		if err := wc.Delete(ctx, "wet", metav1.DeleteOptions{DryRun: all}); err != nil {
			t.Errorf("dry-run delete: %v", err)
		}
		if err := wc.DeleteCollection(ctx, metav1.DeleteOptions{DryRun: all}, metav1.ListOptions{}); err != nil {
			t.Errorf("dry-run delete collection: %v", err)
		}
		after := mustGet(t, ctx, wc, "wet")
		if after.GetResourceVersion() != real.GetResourceVersion() || nested[int64](t, after, "spec", "size") != 3 {
			t.Errorf("dry-run writes changed the object: rv %s -> %s, spec %v",
				real.GetResourceVersion(), after.GetResourceVersion(), after.Object["spec"])
		}
		list, err := wc.List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 1 {
			t.Errorf("after dry runs: list %v, err %v; want only wet", names(list.Items), err)
		}
	})

	t.Run("Validation", func(t *testing.T) {
		ctx, wc, ns := setup(t)
		for _, tc := range []struct {
			name   string
			spec   map[string]any
			causes map[string]metav1.CauseType // field -> cause type ("" = any)
		}{
			{"bounds", map[string]any{"size": int64(11), "color": "purple", "code": "BAD", "tags": []any{"a", "b", "c", "d"}},
				map[string]metav1.CauseType{"spec.size": "", "spec.color": metav1.CauseTypeFieldValueNotSupported, "spec.code": "", "spec.tags": ""}},
			{"required", map[string]any{"code": "abc-1"},
				map[string]metav1.CauseType{"spec.size": metav1.CauseTypeFieldValueRequired, "spec.color": metav1.CauseTypeFieldValueRequired}},
			{"types", map[string]any{"size": "three", "color": "red"},
				map[string]metav1.CauseType{"spec.size": ""}},
			{"minimum", map[string]any{"size": int64(0), "color": "green"},
				map[string]metav1.CauseType{"spec.size": ""}},
		} {
			_, err := wc.Create(ctx, widget(ns, tc.name, nil, tc.spec), metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Errorf("%s: want Invalid (422), got %v", tc.name, err)
				continue
			}
			st := err.(apierrors.APIStatus).Status()
			if st.Code != 422 || st.Details == nil || st.Details.Kind != "Widget" || st.Details.Group != testGroup || st.Details.Name != tc.name {
				t.Errorf("%s: status code %d details %+v; want 422, Widget, %s, %s", tc.name, st.Code, st.Details, testGroup, tc.name)
				continue
			}
			got := map[string]metav1.CauseType{}
			for _, c := range st.Details.Causes {
				got[c.Field] = c.Type
			}
			for field, typ := range tc.causes {
				gotType, ok := got[field]
				if !ok {
					t.Errorf("%s: no cause for field %s in %+v", tc.name, field, st.Details.Causes)
				} else if typ != "" && gotType != typ {
					t.Errorf("%s: cause for %s has type %q, want %q", tc.name, field, gotType, typ)
				}
			}
			wantNotFound(t, ctx, wc, tc.name)
		}
		badLabel := widget(ns, "badlabel", map[string]string{"ok": "not a valid label value!"}, validSpec())
		if _, err := wc.Create(ctx, badLabel, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !hasCause(err, "metadata.labels") {
			t.Errorf("create with an invalid label value: want Invalid with a metadata.labels cause, got %v", err)
		}
		w := widget(ns, "Bad_Name", nil, validSpec())
		if _, err := wc.Create(ctx, w, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !hasCause(err, "metadata.name") {
			t.Errorf("create with an invalid name: want Invalid with a metadata.name cause, got %v", err)
		}
	})

	t.Run("FieldValidation", func(t *testing.T) {
		ctx, _, ns := setup(t)
		rec := &warningRecorder{}
		cfg := s.restConfig()
		cfg.WarningHandler = rec
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		wc := dyn.Resource(widgetsGVR).Namespace(ns)
		withBogus := func(name string) *unstructured.Unstructured {
			spec := validSpec()
			spec["bogus"] = "x"
			return widget(ns, name, nil, spec)
		}
		_, err = wc.Create(ctx, withBogus("strict"), metav1.CreateOptions{FieldValidation: "Strict"})
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.bogus"`) {
			t.Errorf("Strict create with spec.bogus: want BadRequest naming unknown field \"spec.bogus\", got %v", err)
		}
		wantNotFound(t, ctx, wc, "strict")

		rec.reset()
		got, err := wc.Create(ctx, withBogus("warn"), metav1.CreateOptions{FieldValidation: "Warn"})
		if err != nil {
			t.Fatalf("Warn create: %v", err)
		}
		if _, ok := got.Object["spec"].(map[string]any)["bogus"]; ok {
			t.Errorf("Warn create kept the unknown field: %v", got.Object["spec"])
		}
		if w := rec.all(); !slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, `unknown field "spec.bogus"`) }) {
			t.Errorf("Warn create: warnings %q, want one naming unknown field \"spec.bogus\"", w)
		}

		rec.reset()
		got, err = wc.Create(ctx, withBogus("ignore"), metav1.CreateOptions{FieldValidation: "Ignore"})
		if err != nil {
			t.Fatalf("Ignore create: %v", err)
		}
		if _, ok := got.Object["spec"].(map[string]any)["bogus"]; ok {
			t.Errorf("Ignore create kept the unknown field: %v", got.Object["spec"])
		}
		if w := rec.all(); len(w) != 0 {
			t.Errorf("Ignore create: warnings %q, want none", w)
		}
		if _, err := wc.Create(ctx, widget(ns, "mode", nil, validSpec()), metav1.CreateOptions{FieldValidation: "Loose"}); !apierrors.IsInvalid(err) {
			t.Errorf("fieldValidation=Loose: want Invalid (CreateOptions), got %v", err)
		}
	})
}

// hasCause reports whether err is an API status with a cause for field.
func hasCause(err error, field string) bool {
	st, ok := err.(apierrors.APIStatus)
	if !ok || st.Status().Details == nil {
		return false
	}
	for _, c := range st.Status().Details.Causes {
		if c.Field == field {
			return true
		}
	}
	return false
}

// warningRecorder keeps the warnings the server sends.
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

// HandleWarningHeader records one warning.
func (r *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnings = append(r.warnings, text)
}

func (r *warningRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnings = nil
}

func (r *warningRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.warnings)
}
