package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
)

// contended is the client's retry schedule for conflicts among the
// suite's own concurrent writers: quick jittered tries, as many as the
// test's context allows. On a loaded machine one writer can lose hundreds
// of rounds in a row; what the tests check is that no write is lost, not
// that the scheduler is fair. (No Cap: wait.Backoff ends the steps once
// its delay reaches the cap, so the delay stays constant instead.)
var contended = wait.Backoff{Steps: 1 << 20, Duration: 2 * time.Millisecond, Jitter: 1}

// TestConcurrentWriters checks compare-and-swap from many clients at once:
// read-modify-write loops lose no increment, server-side patches lose no
// label, and concurrent generateName creates get distinct names.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 2*time.Minute)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "race")
	wc := c.widgets("race")
	const workers, rounds = 16, 20

	t.Run("ReadModifyWrite", func(t *testing.T) {
		spec := validSpec()
		spec["replicas"] = int64(0)
		mustCreate(t, ctx, wc, widget("race", "counter", nil, spec))
		var wg sync.WaitGroup
		var conflictsMu sync.Mutex
		conflicts := 0
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					err := retry.RetryOnConflict(contended, func() error {
						cur, err := wc.Get(ctx, "counter", metav1.GetOptions{})
						if err != nil {
							return err
						}
						n, _, _ := unstructured.NestedInt64(cur.Object, "spec", "replicas")
						if err := unstructured.SetNestedField(cur.Object, n+1, "spec", "replicas"); err != nil {
							return err
						}
						_, err = wc.Update(ctx, cur, metav1.UpdateOptions{})
						if err != nil {
							conflictsMu.Lock()
							conflicts++
							conflictsMu.Unlock()
						}
						return err
					})
					if err != nil {
						t.Errorf("increment: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		got := mustGet(t, ctx, wc, "counter")
		if n := nested[int64](t, got, "spec", "replicas"); n != workers*rounds {
			t.Errorf("counter = %d after %d increments (%d conflicts retried)", n, workers*rounds, conflicts)
		}
		if g := got.GetGeneration(); g != 1+workers*rounds {
			t.Errorf("generation = %d after %d spec changes, want %d", g, workers*rounds, 1+workers*rounds)
		}
	})

	// Patches that carry no resourceVersion are retried by the server until
	// they apply, as Kubernetes does: clients never see a conflict.
	t.Run("ServerSidePatches", func(t *testing.T) {
		mustCreate(t, ctx, wc, widget("race", "labels", nil, validSpec()))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					patch := fmt.Sprintf(`{"metadata":{"labels":{"w%d-r%d":"x"}}}`, w, r)
					if _, err := wc.Patch(ctx, "labels", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
						t.Errorf("patch %s: %v", patch, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if got := mustGet(t, ctx, wc, "labels").GetLabels(); len(got) != workers*rounds {
			t.Errorf("%d labels after %d concurrent patches each adding one", len(got), workers*rounds)
		}
	})

	// A delete without preconditions is retried by the server while other
	// clients keep updating the object: it never answers a conflict.
	t.Run("DeleteUnderContention", func(t *testing.T) {
		for round := range 5 {
			name := fmt.Sprintf("hot-%d", round)
			mustCreate(t, ctx, wc, widget("race", name, nil, validSpec()))
			var (
				wg      sync.WaitGroup
				updates = make(chan struct{}, workers*rounds)
			)
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						err := retry.RetryOnConflict(contended, func() error {
							cur, err := wc.Get(ctx, name, metav1.GetOptions{})
							if err != nil {
								return err
							}
							cur.SetAnnotations(map[string]string{"tick": cur.GetResourceVersion()})
							_, err = wc.Update(ctx, cur, metav1.UpdateOptions{})
							return err
						})
						if apierrors.IsNotFound(err) {
							return
						}
						if err != nil {
							t.Errorf("update %s: %v", name, err)
							return
						}
						select {
						case updates <- struct{}{}:
						default:
						}
					}
				}()
			}
			for range workers {
				<-updates
			}
			if err := wc.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Errorf("delete %s while %d clients update it: %v", name, workers, err)
				// Stop the updaters the delete did not.
				for {
					if err := wc.Delete(ctx, name, metav1.DeleteOptions{}); err == nil || apierrors.IsNotFound(err) {
						break
					}
				}
			}
			wg.Wait()
		}
	})

	t.Run("GenerateName", func(t *testing.T) {
		var (
			mu   sync.Mutex
			seen = map[string]bool{}
			wg   sync.WaitGroup
		)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					got, err := wc.Create(ctx, widget("race", "gen-", map[string]string{"gen": "yes"}, validSpec()), metav1.CreateOptions{})
					if err != nil {
						t.Errorf("create with generateName: %v", err)
						return
					}
					mu.Lock()
					if seen[got.GetName()] {
						t.Errorf("generateName handed out %s twice", got.GetName())
					}
					seen[got.GetName()] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		list, err := wc.List(ctx, metav1.ListOptions{LabelSelector: "gen=yes"})
		if err != nil || len(list.Items) != workers*rounds || len(seen) != workers*rounds {
			t.Errorf("generateName: %d names acknowledged, %d listed (%v), want %d", len(seen), len(list.Items), err, workers*rounds)
		}
	})
}

// TestDeletePropagationPolicies deletes an owner Widget with a dependent
// Widget under each propagationPolicy and follows the watch, as Kubernetes
// behaves: Background deletes the owner at once and the dependent after
// it; Foreground first marks the owner with the foregroundDeletion
// finalizer and deletes it only after its dependent; Orphan marks the owner
// with the orphan finalizer, removes the dependent's owner reference, then
// deletes the owner and keeps the dependent.
func TestDeletePropagationPolicies(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "policy")
	wc := c.widgets("policy")
	for _, p := range []metav1.DeletionPropagation{metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan} {
		t.Run(string(p), func(t *testing.T) {
			ownerName := strings.ToLower(string(p))
			depName := ownerName + "-dep"
			owner := mustCreate(t, ctx, wc, widget("policy", ownerName, nil, validSpec()))
			dep := widget("policy", depName, nil, validSpec())
			dep.SetOwnerReferences([]metav1.OwnerReference{{
				APIVersion: owner.GetAPIVersion(), Kind: owner.GetKind(), Name: ownerName, UID: owner.GetUID(),
				BlockOwnerDeletion: new(true),
			}})
			dep = mustCreate(t, ctx, wc, dep)
			w, err := wc.Watch(ctx, metav1.ListOptions{ResourceVersion: dep.GetResourceVersion()})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			if err := wc.Delete(ctx, ownerName, metav1.DeleteOptions{PropagationPolicy: &p}); err != nil {
				t.Fatalf("delete with propagationPolicy %s: %v", p, err)
			}
			// history records what happened to each object, in order:
			// "marked <finalizers>", "disowned", "deleted"; order records
			// "<name> <what>" across both.
			history := map[string][]string{}
			var order []string
			record := func(name, what string) {
				history[name] = append(history[name], what)
				order = append(order, name+" "+what)
			}
			done := func() bool {
				if p == metav1.DeletePropagationOrphan {
					return slices.Contains(history[ownerName], "deleted") && slices.Contains(history[depName], "disowned")
				}
				return slices.Contains(history[ownerName], "deleted") && slices.Contains(history[depName], "deleted")
			}
			for !done() {
				ev := nextEvent(t, w)
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					continue
				}
				switch {
				case ev.Type == watch.Deleted:
					record(u.GetName(), "deleted")
				case u.GetName() == ownerName && u.GetDeletionTimestamp() != nil:
					record(ownerName, "marked "+strings.Join(u.GetFinalizers(), ","))
				case u.GetName() == depName && len(u.GetOwnerReferences()) == 0:
					record(depName, "disowned")
				}
			}
			var want []string
			first, then := ownerName+" deleted", depName+" deleted"
			switch p {
			case metav1.DeletePropagationBackground:
				want = []string{"deleted"}
			case metav1.DeletePropagationForeground:
				want = []string{"marked " + metav1.FinalizerDeleteDependents, "deleted"}
				first, then = depName+" deleted", ownerName+" deleted"
			case metav1.DeletePropagationOrphan:
				want = []string{"marked " + metav1.FinalizerOrphanDependents, "deleted"}
				first, then = depName+" disowned", ownerName+" deleted"
			}
			if got := slices.Compact(history[ownerName]); !slices.Equal(got, want) {
				t.Errorf("owner under %s: %v, want %v", p, got, want)
			}
			if i, j := slices.Index(order, first), slices.Index(order, then); i > j {
				t.Errorf("under %s: %v, want %q before %q", p, order, first, then)
			}
			if p == metav1.DeletePropagationOrphan {
				if got := mustGet(t, ctx, wc, depName); len(got.GetOwnerReferences()) != 0 || got.GetDeletionTimestamp() != nil {
					t.Errorf("orphaned dependent: ownerReferences %v deletionTimestamp %v, want it kept without them", got.GetOwnerReferences(), got.GetDeletionTimestamp())
				}
				return
			}
			wantNotFound(t, ctx, wc, ownerName)
			wantNotFound(t, ctx, wc, depName)
		})
	}
}
