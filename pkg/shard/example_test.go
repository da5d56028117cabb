package shard_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/pkg/client"
	"github.com/setpoint/setpoint/pkg/controller"
	"github.com/setpoint/setpoint/pkg/informer"
	"github.com/setpoint/setpoint/pkg/shard"
)

// Each replica of a controller runs the same code with its own Identity;
// the replicas split the config maps among themselves.
func Example() {
	cfg, err := client.NewConfig("")
	if err != nil {
		log.Fatal(err)
	}
	cms, err := client.NewUnstructured(cfg, client.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true})
	if err != nil {
		log.Fatal(err)
	}
	inf := informer.New(cms, informer.Options[*unstructured.Unstructured]{})
	member, err := shard.New(shard.Options{Config: cfg, Namespace: "kube-system", Name: "configmap-checker", LeaseDuration: 15 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	c, err := controller.For(inf).WithOptions(controller.Options{Workers: 4, Shard: member}).
		Complete(controller.ReconcilerFunc(func(ctx context.Context, req controller.Request) (controller.Result, error) {
			fmt.Println("reconciling", req) // only keys this replica owns
			return controller.Result{}, nil
		}))
	if err != nil {
		log.Fatal(err)
	}
	mgr, err := controller.NewManager(controller.ManagerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range []controller.Runnable{inf, member, c} {
		if err := mgr.Add(r); err != nil {
			log.Fatal(err)
		}
	}
	if err := mgr.Run(context.Background()); err != nil {
		log.Fatal(err) // shard.ErrLost after a lost membership: exit and restart
	}
}
