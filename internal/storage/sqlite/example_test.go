package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/sqlite"
)

// Open a store, write with compare-and-swap, list by label and read the
// change log.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "setpoint-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = os.RemoveAll(dir) }()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "setpoint.db"), sqlite.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = s.Close() }()

	key := storage.Key{Resource: "example.com/widgets", Namespace: "default", Name: "w1"}
	created, _ := s.Create(ctx, key, []byte(`{"spec":{"size":1}}`), map[string]string{"app": "web"})
	updated, _ := s.Update(ctx, key, []byte(`{"spec":{"size":2}}`), map[string]string{"app": "web"},
		storage.Precondition{Revision: created.Revision})
	_, err = s.Update(ctx, key, []byte(`{}`), nil, storage.Precondition{Revision: created.Revision})
	fmt.Println("stale update conflicts:", errors.Is(err, storage.ErrConflict))

	page, _ := s.List(ctx, storage.ListOptions{
		Resource: "example.com/widgets",
		Labels:   labels.SelectorFromSet(labels.Set{"app": "web"}),
	})
	fmt.Printf("listed %d at revision %d: %s\n", len(page.Objects), page.Revision, page.Objects[0].Value)

	events, _ := s.Changes(ctx, 0, 10)
	for _, ev := range events {
		fmt.Println(ev.Revision(), ev.Type, ev.Object.Name)
	}
	fmt.Println("updated at", updated.Revision)
	// Output:
	// stale update conflicts: true
	// listed 1 at revision 2: {"spec":{"size":2}}
	// 1 ADDED w1
	// 2 MODIFIED w1
	// updated at 2
}
