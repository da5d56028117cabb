package shard

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/pkg/client"
)

// store reads and writes the group's Leases; tests use an in-memory one.
type store interface {
	get(ctx context.Context, name string) (*coordinationv1.Lease, error)
	create(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error)
	update(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error)
	list(ctx context.Context) ([]coordinationv1.Lease, error)
	// delete deletes the Lease name, only at resourceVersion rv unless rv
	// is empty.
	delete(ctx context.Context, name, rv string) error
}

// apiStore is the store on a server, through pkg/client.
type apiStore struct {
	leases    *client.Client[coordinationv1.Lease, *coordinationv1.Lease]
	namespace string
	group     string
}

func (s *apiStore) get(ctx context.Context, name string) (*coordinationv1.Lease, error) {
	return s.leases.Get(ctx, s.namespace, name)
}

func (s *apiStore) create(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	l.Namespace = s.namespace
	return s.leases.Create(ctx, l, metav1.CreateOptions{})
}

func (s *apiStore) update(ctx context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	l.Namespace = s.namespace
	return s.leases.Update(ctx, l, metav1.UpdateOptions{})
}

func (s *apiStore) list(ctx context.Context) ([]coordinationv1.Lease, error) {
	sel := labels.SelectorFromSet(labels.Set{GroupLabel: s.group}).String()
	l, err := s.leases.List(ctx, s.namespace, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func (s *apiStore) delete(ctx context.Context, name, rv string) error {
	var opts metav1.DeleteOptions
	if rv != "" {
		opts.Preconditions = &metav1.Preconditions{ResourceVersion: &rv}
	}
	return s.leases.Delete(ctx, s.namespace, name, opts)
}
