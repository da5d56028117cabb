package workqueue

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/setpoint/setpoint/internal/leakcheck"
)

// TestMain fails the package when a queue goroutine outlives the tests.
func TestMain(m *testing.M) { leakcheck.Main(m, ").delayLoop(") }

// fakeClock is a time hook tests advance by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestQueue returns a queue on clock c that is shut down when t ends.
func newTestQueue(t testing.TB, c *fakeClock, opts Options) *Queue[string] {
	t.Helper()
	if c != nil {
		opts.Now = c.Now
	}
	q := New[string](opts)
	t.Cleanup(q.ShutDown)
	return q
}

// step is one call on a queue under test, with its expectation.
type step struct {
	name string
	do   func(t *testing.T, q *Queue[string], c *fakeClock)
}

func add(k string) step {
	return step{"Add(" + k + ")", func(_ *testing.T, q *Queue[string], _ *fakeClock) { q.Add(k) }}
}

func addAfter(k string, d time.Duration) step {
	return step{fmt.Sprintf("AddAfter(%s,%v)", k, d), func(_ *testing.T, q *Queue[string], _ *fakeClock) { q.AddAfter(k, d) }}
}

func addRateLimited(k string) step {
	return step{"AddRateLimited(" + k + ")", func(_ *testing.T, q *Queue[string], _ *fakeClock) { q.AddRateLimited(k) }}
}

func forget(k string) step {
	return step{"Forget(" + k + ")", func(_ *testing.T, q *Queue[string], _ *fakeClock) { q.Forget(k) }}
}

func done(k string) step {
	return step{"Done(" + k + ")", func(_ *testing.T, q *Queue[string], _ *fakeClock) { q.Done(k) }}
}

func advance(d time.Duration) step {
	return step{fmt.Sprintf("advance(%v)", d), func(_ *testing.T, _ *Queue[string], c *fakeClock) { c.Step(d) }}
}

func shutDown() step {
	return step{"ShutDown", func(_ *testing.T, q *Queue[string], _ *fakeClock) { q.ShutDown() }}
}

// get expects a key to be ready, and it to be want.
func get(want string) step {
	return step{"Get=" + want, func(t *testing.T, q *Queue[string], _ *fakeClock) {
		t.Helper()
		if n := q.Len(); n == 0 {
			t.Fatalf("Get would block: no key ready, want %q", want)
		}
		if k, shutdown := q.Get(); k != want || shutdown {
			t.Fatalf("Get = %q, %v; want %q, false", k, shutdown, want)
		}
	}}
}

// getShutdown expects Get to report shutdown.
func getShutdown() step {
	return step{"Get=shutdown", func(t *testing.T, q *Queue[string], _ *fakeClock) {
		t.Helper()
		if k, shutdown := q.Get(); !shutdown {
			t.Fatalf("Get = %q, false; want shutdown", k)
		}
	}}
}

func wantLen(n int) step {
	return step{fmt.Sprintf("Len=%d", n), func(t *testing.T, q *Queue[string], _ *fakeClock) {
		t.Helper()
		if got := q.Len(); got != n {
			t.Fatalf("Len = %d, want %d", got, n)
		}
	}}
}

func wantRequeues(k string, n int) step {
	return step{fmt.Sprintf("NumRequeues(%s)=%d", k, n), func(t *testing.T, q *Queue[string], _ *fakeClock) {
		t.Helper()
		if got := q.NumRequeues(k); got != n {
			t.Fatalf("NumRequeues(%q) = %d, want %d", k, got, n)
		}
	}}
}

// TestQueueSteps drives the synchronous core call by call under a fake clock,
// one case per guarantee.
func TestQueueSteps(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name  string
		opts  Options
		steps []step
	}{
		{"dedupes_queued_keys", Options{}, []step{
			add("a"), add("a"), add("b"), add("a"), wantLen(2), get("a"), get("b"), wantLen(0),
		}},
		{"hands_out_in_add_order", Options{}, []step{
			add("c"), add("a"), add("b"), get("c"), get("a"), get("b"),
		}},
		{"key_added_while_processing_is_queued_on_done", Options{}, []step{
			add("a"), get("a"), add("a"), wantLen(0), done("a"), wantLen(1), get("a"), done("a"), wantLen(0),
		}},
		{"many_adds_while_processing_queue_once", Options{}, []step{
			add("a"), get("a"), add("a"), add("a"), add("a"), done("a"), wantLen(1), get("a"), done("a"), wantLen(0),
		}},
		{"done_without_add_does_not_requeue", Options{}, []step{
			add("a"), get("a"), done("a"), wantLen(0),
		}},
		{"done_of_unknown_key_does_nothing", Options{}, []step{
			done("x"), add("a"), done("a"), wantLen(1), get("a"),
		}},
		{"other_keys_flow_while_one_processes", Options{}, []step{
			add("a"), get("a"), add("b"), add("a"), get("b"), wantLen(0), done("a"), get("a"),
		}},
		{"add_after_waits_for_its_delay", Options{}, []step{
			addAfter("a", 10*ms), wantLen(0), advance(9 * ms), wantLen(0), advance(ms), wantLen(1), get("a"),
		}},
		{"add_after_keeps_the_earliest_time", Options{}, []step{
			addAfter("a", 10*time.Second), addAfter("a", time.Second), advance(time.Second), get("a"), done("a"),
			advance(9 * time.Second), wantLen(0),
		}},
		{"add_after_later_does_not_postpone", Options{}, []step{
			addAfter("a", time.Second), addAfter("a", 10*time.Second), advance(time.Second), get("a"), done("a"),
			advance(9 * time.Second), wantLen(0),
		}},
		{"add_after_zero_adds_now", Options{}, []step{
			addAfter("a", 0), addAfter("b", -time.Second), get("a"), get("b"),
		}},
		{"delayed_keys_ready_in_time_order", Options{}, []step{
			addAfter("b", 2*ms), addAfter("c", 2*ms), addAfter("a", ms), add("x"), advance(5 * ms),
			get("x"), get("a"), get("b"), get("c"),
		}},
		{"delayed_key_already_queued_is_not_duplicated", Options{}, []step{
			add("a"), addAfter("a", ms), advance(ms), wantLen(1), get("a"), wantLen(0),
		}},
		{"delayed_key_ready_while_processing_waits_for_done", Options{}, []step{
			add("a"), get("a"), addAfter("a", ms), advance(ms), wantLen(0), done("a"), get("a"),
		}},
		{"backoff_doubles_from_base_delay", Options{}, []step{
			addRateLimited("a"), wantRequeues("a", 1), advance(4 * ms), wantLen(0), advance(ms), get("a"),
			addRateLimited("a"), wantRequeues("a", 2), done("a"), advance(9 * ms), wantLen(0), advance(ms), get("a"),
			addRateLimited("a"), done("a"), advance(19 * ms), wantLen(0), advance(ms), get("a"),
		}},
		{"forget_resets_backoff", Options{}, []step{
			addRateLimited("a"), addRateLimited("a"), addRateLimited("a"), wantRequeues("a", 3),
			forget("a"), wantRequeues("a", 0), advance(5 * ms), get("a"), done("a"),
			addRateLimited("a"), advance(5 * ms), get("a"),
		}},
		{"backoff_is_per_key", Options{}, []step{
			addRateLimited("a"), addRateLimited("a"), addRateLimited("b"), wantRequeues("a", 2), wantRequeues("b", 1),
			advance(5 * ms), get("a"), get("b"),
		}},
		{"backoff_capped_at_max_delay", Options{BaseDelay: time.Second, MaxDelay: 3 * time.Second}, []step{
			addRateLimited("a"), addRateLimited("a"), addRateLimited("a"), addRateLimited("a"), forget("a"),
			advance(time.Second), get("a"), done("a"),
			addRateLimited("a"), addRateLimited("a"), addRateLimited("a"),
			addRateLimited("a"), addRateLimited("a"), addRateLimited("a"), wantRequeues("a", 6),
			// The first call set 1s; later ones cannot postpone it.
			advance(time.Second), get("a"), done("a"), wantLen(0),
			addRateLimited("a"), advance(3*time.Second - ms), wantLen(0), advance(ms), get("a"),
		}},
		{"rate_limit_spaces_retries_of_all_keys", Options{BaseDelay: ms, RateLimit: 10, Burst: 2}, []step{
			addRateLimited("a"), addRateLimited("b"), addRateLimited("c"), addRateLimited("d"),
			advance(ms), get("a"), get("b"), wantLen(0),
			advance(98 * ms), wantLen(0), advance(ms), get("c"),
			advance(99 * ms), wantLen(0), advance(ms), get("d"),
		}},
		{"rate_limit_refills_up_to_burst", Options{BaseDelay: ms, RateLimit: 10, Burst: 2}, []step{
			addRateLimited("a"), addRateLimited("b"), advance(time.Hour), get("a"), get("b"),
			addRateLimited("c"), addRateLimited("d"), addRateLimited("e"), advance(ms), get("c"), get("d"), wantLen(0),
			advance(99 * ms), get("e"),
		}},
		{"backoff_longer_than_rate_limit_wins", Options{BaseDelay: time.Second, RateLimit: 10}, []step{
			addRateLimited("a"), addRateLimited("b"), advance(time.Second - ms), wantLen(0), advance(ms), get("a"), get("b"),
		}},
		{"rate_limit_leaves_add_after_alone", Options{RateLimit: 1}, []step{
			addRateLimited("a"), addAfter("b", ms), add("c"), advance(ms), wantLen(2), get("c"), get("b"),
			advance(4 * ms), get("a"),
		}},
		{"shutdown_ends_get_and_drops_keys", Options{}, []step{
			add("a"), add("b"), addAfter("c", ms), shutDown(), getShutdown(), wantLen(0),
			advance(ms), wantLen(0), getShutdown(),
		}},
		{"adds_after_shutdown_do_nothing", Options{}, []step{
			shutDown(), add("a"), addAfter("b", 0), addAfter("c", ms), addRateLimited("d"), advance(time.Second),
			wantLen(0), wantRequeues("d", 0), getShutdown(),
		}},
		{"done_after_shutdown_does_not_requeue", Options{}, []step{
			add("a"), get("a"), add("a"), shutDown(), done("a"), wantLen(0), getShutdown(),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			q := newTestQueue(t, c, tc.opts)
			for i, s := range tc.steps {
				t.Logf("step %d: %s", i, s.name)
				s.do(t, q, c)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	cases := []struct {
		name      string
		base, max time.Duration
		failures  int
		want      time.Duration
	}{
		{"first", 5 * time.Millisecond, 1000 * time.Second, 0, 5 * time.Millisecond},
		{"second", 5 * time.Millisecond, 1000 * time.Second, 1, 10 * time.Millisecond},
		{"tenth", 5 * time.Millisecond, 1000 * time.Second, 9, 2560 * time.Millisecond},
		{"capped", 5 * time.Millisecond, 1000 * time.Second, 30, 1000 * time.Second},
		{"no_overflow", time.Nanosecond, time.Duration(1<<63 - 1), 1000, time.Duration(1<<63 - 1)},
		{"base_above_max", time.Minute, time.Second, 0, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := newTestQueue(t, nil, Options{BaseDelay: tc.base, MaxDelay: tc.max})
			if got := q.backoff(tc.failures); got != tc.want {
				t.Fatalf("backoff(%d) = %v, want %v", tc.failures, got, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	q := New[int](Options{})
	defer q.ShutDown()
	if q.baseDelay != DefaultBaseDelay || q.maxDelay != DefaultMaxDelay {
		t.Fatalf("delays = %v, %v; want %v, %v", q.baseDelay, q.maxDelay, DefaultBaseDelay, DefaultMaxDelay)
	}
}

// recv waits for a value from ch, failing the test if none comes in a
// generous time: the timeout catches a hang, it does not order events.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

type got struct {
	key      string
	shutdown bool
}

// goGet calls Get in a new goroutine and returns where its answer arrives.
func goGet(q *Queue[string]) <-chan got {
	ch := make(chan got, 1)
	go func() {
		k, s := q.Get()
		ch <- got{k, s}
	}()
	return ch
}

func TestGetBlocksUntilAdd(t *testing.T) {
	q := newTestQueue(t, nil, Options{})
	ch := goGet(q)
	q.Add("a")
	if g := recv(t, ch, "Get"); g != (got{"a", false}) {
		t.Fatalf("Get = %+v", g)
	}
}

func TestGetBlocksUntilShutDown(t *testing.T) {
	q := newTestQueue(t, nil, Options{})
	chs := []<-chan got{goGet(q), goGet(q), goGet(q)}
	q.ShutDown()
	for _, ch := range chs {
		if g := recv(t, ch, "Get"); !g.shutdown {
			t.Fatalf("Get = %+v, want shutdown", g)
		}
	}
}

func TestGetWakesForDelayedKey(t *testing.T) {
	q := newTestQueue(t, nil, Options{})
	ch := goGet(q)
	q.AddAfter("a", time.Millisecond)
	if g := recv(t, ch, "Get"); g != (got{"a", false}) {
		t.Fatalf("Get = %+v", g)
	}
}

func TestGetWakesForRateLimitedKey(t *testing.T) {
	q := newTestQueue(t, nil, Options{BaseDelay: time.Millisecond})
	ch := goGet(q)
	q.AddRateLimited("a")
	if g := recv(t, ch, "Get"); g != (got{"a", false}) {
		t.Fatalf("Get = %+v", g)
	}
}

// A blocked Get under a fake clock is woken by any call once the clock has
// passed the key's time.
func TestGetWakesAfterFakeClockStep(t *testing.T) {
	c := newFakeClock()
	q := newTestQueue(t, c, Options{})
	q.AddAfter("a", time.Hour)
	ch := goGet(q)
	c.Step(time.Hour)
	q.Len()
	if g := recv(t, ch, "Get"); g != (got{"a", false}) {
		t.Fatalf("Get = %+v", g)
	}
}

func TestShutDownWithDrainWaitsForDone(t *testing.T) {
	q := newTestQueue(t, nil, Options{})
	q.Add("a")
	q.Add("b")
	q.Get()
	q.Get()
	drained := make(chan struct{})
	go func() {
		q.ShutDownWithDrain()
		close(drained)
	}()
	for !q.ShuttingDown() {
		runtime.Gosched()
	}
	q.Done("a")
	select {
	case <-drained:
		t.Fatal("ShutDownWithDrain returned while b was processing")
	default:
	}
	if _, shutdown := q.Get(); !shutdown {
		t.Fatal("Get handed out a key while draining")
	}
	q.Done("b")
	recv(t, drained, "ShutDownWithDrain")
}

func TestShutDownWithDrainIdle(t *testing.T) {
	q := newTestQueue(t, nil, Options{})
	q.AddAfter("a", time.Hour)
	q.ShutDownWithDrain()
	q.ShutDown()
}

func TestShutDownStopsTimerGoroutine(t *testing.T) {
	q := New[string](Options{})
	q.AddAfter("a", time.Hour)
	q.ShutDown()
	select {
	case <-q.loopDone:
	default:
		t.Fatal("ShutDown returned before the timer goroutine ended")
	}
}
