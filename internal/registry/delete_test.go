package registry_test

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/internal/registry"
)

// policy returns DeleteOptions with propagationPolicy p.
func policy(p metav1.DeletionPropagation) *metav1.DeleteOptions {
	return &metav1.DeleteOptions{PropagationPolicy: &p}
}

// orphanDependents returns DeleteOptions with the legacy orphanDependents.
func orphanDependents(v bool) *metav1.DeleteOptions {
	return &metav1.DeleteOptions{OrphanDependents: &v} //nolint:staticcheck // still sent by clients
}

// TestDeletePropagationFinalizers deletes under every propagation option
// and checks what Kubernetes records: Background (and the default)
// deletes at once, Foreground and Orphan keep the object being deleted
// with the finalizer the garbage collector acts on, next to the object's
// own finalizers.
func TestDeletePropagationFinalizers(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	const hold = "example.com/hold"
	for _, tc := range []struct {
		name     string
		own      []string
		opts     *metav1.DeleteOptions
		gone     bool
		wantFins []string
	}{
		{name: "default", gone: true},
		{name: "background", opts: policy(metav1.DeletePropagationBackground), gone: true},
		{name: "foreground", opts: policy(metav1.DeletePropagationForeground), wantFins: []string{metav1.FinalizerDeleteDependents}},
		{name: "orphan", opts: policy(metav1.DeletePropagationOrphan), wantFins: []string{metav1.FinalizerOrphanDependents}},
		{name: "orphan-dependents-true", opts: orphanDependents(true), wantFins: []string{metav1.FinalizerOrphanDependents}},
		{name: "orphan-dependents-false", opts: orphanDependents(false), gone: true},
		{name: "held-background", own: []string{hold}, opts: policy(metav1.DeletePropagationBackground), wantFins: []string{hold}},
		{name: "held-foreground", own: []string{hold}, opts: policy(metav1.DeletePropagationForeground), wantFins: []string{hold, metav1.FinalizerDeleteDependents}},
		{name: "created-orphan", own: []string{metav1.FinalizerOrphanDependents}, wantFins: []string{metav1.FinalizerOrphanDependents}},
		{name: "created-foreground", own: []string{metav1.FinalizerDeleteDependents}, wantFins: []string{metav1.FinalizerDeleteDependents}},
		{name: "created-orphan-deleted-background", own: []string{metav1.FinalizerOrphanDependents}, opts: policy(metav1.DeletePropagationBackground), gone: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := widget(tc.name, nil)
			w.SetFinalizers(tc.own)
			if _, err := e.reg.Create(ctx, res, "default", w, registry.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			got, gone, err := e.reg.Delete(ctx, res, "default", tc.name, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if gone != tc.gone {
				t.Fatalf("gone = %v, want %v", gone, tc.gone)
			}
			stored, err := e.reg.Get(ctx, res, "default", tc.name)
			if tc.gone {
				wantStatus(t, err, 404, metav1.StatusReasonNotFound)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range []*unstructured.Unstructured{got, stored} {
				if !slices.Equal(o.GetFinalizers(), tc.wantFins) || o.GetDeletionTimestamp() == nil {
					t.Errorf("finalizers %v deletionTimestamp %v, want %v and being deleted", o.GetFinalizers(), o.GetDeletionTimestamp(), tc.wantFins)
				}
			}
		})
	}
}

// TestDeletePropagationSwitch deletes an object again under another
// policy, as Kubernetes allows: the finalizers follow the latest policy,
// the deletionTimestamp stays, and Background ends a deletion nothing else
// holds.
func TestDeletePropagationSwitch(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	if _, err := e.reg.Create(ctx, res, "default", widget("sw", nil), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	first, _, err := e.reg.Delete(ctx, res, "default", "sw", policy(metav1.DeletePropagationForeground))
	if err != nil {
		t.Fatal(err)
	}
	again, gone, err := e.reg.Delete(ctx, res, "default", "sw", policy(metav1.DeletePropagationForeground))
	if err != nil || gone || again.GetResourceVersion() != first.GetResourceVersion() {
		t.Fatalf("same policy again: rv %s (was %s), gone %v, %v; want the object unchanged", again.GetResourceVersion(), first.GetResourceVersion(), gone, err)
	}
	orphaned, gone, err := e.reg.Delete(ctx, res, "default", "sw", policy(metav1.DeletePropagationOrphan))
	if err != nil || gone {
		t.Fatal(gone, err)
	}
	if !slices.Equal(orphaned.GetFinalizers(), []string{metav1.FinalizerOrphanDependents}) {
		t.Errorf("finalizers after switching to Orphan: %v", orphaned.GetFinalizers())
	}
	if !orphaned.GetDeletionTimestamp().Equal(first.GetDeletionTimestamp()) {
		t.Errorf("deletionTimestamp moved from %v to %v", first.GetDeletionTimestamp(), orphaned.GetDeletionTimestamp())
	}
	if _, gone, err = e.reg.Delete(ctx, res, "default", "sw", policy(metav1.DeletePropagationBackground)); err != nil || !gone {
		t.Fatalf("background delete of an object held only by orphan: gone %v, %v", gone, err)
	}
}

// TestDeletePropagationDryRunAndPreconditions checks that a dry run
// records no finalizer and a failed precondition changes nothing.
func TestDeletePropagationDryRunAndPreconditions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	created, err := e.reg.Create(ctx, res, "default", widget("dry", nil), registry.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := policy(metav1.DeletePropagationForeground)
	opts.DryRun = []string{metav1.DryRunAll}
	got, gone, err := e.reg.Delete(ctx, res, "default", "dry", opts)
	if err != nil || gone || !slices.Equal(got.GetFinalizers(), []string{metav1.FinalizerDeleteDependents}) {
		t.Fatalf("dry run: %v gone %v, %v", got.GetFinalizers(), gone, err)
	}
	bad := types.UID("other")
	opts = policy(metav1.DeletePropagationOrphan)
	opts.Preconditions = &metav1.Preconditions{UID: &bad}
	_, _, err = e.reg.Delete(ctx, res, "default", "dry", opts)
	wantStatus(t, err, 409, metav1.StatusReasonConflict)
	stored, err := e.reg.Get(ctx, res, "default", "dry")
	if err != nil {
		t.Fatal(err)
	}
	if stored.GetResourceVersion() != created.Object.GetResourceVersion() || stored.GetDeletionTimestamp() != nil || len(stored.GetFinalizers()) != 0 {
		t.Errorf("after a dry run and a failed precondition: rv %s finalizers %v deletionTimestamp %v, want it untouched",
			stored.GetResourceVersion(), stored.GetFinalizers(), stored.GetDeletionTimestamp())
	}
}

// TestForegroundFinalizerRemovalDeletes removes the foregroundDeletion
// finalizer, as the garbage collector does: the object goes away.
func TestForegroundFinalizerRemovalDeletes(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	res := e.widgets(t)
	if _, err := e.reg.Create(ctx, res, "default", widget("fg", nil), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.reg.Delete(ctx, res, "default", "fg", policy(metav1.DeletePropagationForeground)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Patch(ctx, res, "default", "fg", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), registry.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := e.reg.Get(ctx, res, "default", "fg")
	wantStatus(t, err, 404, metav1.StatusReasonNotFound)
}
