package flowcontrol

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// granted reports whether w has been granted a slot.
func granted(w *waiter) bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

// mustQueue enters a request of name that must wait.
func mustQueue(t *testing.T, l *limiter, name string) *waiter {
	t.Helper()
	w, why := l.enter(name)
	if why != admitted || w == nil {
		t.Fatalf("enter(%s) = %v, %q; want a wait", name, w, why)
	}
	return w
}

// mustRun enters a request of name that must run at once.
func mustRun(t *testing.T, l *limiter, name string) {
	t.Helper()
	if w, why := l.enter(name); why != admitted || w != nil {
		t.Fatalf("enter(%s) = %v, %q; want to run at once", name, w, why)
	}
}

// checkIdle fails unless l holds nothing, users included.
func checkIdle(t *testing.T, l *limiter) {
	t.Helper()
	if l.inflight != 0 || l.queued != 0 || l.watches != 0 || len(l.users) != 0 || len(l.ring) != 0 {
		t.Fatalf("limiter not idle: inflight %d queued %d watches %d users %d ring %d", l.inflight, l.queued, l.watches, len(l.users), len(l.ring))
	}
}

func TestLimiterPerUserBoundAndQueue(t *testing.T) {
	l := newLimiter(limits{inflight: 10, inflightPerUser: 2, queuedPerUser: 2, queued: 10, watches: 1, watchesPerUser: 1})
	mustRun(t, l, "a")
	mustRun(t, l, "a")
	w1 := mustQueue(t, l, "a")
	w2 := mustQueue(t, l, "a")
	if _, why := l.enter("a"); why != queueFull {
		t.Fatalf("third queued request: %q, want %q", why, queueFull)
	}
	mustRun(t, l, "b") // another user is not held up by a's queue
	l.leave("a")
	if !granted(w1) || granted(w2) {
		t.Fatalf("after one leave: first waiter granted %v, second %v; want FIFO", granted(w1), granted(w2))
	}
	if !l.cancel(w2) {
		t.Fatal("cancel of a waiting request reported it granted")
	}
	if l.cancel(w1) {
		t.Fatal("cancel of a granted request reported it still queued")
	}
	l.leave("a")
	l.leave("a")
	l.leave("b")
	checkIdle(t, l)
}

// TestLimiterRoundRobin checks that freed slots go to users in turn, so a
// user with one queued request does not wait behind another's long queue.
func TestLimiterRoundRobin(t *testing.T) {
	l := newLimiter(limits{inflight: 1, inflightPerUser: 1, queuedPerUser: 10, queued: 20, watches: 1, watchesPerUser: 1})
	mustRun(t, l, "a")
	waiters := map[*waiter]string{}
	for range 5 {
		waiters[mustQueue(t, l, "a")] = "a"
	}
	waiters[mustQueue(t, l, "b")] = "b"
	waiters[mustQueue(t, l, "c")] = "c"
	var order string
	running := "a"
	for len(waiters) > 0 {
		l.leave(running)
		running = ""
		for w, name := range waiters {
			if granted(w) {
				if running != "" {
					t.Fatalf("two requests granted for one slot")
				}
				running = name
				delete(waiters, w)
			}
		}
		if running == "" {
			t.Fatal("a freed slot was not handed on")
		}
		order += running
	}
	l.leave(running)
	if order != "abcaaaa" {
		t.Errorf("grant order %q, want abcaaaa", order)
	}
	checkIdle(t, l)
}

func TestLimiterTotalBound(t *testing.T) {
	l := newLimiter(limits{inflight: 2, inflightPerUser: 2, queuedPerUser: 5, queued: 2, watches: 1, watchesPerUser: 1})
	mustRun(t, l, "a")
	mustRun(t, l, "b")
	wc := mustQueue(t, l, "c")
	wd := mustQueue(t, l, "d")
	if _, why := l.enter("e"); why != queueFull {
		t.Fatalf("request beyond all queues: %q, want %q", why, queueFull)
	}
	l.leave("a")
	if !granted(wc) || granted(wd) {
		t.Fatal("the freed slot did not go to the first user queued")
	}
	l.leave("b")
	if !granted(wd) {
		t.Fatal("the second freed slot did not go to the next user")
	}
	l.leave("c")
	l.leave("d")
	checkIdle(t, l)
}

func TestLimiterWatches(t *testing.T) {
	l := newLimiter(limits{inflight: 1, inflightPerUser: 1, queuedPerUser: 1, queued: 1, watches: 3, watchesPerUser: 2})
	for _, name := range []string{"a", "a", "b"} {
		if why := l.enterWatch(name); why != admitted {
			t.Fatalf("watch of %s: %q", name, why)
		}
	}
	if why := l.enterWatch("a"); why != watchLimit {
		t.Fatalf("third watch of a: %q, want %q", why, watchLimit)
	}
	if why := l.enterWatch("c"); why != watchLimit {
		t.Fatalf("watch beyond the total: %q, want %q", why, watchLimit)
	}
	mustRun(t, l, "a") // watches do not take request slots
	l.leave("a")
	l.leaveWatch("a")
	if why := l.enterWatch("c"); why != admitted {
		t.Fatalf("watch after one closed: %q", why)
	}
	l.leaveWatch("a")
	l.leaveWatch("b")
	l.leaveWatch("c")
	checkIdle(t, l)
}

// TestLimiterRandom drives a limiter with seeded random arrivals, leaves
// and cancellations, checking the bounds and that no slot stays free
// while a request that may use it waits.
func TestLimiterRandom(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, seed))
			lim := limits{inflight: 1 + rnd.IntN(6), inflightPerUser: 1 + rnd.IntN(3), queuedPerUser: 1 + rnd.IntN(4), watches: 4, watchesPerUser: 2}
			lim.queued = lim.inflight
			l := newLimiter(lim)
			users := []string{"a", "b", "c", "d"}
			var running []string
			queued := map[*waiter]string{}
			for range 2000 {
				name := users[rnd.IntN(len(users))]
				switch op := rnd.IntN(3); {
				case op == 0:
					w, why := l.enter(name)
					switch {
					case why != admitted:
					case w == nil:
						running = append(running, name)
					default:
						queued[w] = name
					}
				case op == 1 && len(running) > 0:
					i := rnd.IntN(len(running))
					l.leave(running[i])
					running = append(running[:i], running[i+1:]...)
				case op == 2:
					for w := range queued {
						if !l.cancel(w) {
							t.Fatal("cancel of a request seen waiting found it granted")
						}
						delete(queued, w)
						break
					}
				}
				for w, n := range queued {
					if granted(w) {
						running = append(running, n)
						delete(queued, w)
					}
				}
				checkInvariants(t, l, running, queued)
			}
			for _, n := range running {
				l.leave(n)
			}
			for w, n := range queued {
				if l.cancel(w) {
					continue
				}
				l.leave(n)
			}
			checkIdle(t, l)
		})
	}
}

func checkInvariants(t *testing.T, l *limiter, running []string, queued map[*waiter]string) {
	t.Helper()
	if len(running) != l.inflight || len(queued) != l.queued {
		t.Fatalf("limiter counts %d running %d queued, test counts %d and %d", l.inflight, l.queued, len(running), len(queued))
	}
	if l.inflight > l.lim.inflight || l.queued > l.lim.queued {
		t.Fatalf("%d running, %d queued: over the bounds %+v", l.inflight, l.queued, l.lim)
	}
	perUser := map[string]int{}
	for _, n := range running {
		perUser[n]++
	}
	for n, c := range perUser {
		if c > l.lim.inflightPerUser {
			t.Fatalf("user %s runs %d requests, over %d", n, c, l.lim.inflightPerUser)
		}
	}
	for _, s := range l.users {
		if len(s.queue) > l.lim.queuedPerUser {
			t.Fatalf("user %s has %d queued, over %d", s.name, len(s.queue), l.lim.queuedPerUser)
		}
		if len(s.queue) > 0 && s.inflight < l.lim.inflightPerUser && l.inflight < l.lim.inflight {
			t.Fatalf("user %s waits while a slot it may use is free", s.name)
		}
	}
}
