package informer_test

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/informer"
	"github.com/setpoint/setpoint/pkg/setpointtest"
)

// An informer over the ConfigMaps of one namespace: a handler hears of
// every change, and the cache answers reads without a request.
func Example() {
	srv, err := setpointtest.New(setpointtest.Options{})
	if err != nil {
		panic(err)
	}
	defer srv.Stop()
	cms, err := client.New[corev1.ConfigMap](srv.RESTConfig(),
		client.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true})
	if err != nil {
		panic(err)
	}

	inf := informer.New(cms, informer.Options[*corev1.ConfigMap]{Namespace: "default"})
	added := make(chan string)
	inf.AddHandler(informer.Handler[*corev1.ConfigMap]{
		// Handlers run one at a time on the informer's goroutine; the
		// objects they get are shared and must not be modified.
		OnAdd: func(cm *corev1.ConfigMap) { added <- informer.KeyOf(cm) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- inf.Run(ctx) }()
	if err := inf.WaitForSync(ctx); err != nil {
		panic(err)
	}

	_, err = cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "settings"},
		Data:       map[string]string{"color": "blue"},
	}, metav1.CreateOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("added", <-added)
	cm, _ := inf.Get("default", "settings")
	fmt.Println("cached color", cm.Data["color"])

	cancel()
	fmt.Println("Run returned", <-done)
	// Output:
	// added default/settings
	// cached color blue
	// Run returned <nil>
}
