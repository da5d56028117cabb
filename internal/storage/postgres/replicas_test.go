package postgres_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setpoint/setpoint/internal/storage"
)

// summary is what the commit-order test compares of an event.
type summary struct {
	rev int64
	typ storage.EventType
	key storage.Key
}

// TestCommitOrderReplicas runs writers on three stores on one schema, as
// three replicas, while a tailer per store reads Changes after the last
// revision it saw, concurrently with the writes. Every tailer must see
// every revision exactly once, in order, with no gaps, all three the same
// history, which must hold every acknowledged write.
func TestCommitOrderReplicas(t *testing.T) {
	ctx := t.Context()
	open := factory(t)
	stores := []storage.Store{open(t), open(t), open(t)}
	start, err := stores[0].CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}

	const writersPerStore, perWriter = 8, 25
	var (
		ackMu   sync.Mutex
		acks    = map[int64]summary{}
		writers sync.WaitGroup
	)
	ack := func(typ storage.EventType, obj storage.Object) {
		ackMu.Lock()
		defer ackMu.Unlock()
		if _, dup := acks[obj.Revision]; dup {
			t.Errorf("revision %d acknowledged twice", obj.Revision)
		}
		acks[obj.Revision] = summary{obj.Revision, typ, obj.Key}
	}
	for si, s := range stores {
		for w := range writersPerStore {
			writers.Go(func() {
				for i := range perWriter {
					// Own keys, plus a key all writers of all stores race on.
					k := storage.Key{Resource: "example.com/widgets", Namespace: "ns", Name: fmt.Sprintf("s%d-w%d-%d", si, w, i%4)}
					if obj, err := s.Create(ctx, k, []byte(`{}`), map[string]string{"s": fmt.Sprint(si)}); err == nil {
						ack(storage.Added, obj)
					} else if obj, err := s.Update(ctx, k, []byte(`{"u":1}`), nil, storage.Precondition{}); err == nil {
						ack(storage.Modified, obj)
					} else {
						t.Error(err)
						return
					}
					shared := storage.Key{Resource: "example.com/widgets", Namespace: "ns", Name: "shared"}
					if obj, err := s.Create(ctx, shared, []byte(`{}`), nil); err == nil {
						ack(storage.Added, obj)
					} else if obj, err := s.Delete(ctx, shared, storage.Precondition{}); err == nil {
						ack(storage.Deleted, obj)
					}
				}
			})
		}
	}

	var final atomic.Int64 // set once the writers are done
	histories := make([][]summary, len(stores))
	var tailers sync.WaitGroup
	for i, s := range stores {
		tailers.Go(func() {
			last := start
			deadline := time.Now().Add(time.Minute)
			for {
				evs, err := s.Changes(ctx, last, 13)
				if err != nil {
					t.Errorf("tailer %d: %v", i, err)
					return
				}
				for _, ev := range evs {
					if ev.Revision() != last+1 {
						t.Errorf("tailer %d read revision %d after %d", i, ev.Revision(), last)
						return
					}
					last = ev.Revision()
					histories[i] = append(histories[i], summary{last, ev.Type, ev.Object.Key})
				}
				if f := final.Load(); f != 0 && last >= f {
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("tailer %d reached revision %d", i, last)
					return
				}
				if len(evs) == 0 {
					select {
					case <-s.Notify():
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
		})
	}
	writers.Wait()
	cur, err := stores[0].CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	final.Store(cur)
	tailers.Wait()
	if t.Failed() {
		return
	}
	if int64(len(acks)) != cur-start {
		t.Fatalf("%d acknowledged writes for %d revisions", len(acks), cur-start)
	}
	for i, h := range histories {
		if !slices.Equal(h, histories[0]) {
			t.Fatalf("tailer %d saw another history than tailer 0", i)
		}
	}
	for _, ev := range histories[0] {
		if a, ok := acks[ev.rev]; !ok || a != ev {
			t.Fatalf("event %+v, acknowledged %+v", ev, a)
		}
	}
	t.Logf("%d writes on %d stores, tailed by each", len(acks), len(stores))
}
