package controller_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/controller"
	"github.com/setpoint/setpoint/pkg/informer"
)

// This operator keeps one ConfigMap per Widget, holding the widget's size,
// and reports the size it converged to in the widget's status. It runs as a
// singleton under leader election: start several replicas and one of them
// reconciles, the others take over if it goes away.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg, err := client.NewConfig("") // $KUBECONFIG or ~/.kube/config
	if err != nil {
		log.Fatal(err)
	}
	widgets, err := client.New[Widget](cfg, client.Resource{
		Group: "test.setpoint.dev", Version: "v1", Resource: "widgets", Kind: "Widget", Namespaced: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	configMaps, err := client.New[corev1.ConfigMap](cfg, client.Resource{
		Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true,
	})
	if err != nil {
		log.Fatal(err)
	}

	// Informers cache what the controller watches; handlers feed its queue.
	widgetInf := informer.New(widgets, informer.Options[*Widget]{})
	childInf := informer.New(configMaps, informer.Options[*corev1.ConfigMap]{})

	// A widget's changes reconcile it, and so do its children's. The
	// reconciler reads the widget and makes its child and status match.
	ctrl, err := controller.For(widgetInf).
		Owns(controller.Kind(childInf)).
		WithOptions(controller.Options{Workers: 4}).
		Complete(widgetReconciler{&env{widgets: widgets, cms: configMaps}})
	if err != nil {
		log.Fatal(err)
	}

	mgr, err := controller.NewManager(controller.ManagerOptions{
		LeaderElection: &controller.LeaderElection{Config: cfg, Namespace: "default", Name: "widget-operator"},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range []controller.Runnable{widgetInf, childInf, ctrl} {
		if err := mgr.Add(r); err != nil {
			log.Fatal(err)
		}
	}
	if err := mgr.Run(ctx); err != nil { // until Ctrl-C
		log.Fatal(err)
	}
}

// A Result asks for the key to be reconciled again: here, to poll something
// outside the cluster that sends no events.
func ExampleResult() {
	poll := controller.ReconcilerFunc(func(ctx context.Context, req controller.Request) (controller.Result, error) {
		// ... look at the outside world, update status ...
		return controller.Result{RequeueAfter: 30 * time.Second}, nil
	})
	_ = poll
}

// TerminalError stops retries for a key whose object cannot be converged
// until someone changes it; its next change reconciles it again.
func ExampleTerminalError() {
	r := controller.ReconcilerFunc(func(ctx context.Context, req controller.Request) (controller.Result, error) {
		size := -1 // read from the object
		if size < 0 {
			return controller.Result{}, controller.TerminalError(fmt.Errorf("%s: spec.size %d is negative", req, size))
		}
		return controller.Result{}, nil
	})
	_, err := r.Reconcile(context.Background(), controller.Request{Namespace: "default", Name: "w1"})
	fmt.Println(err)
	fmt.Println(errors.Unwrap(err) != nil)
	// Output:
	// terminal error: default/w1: spec.size -1 is negative
	// true
}

// Watches maps objects of another kind to the requests they affect: here a
// settings ConfigMap maps to the widgets whose "settings" label names it,
// looked up in the widget informer's cache.
func ExampleBuilder_Watches() {
	var widgetInf *informer.Informer[Widget, *Widget]                       // from informer.New
	var settingsInf *informer.Informer[corev1.ConfigMap, *corev1.ConfigMap] // from informer.New
	var r controller.Reconciler
	_, _ = controller.For(widgetInf).
		Watches(controller.Kind(settingsInf), func(obj client.Object) []controller.Request {
			var reqs []controller.Request
			for _, w := range widgetInf.List() {
				if w.Namespace == obj.GetNamespace() && w.Labels["settings"] == obj.GetName() {
					reqs = append(reqs, controller.Request{Namespace: w.Namespace, Name: w.Name})
				}
			}
			return reqs
		}).
		Complete(r)
}
