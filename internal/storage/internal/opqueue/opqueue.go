// Package opqueue is the hand-over between a store's callers and its
// group-commit writer goroutine, shared by the SQLite and PostgreSQL
// backends: a caller queues an op and waits for exactly one result; the
// writer takes queued ops into a batch and answers each; a caller whose
// context ends while its op is still queued abandons it, and the writer
// then skips it. Exactly one of "taken" and "abandoned" wins.
package opqueue

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
)

// ErrStopped is returned by Submit when the writer has exited without
// answering the op.
var ErrStopped = errors.New("writer stopped")

// States of a queued op.
const (
	queued int32 = iota
	taken
	abandoned
)

// Slot is the part of a queued op its caller and the writer share; embed
// it in the op. R is the op's result.
type Slot[R any] struct {
	state atomic.Int32
	res   chan R
}

// Take marks the op as taken into a batch by the writer. It reports false
// if the caller abandoned it, which the writer then skips.
func (s *Slot[R]) Take() bool { return s.state.CompareAndSwap(queued, taken) }

// Answer delivers the result of an op the writer took; call it exactly
// once per taken op. It never blocks.
func (s *Slot[R]) Answer(r R) { s.res <- r }

// Submit queues op (whose slot is slot) on ops and waits for its result.
// If ctx ends while op is still queued, it returns ctx's error and the
// writer will skip op; once taken, the caller waits for the real result.
// done is closed when the writer goroutine has exited, after answering
// every op it took; an op left unanswered then gets ErrStopped.
func Submit[T, R any](ctx context.Context, ops chan<- T, op T, slot *Slot[R], done <-chan struct{}) (R, error) {
	var zero R
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	slot.res = make(chan R, 1)
	select {
	case ops <- op:
	case <-done:
		return zero, ErrStopped
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case r := <-slot.res:
		return r, nil
	case <-ctx.Done():
		if slot.state.CompareAndSwap(queued, abandoned) {
			return zero, ctx.Err()
		}
		return <-slot.res, nil
	case <-done:
		select {
		case r := <-slot.res:
			return r, nil
		default:
			return zero, ErrStopped
		}
	}
}

// Drain answers every op still queued on ops, and not abandoned, with r;
// the writer calls it when it stops.
func Drain[T, R any](ops <-chan T, slot func(T) *Slot[R], r R) {
	for {
		select {
		case o := <-ops:
			if s := slot(o); s.Take() {
				s.Answer(r)
			}
		default:
			return
		}
	}
}

// Next builds the writer's next batch: unless batch already holds ops, it
// waits for one, then yields once so that callers answered by the last
// commit can queue their next op (batches of 32 writers grow from about 16
// to 22), and appends every op queued, up to max in all. It skips ops
// their callers abandoned, so the batch may come back empty. It reports
// false if stop was closed while it waited.
func Next[T, R any](stop <-chan struct{}, ops <-chan T, slot func(T) *Slot[R], batch []T, max int) ([]T, bool) {
	if len(batch) == 0 {
		select {
		case <-stop:
			return batch, false
		case o := <-ops:
			runtime.Gosched()
			if slot(o).Take() {
				batch = append(batch, o)
			}
		}
	}
	for len(batch) < max {
		select {
		case o := <-ops:
			if slot(o).Take() {
				batch = append(batch, o)
			}
		default:
			return batch, true
		}
	}
	return batch, true
}
