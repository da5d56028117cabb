// Package workqueue is the queue between event handlers and reconcile
// workers. It holds keys, not objects: a key is queued at most once however
// often it is added, it is never handed to two workers at once, and a key
// that failed is retried after a per-key exponential backoff.
//
// A worker loop looks like this:
//
//	for {
//		key, shutdown := q.Get()
//		if shutdown {
//			return
//		}
//		if err := reconcile(key); err != nil {
//			q.AddRateLimited(key) // retry later, waiting longer each time
//		} else {
//			q.Forget(key) // reset the key's backoff
//		}
//		q.Done(key)
//	}
//
// The queue's state changes only under its lock, in the calling goroutine;
// one goroutine per queue, started by the first delayed add and stopped by
// ShutDown, wakes blocked Get calls when a delayed key becomes ready.
//
// Where it differs from client-go's workqueue: one type does what the
// rate-limiting, delaying and plain queues do there; after ShutDown, Get
// hands out no more keys (client-go's still hands out the queued ones),
// since a level-triggered controller finds the work again when it starts.
package workqueue

import (
	"container/heap"
	"math"
	"sync"
	"time"
)

// Defaults for Options.
const (
	// DefaultBaseDelay is the first retry delay of AddRateLimited.
	DefaultBaseDelay = 5 * time.Millisecond
	// DefaultMaxDelay caps the retry delay of AddRateLimited.
	DefaultMaxDelay = 1000 * time.Second
)

// Options configure a Queue. The zero value is usable.
type Options struct {
	// BaseDelay is the delay of a key's first AddRateLimited; each further
	// one doubles it. Default DefaultBaseDelay (5ms).
	BaseDelay time.Duration
	// MaxDelay caps the AddRateLimited delay. Default DefaultMaxDelay (1000s).
	MaxDelay time.Duration
	// RateLimit caps AddRateLimited retries of all keys together, per
	// second, on top of each key's backoff: a retry waits for whichever is
	// later. Default 0: no overall limit.
	RateLimit float64
	// Burst is how many retries may go ahead at once before RateLimit
	// applies. Default 1; ignored without RateLimit.
	Burst int
	// Now is the queue's clock, for tests that control time. Delayed keys
	// become ready once Now passes their time; every call on the queue
	// checks, and the queue's timer goroutine checks when the delay has
	// elapsed in real time. Default time.Now.
	Now func() time.Time
	// Name labels this queue's series in Metrics. Default "".
	Name string
	// Metrics records this queue's depth, adds, latency, work duration and
	// retries. The caller creates it with NewMetrics and registers it.
	// Default nil: no metrics.
	Metrics *Metrics
}

// Queue is a deduplicating work queue of keys with per-key backoff. Create
// it with New; it is safe for concurrent use. Every Queue must be shut down
// with ShutDown or ShutDownWithDrain to stop its goroutine.
type Queue[K comparable] struct {
	baseDelay, maxDelay time.Duration
	now                 func() time.Time
	metrics             queueMetrics

	// mu guards every field below; ready and drained use it as their lock.
	mu      sync.Mutex
	ready   *sync.Cond // a key was queued, or shutdown began
	drained *sync.Cond // a key left the processing set

	queue      []K               // keys ready for Get, in order
	dirty      map[K]struct{}    // keys that need processing: queued, or added while processing
	processing map[K]struct{}    // keys handed out by Get and not yet Done
	queuedAt   map[K]time.Time   // when each queued key entered queue
	startedAt  map[K]time.Time   // when Get handed out each processing key
	failures   map[K]int         // AddRateLimited count since the last Forget
	waiting    delayHeap[K]      // delayed keys, earliest first
	waitIndex  map[K]*delayed[K] // the waiting entry of each delayed key
	seq        uint64            // orders delayed keys that share a ready time
	limiter    bucket            // the overall retry rate limit

	shuttingDown bool
	loopStarted  bool
	wake         chan struct{} // cap 1: the earliest ready time moved sooner
	stop         chan struct{} // closed by shutdown
	loopDone     chan struct{} // closed when the timer goroutine returns
}

// New returns an empty queue configured by opts.
func New[K comparable](opts Options) *Queue[K] {
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = DefaultBaseDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Burst <= 0 {
		opts.Burst = 1
	}
	q := &Queue[K]{
		baseDelay:  opts.BaseDelay,
		maxDelay:   opts.MaxDelay,
		now:        opts.Now,
		metrics:    opts.Metrics.forQueue(opts.Name),
		dirty:      map[K]struct{}{},
		processing: map[K]struct{}{},
		queuedAt:   map[K]time.Time{},
		startedAt:  map[K]time.Time{},
		failures:   map[K]int{},
		waitIndex:  map[K]*delayed[K]{},
		limiter:    bucket{rate: opts.RateLimit, burst: float64(opts.Burst)},
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		loopDone:   make(chan struct{}),
	}
	q.ready = sync.NewCond(&q.mu)
	q.drained = sync.NewCond(&q.mu)
	return q
}

// Add queues k unless it is already queued. A key being processed is
// queued again when its worker calls Done. A delayed add of k still pending
// stays pending. Add does nothing after shutdown.
func (q *Queue[K]) Add(k K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.promoteLocked()
	q.addLocked(k)
}

// addLocked is Add with q.mu held.
func (q *Queue[K]) addLocked(k K) {
	if q.shuttingDown {
		return
	}
	if _, ok := q.dirty[k]; ok {
		return
	}
	q.dirty[k] = struct{}{}
	q.metrics.add()
	if _, ok := q.processing[k]; ok {
		return
	}
	q.pushLocked(k)
	q.ready.Signal()
}

// pushLocked appends k to the ready queue.
func (q *Queue[K]) pushLocked(k K) {
	q.queue = append(q.queue, k)
	q.queuedAt[k] = q.now()
	q.metrics.setDepth(len(q.queue))
}

// AddAfter adds k once d has passed; d <= 0 adds it at once. A key already
// waiting keeps the earlier of its two ready times. AddAfter does nothing
// after shutdown.
func (q *Queue[K]) AddAfter(k K, d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.promoteLocked()
	q.addAfterLocked(k, d)
}

// addAfterLocked is AddAfter with q.mu held.
func (q *Queue[K]) addAfterLocked(k K, d time.Duration) {
	if q.shuttingDown {
		return
	}
	if d <= 0 {
		q.addLocked(k)
		return
	}
	at := q.now().Add(d)
	if w, ok := q.waitIndex[k]; ok {
		if !at.Before(w.at) {
			return
		}
		w.at = at
		heap.Fix(&q.waiting, w.index)
	} else {
		q.seq++
		w := &delayed[K]{key: k, at: at, seq: q.seq}
		heap.Push(&q.waiting, w)
		q.waitIndex[k] = w
	}
	if q.waiting[0].key == k {
		q.startLoopLocked()
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// AddRateLimited adds k after its backoff: BaseDelay doubled for each
// AddRateLimited since k's last Forget, at most MaxDelay; or later, if
// Options.RateLimit holds it back.
func (q *Queue[K]) AddRateLimited(k K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.promoteLocked()
	if q.shuttingDown {
		return
	}
	n := q.failures[k]
	q.failures[k] = n + 1
	q.metrics.retry()
	q.addAfterLocked(k, max(q.backoff(n), q.limiter.reserve(q.now())))
}

// backoff is the delay after n earlier failures.
func (q *Queue[K]) backoff(n int) time.Duration {
	d := q.baseDelay
	for range n {
		if d >= q.maxDelay/2 {
			return q.maxDelay
		}
		d *= 2
	}
	return min(d, q.maxDelay)
}

// Forget resets k's backoff, typically after it was processed successfully.
// It does not remove k from the queue.
func (q *Queue[K]) Forget(k K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, k)
}

// NumRequeues reports how many times k was added with AddRateLimited since
// its last Forget.
func (q *Queue[K]) NumRequeues(k K) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failures[k]
}

// Get blocks until a key is ready or the queue shuts down, and returns
// shutdown true in the latter case. The key stays "processing" until the
// caller passes it to Done; meanwhile no other Get returns it.
func (q *Queue[K]) Get() (k K, shutdown bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		q.promoteLocked()
		if q.shuttingDown {
			var zero K
			return zero, true
		}
		if len(q.queue) > 0 {
			return q.popLocked(), false
		}
		q.ready.Wait()
	}
}

// popLocked removes the first ready key and marks it processing.
func (q *Queue[K]) popLocked() K {
	k := q.queue[0]
	var zero K
	q.queue[0] = zero
	q.queue = q.queue[1:]
	now := q.now()
	q.metrics.setDepth(len(q.queue))
	q.metrics.observeLatency(now.Sub(q.queuedAt[k]))
	delete(q.queuedAt, k)
	delete(q.dirty, k)
	q.processing[k] = struct{}{}
	q.startedAt[k] = now
	return k
}

// Done ends the processing of k, handed out by Get. If k was added while it
// was processing, it is queued again. Done of a key not processing does
// nothing.
func (q *Queue[K]) Done(k K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.promoteLocked()
	if _, ok := q.processing[k]; !ok {
		return
	}
	delete(q.processing, k)
	q.metrics.observeWork(q.now().Sub(q.startedAt[k]))
	delete(q.startedAt, k)
	if _, ok := q.dirty[k]; ok && !q.shuttingDown {
		q.pushLocked(k)
		q.ready.Signal()
	}
	q.drained.Broadcast()
}

// Len is the number of keys ready for Get, not counting keys processing or
// waiting for their delay.
func (q *Queue[K]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.promoteLocked()
	return len(q.queue)
}

// ShutDown stops the queue: Get returns shutdown true from now on, even
// while keys are queued; those and the delayed keys are dropped, and later
// adds do nothing. Keys processing may still be passed to Done. ShutDown
// stops the queue's goroutine and waits for it; calling it again does
// nothing.
func (q *Queue[K]) ShutDown() {
	q.mu.Lock()
	q.shutDownLocked()
	started := q.loopStarted
	q.mu.Unlock()
	if started {
		<-q.loopDone
	}
}

// ShutDownWithDrain is ShutDown, then waits until every key processing has
// been passed to Done.
func (q *Queue[K]) ShutDownWithDrain() {
	q.ShutDown()
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.processing) > 0 {
		q.drained.Wait()
	}
}

// ShuttingDown reports whether ShutDown or ShutDownWithDrain was called.
func (q *Queue[K]) ShuttingDown() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.shuttingDown
}

// shutDownLocked drops queued and delayed keys and wakes every waiter.
func (q *Queue[K]) shutDownLocked() {
	if q.shuttingDown {
		return
	}
	q.shuttingDown = true
	close(q.stop)
	q.queue = nil
	clear(q.queuedAt)
	for k := range q.dirty {
		if _, ok := q.processing[k]; !ok {
			delete(q.dirty, k)
		}
	}
	q.waiting = nil
	clear(q.waitIndex)
	q.metrics.setDepth(0)
	q.ready.Broadcast()
}

// promoteLocked adds the delayed keys whose time has come, earliest first.
func (q *Queue[K]) promoteLocked() {
	if len(q.waiting) == 0 {
		return
	}
	now := q.now()
	for len(q.waiting) > 0 && !q.waiting[0].at.After(now) {
		w := heap.Pop(&q.waiting).(*delayed[K])
		delete(q.waitIndex, w.key)
		q.addLocked(w.key)
	}
}

// startLoopLocked starts the timer goroutine once.
func (q *Queue[K]) startLoopLocked() {
	if q.loopStarted {
		return
	}
	q.loopStarted = true
	go q.delayLoop()
}

// delayLoop sleeps until the earliest delayed key is due, adds it and wakes
// Get, until shutdown. It is the queue's only goroutine.
func (q *Queue[K]) delayLoop() {
	defer close(q.loopDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		q.promoteLocked()
		var due <-chan time.Time
		if len(q.waiting) > 0 {
			timer.Reset(max(0, q.waiting[0].at.Sub(q.now())))
			due = timer.C
		}
		q.mu.Unlock()
		select {
		case <-q.stop:
			return
		case <-q.wake:
		case <-due:
		}
	}
}

// bucket is a token bucket: it holds up to burst tokens and gains rate
// tokens per second. A zero rate never limits.
type bucket struct {
	rate, burst float64
	tokens      float64   // may go negative: tokens already promised
	last        time.Time // when tokens was computed; zero before first use
}

// reserve takes a token and returns how long from now until it is there.
func (b *bucket) reserve(now time.Time) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	switch {
	case b.last.IsZero():
		b.tokens = b.burst
		b.last = now
	case now.After(b.last):
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(float64(time.Second) * -b.tokens / b.rate))
}

// delayed is a key waiting in delayHeap until at.
type delayed[K comparable] struct {
	key   K
	at    time.Time
	seq   uint64 // insertion order, breaks ties between equal at
	index int    // position in the heap
}

// delayHeap is a container/heap of delayed keys ordered by (at, seq).
type delayHeap[K comparable] []*delayed[K]

func (h delayHeap[K]) Len() int { return len(h) }

func (h delayHeap[K]) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}

func (h delayHeap[K]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *delayHeap[K]) Push(x any) {
	w := x.(*delayed[K])
	w.index = len(*h)
	*h = append(*h, w)
}

func (h *delayHeap[K]) Pop() any {
	old := *h
	n := len(old)
	w := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return w
}
