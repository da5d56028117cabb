package main

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// registerCRDs registers the Widget CRD in opts.rounds groups, the first
// of them the one the other scenarios use, and reports the median time
// from the create request until the CRD is Established and until the
// first list of its resource succeeds. It also creates the namespaces.
func registerCRDs(ctx context.Context, e *env, rep *Report) error {
	var established, served []float64
	for r := range e.opts.rounds {
		group := benchGroup
		if r > 0 {
			group = fmt.Sprintf("r%d.%s", r, benchGroup)
		}
		est, srv, err := registerCRD(ctx, e.clients, group)
		if err != nil {
			return err
		}
		established = append(established, millis(est))
		served = append(served, millis(srv))
	}
	rep.addRounds("crd", "create → Established", established, "ms", nil)
	rep.addRounds("crd", "create → first list of the new resource", served, "ms", nil)
	for _, ns := range []string{nsBench, nsSingle, nsWatch} {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns},
		}}
		_, err := e.clients.dyn.Resource(nsGVR).Create(ctx, obj, metav1.CreateOptions{})
		if apierrors.IsNotFound(err) {
			// Kubernetes' custom-resource API server alone serves no
			// namespaces, and needs none to exist.
			break
		}
		if err != nil {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	return nil
}

// registerCRD creates the widget CRD of group and returns how long after
// the request it was Established and its resource could be listed.
func registerCRD(ctx context.Context, c *clients, group string) (established, served time.Duration, err error) {
	crds := c.dyn.Resource(crdGVR)
	start := time.Now()
	crd, err := crds.Create(ctx, widgetCRD(group), metav1.CreateOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("create CRD of %s: %w", group, err)
	}
	if !isEstablished(crd) {
		if err := waitEstablished(ctx, c, crd); err != nil {
			return 0, 0, err
		}
	}
	established = time.Since(start)
	gvr := schema.GroupVersionResource{Group: group, Version: widgetGVR.Version, Resource: widgetGVR.Resource}
	if err := waitListed(ctx, c.dyn.Resource(gvr)); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", gvr, err)
	}
	return established, time.Since(start), nil
}

// waitListed lists resource every millisecond, for at most 10s, until it
// is served: until the list answers anything but 404.
func waitListed(ctx context.Context, resource dynamic.ResourceInterface) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		_, err := resource.List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) || ctx.Err() != nil {
			return fmt.Errorf("list new resource: %w", err)
		}
		time.Sleep(time.Millisecond) // polling, as clients refreshing discovery do
	}
}

// waitEstablished watches crd from the version it was created at until a
// change shows it Established.
func waitEstablished(ctx context.Context, c *clients, crd *unstructured.Unstructured) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w, err := c.dyn.Resource(crdGVR).Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", crd.GetName()).String(),
		ResourceVersion: crd.GetResourceVersion(),
	})
	if err != nil {
		return fmt.Errorf("watch CRD %s: %w", crd.GetName(), err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if u, ok := ev.Object.(*unstructured.Unstructured); ok && isEstablished(u) {
			return nil
		}
	}
	return fmt.Errorf("CRD %s not Established: %w", crd.GetName(), ctx.Err())
}

// isEstablished tells whether crd has the condition Established=True.
func isEstablished(crd *unstructured.Unstructured) bool {
	conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conditions {
		if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
