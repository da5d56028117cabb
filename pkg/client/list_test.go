package client_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// TestPagination checks List pages and that ListAll follows continue
// tokens to a consistent snapshot.
func TestPagination(t *testing.T) {
	cfg := start(t, setpointtest.Options{})
	createNamespace(t, cfg, "pages")
	ctx := t.Context()
	c := newClient[corev1.ConfigMap](t, cfg, configMapsRes)
	createConfigMaps(t, c, "pages", 7)

	page, err := c.List(ctx, "pages", metav1.ListOptions{Limit: 3})
	if err != nil || len(page.Items) != 3 || page.Continue == "" {
		t.Fatalf("first page = %+v, %v", page, err)
	}
	// Objects written after the first page are not in the snapshot.
	if _, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "pages", Name: "zz-late"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rest, err := c.ListAll(ctx, "pages", metav1.ListOptions{Limit: 3, Continue: page.Continue})
	if err != nil || len(rest.Items) != 4 || rest.ResourceVersion != page.ResourceVersion || rest.Continue != "" {
		t.Fatalf("ListAll from the first page's token = %d items at %s, %v; want 4 at %s", len(rest.Items), rest.ResourceVersion, err, page.ResourceVersion)
	}
	all, err := c.ListAll(ctx, "pages", metav1.ListOptions{Limit: 2})
	if err != nil || len(all.Items) != 8 {
		t.Fatalf("ListAll = %+v, %v", all, err)
	}
	for i, cm := range all.Items {
		if cm.Kind != "ConfigMap" || cm.APIVersion != "v1" {
			t.Fatalf("item %d has apiVersion %q kind %q", i, cm.APIVersion, cm.Kind)
		}
	}
	all, err = c.ListAll(ctx, "pages", metav1.ListOptions{})
	if err != nil || len(all.Items) != 8 {
		t.Fatalf("ListAll with the default page size = %d items, %v", len(all.Items), err)
	}
}

// createConfigMaps creates n ConfigMaps cm-0... in ns.
func createConfigMaps(t *testing.T, c *client.Client[corev1.ConfigMap, *corev1.ConfigMap], ns string, n int) {
	t.Helper()
	for i := range n {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cm-%d", i)}}
		if _, err := c.Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCompacted checks that a watch from a compacted resourceVersion
// fails with an error for which IsGone is true, that a watch from the
// current one still works, and that ListAll falls back to a full list when
// its continue token has expired.
func TestCompacted(t *testing.T) {
	cfg := start(t, setpointtest.Options{CompactionWindow: time.Nanosecond, CompactionInterval: 5 * time.Millisecond})
	createNamespace(t, cfg, "old")
	ctx := t.Context()
	c := newClient[corev1.ConfigMap](t, cfg, configMapsRes)
	createConfigMaps(t, c, "old", 3)
	page, err := c.List(ctx, "old", metav1.ListOptions{Limit: 1})
	if err != nil || page.Continue == "" {
		t.Fatalf("first page = %+v, %v", page, err)
	}
	if _, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "old", Name: "later"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Await compaction past the first page's resourceVersion.
	deadline := time.Now().Add(waitLimit)
	for {
		err := watchErr(t, c, page.ResourceVersion)
		if client.IsGone(err) {
			var status interface{ Status() metav1.Status }
			if !errors.As(err, &status) || status.Status().Code != 410 {
				t.Fatalf("watch from a compacted resourceVersion: %v, want a 410 StatusError", err)
			}
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("watch from %s: %v, want Gone once compacted", page.ResourceVersion, err)
		}
		time.Sleep(5 * time.Millisecond)
	}

	_, err = c.List(ctx, "old", metav1.ListOptions{Limit: 1, Continue: page.Continue})
	if !client.IsGone(err) || !strings.Contains(err.Error(), "continue") {
		t.Fatalf("List with an expired continue token: %v, want Gone", err)
	}
	all, err := c.ListAll(ctx, "old", metav1.ListOptions{Limit: 1, Continue: page.Continue})
	if err != nil || len(all.Items) != 4 {
		t.Fatalf("ListAll from an expired token = %+v, %v; want a full list of 4", all, err)
	}

	cur, err := c.List(ctx, "old", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, "old", metav1.ListOptions{ResourceVersion: cur.ResourceVersion})
	if err != nil {
		t.Fatalf("watch from the current resourceVersion: %v", err)
	}
	defer w.Stop()
	if err := c.Delete(ctx, "old", "later", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := nextChange(t, w); ev.Type != "DELETED" || ev.Object.Name != "later" {
		t.Fatalf("event = %s %s", ev.Type, ev.Object.Name)
	}
}

// watchErr watches from rv and returns the error the watch fails with, or
// nil when it delivers an event or runs for a second without one.
func watchErr(t *testing.T, c *client.Client[corev1.ConfigMap, *corev1.ConfigMap], rv string) error {
	t.Helper()
	w, err := c.Watch(t.Context(), "old", metav1.ListOptions{ResourceVersion: rv, TimeoutSeconds: ptrTo[int64](1)})
	if err != nil {
		return err
	}
	defer w.Stop()
	for range w.Events() {
		return nil
	}
	return w.Err()
}
