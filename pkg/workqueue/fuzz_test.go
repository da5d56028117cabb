package workqueue

import (
	"slices"
	"testing"
	"time"
)

// model is the queue's specification, for single-goroutine use without
// processing keys: a FIFO of ready keys and a map of delayed ones.
type model struct {
	now      time.Duration
	ready    []int
	waiting  map[int]modelWait
	seq      int
	failures map[int]int
}

type modelWait struct {
	at  time.Duration
	seq int
}

// promote moves due keys to ready, earliest first, ties in insertion order.
func (m *model) promote() {
	var due []int
	for k, w := range m.waiting {
		if w.at <= m.now {
			due = append(due, k)
		}
	}
	slices.SortFunc(due, func(a, b int) int {
		wa, wb := m.waiting[a], m.waiting[b]
		if wa.at != wb.at {
			return int(wa.at - wb.at)
		}
		return wa.seq - wb.seq
	})
	for _, k := range due {
		delete(m.waiting, k)
		m.add(k)
	}
}

func (m *model) add(k int) {
	if !slices.Contains(m.ready, k) {
		m.ready = append(m.ready, k)
	}
}

func (m *model) addAfter(k int, d time.Duration) {
	if d <= 0 {
		m.add(k)
		return
	}
	at := m.now + d
	if w, ok := m.waiting[k]; ok {
		if at < w.at {
			m.waiting[k] = modelWait{at, w.seq}
		}
		return
	}
	m.seq++
	m.waiting[k] = modelWait{at, m.seq}
}

// FuzzQueue runs a single-goroutine sequence of calls, two bytes each, on a
// queue and on the model, and compares what Get hands out and Len reports.
// It also checks the delay heap's order and index bookkeeping after every
// call.
func FuzzQueue(f *testing.F) {
	f.Add([]byte{0, 17, 0, 9, 2, 5, 3, 0})
	f.Add([]byte{0, 255, 0, 15, 0, 7, 2, 40, 3, 0})
	f.Add([]byte{4, 1, 4, 1, 4, 1, 2, 3, 3, 0, 2, 4, 3, 0, 5, 1, 4, 1, 2, 1, 3, 0})
	f.Add([]byte{1, 3, 0, 11, 0, 19, 1, 2, 2, 2, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const ms = time.Millisecond
		start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
		c := &fakeClock{now: start}
		q := New[int](Options{Now: c.Now, BaseDelay: ms, MaxDelay: 16 * ms})
		defer q.ShutDown()
		m := &model{waiting: map[int]modelWait{}, failures: map[int]int{}}

		for i := 0; i+1 < len(data); i += 2 {
			op, arg := data[i]%6, int(data[i+1])
			k := arg % 8
			switch op {
			case 0:
				d := time.Duration(arg/8) * ms
				q.AddAfter(k, d)
				m.promote()
				m.addAfter(k, d)
			case 1:
				q.Add(k)
				m.promote()
				m.add(k)
			case 2:
				c.Step(time.Duration(arg) * ms)
				m.now += time.Duration(arg) * ms
			case 3:
				m.promote()
				var got []int
				for q.Len() > 0 {
					k, _ := q.Get()
					q.Done(k)
					got = append(got, k)
				}
				if !slices.Equal(got, m.ready) {
					t.Fatalf("call %d: Get handed out %v, want %v", i/2, got, m.ready)
				}
				m.ready = nil
			case 4:
				q.AddRateLimited(k)
				m.promote()
				m.addAfter(k, min(ms<<min(m.failures[k], 10), 16*ms))
				m.failures[k]++
			case 5:
				q.Forget(k)
				m.promote()
				delete(m.failures, k)
			}
			m.promote()
			if got, want := q.Len(), len(m.ready); got != want {
				t.Fatalf("call %d: Len = %d, want %d", i/2, got, want)
			}
			if got, want := q.NumRequeues(k), m.failures[k]; got != want {
				t.Fatalf("call %d: NumRequeues(%d) = %d, want %d", i/2, k, got, want)
			}
			checkHeap(t, q)
		}
	})
}

// checkHeap checks the delay heap's order, index fields and index map.
func checkHeap[K comparable](t *testing.T, q *Queue[K]) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.waiting
	if len(h) != len(q.waitIndex) {
		t.Fatalf("heap has %d entries, index %d", len(h), len(q.waitIndex))
	}
	for i, w := range h {
		if w.index != i {
			t.Fatalf("entry %d has index %d", i, w.index)
		}
		if q.waitIndex[w.key] != w {
			t.Fatalf("index of key %v does not point at its entry", w.key)
		}
		if i > 0 && h.Less(i, (i-1)/2) {
			t.Fatalf("entry %d sorts before its parent", i)
		}
	}
}
