package flowcontrol

import "sync"

// limits are the bounds a limiter keeps, all positive.
type limits struct {
	inflight, inflightPerUser int
	queuedPerUser, queued     int
	watches, watchesPerUser   int
}

// rejection says why a request was turned away ("" when it was not).
// The values are the reason label of the rejected-requests metric.
type rejection string

const (
	admitted rejection = ""
	// queueFull: the user's queue, or all queues together, were full.
	queueFull rejection = "queue-full"
	// timedOut: the request waited in its queue for the longest wait.
	timedOut rejection = "time-out"
	// cancelled: the request's context ended while it waited.
	cancelled rejection = "cancelled"
	// watchLimit: the user, or everyone, had the most watches allowed.
	watchLimit rejection = "watch-limit"
)

// limiter counts the requests running per user and in total, and queues
// the requests beyond: each user has a FIFO queue of bounded length, and a
// freed slot goes to the next user in round-robin order whose queue is not
// empty and who is under its own bound, so a user with a long queue waits
// its turn like a user with one request. Watches are counted apart and
// never queue. It is synchronous: the caller does the waiting (see
// waiter). The zero value is not usable; see newLimiter.
type limiter struct {
	lim limits

	mu sync.Mutex
	// Guarded by mu:
	inflight, queued, watches int
	// users holds the users with requests running, queued or watching,
	// and only those, so it is bounded by the limits.
	users map[string]*share
	// ring lists the users whose queue is not empty, in the order freed
	// slots visit them; next is where the next visit starts.
	ring []*share
	next int
}

// share is one user's part of a limiter, guarded by limiter.mu.
type share struct {
	name              string
	inflight, watches int
	queue             []*waiter
}

// waiter is a queued request. ready is closed when it is granted a slot.
type waiter struct {
	u       *share
	ready   chan struct{}
	granted bool // guarded by limiter.mu
}

func newLimiter(lim limits) *limiter {
	return &limiter{lim: lim, users: map[string]*share{}}
}

// enter asks for a slot for a request of the named user. It returns
// (nil, admitted) when the request may run at once, (w, admitted) when it
// must wait for w.ready (or give up with cancel), and a rejection when
// the queue it would join is full. A request that runs must call leave.
func (l *limiter) enter(name string) (*waiter, rejection) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.share(name)
	if len(u.queue) == 0 && u.inflight < l.lim.inflightPerUser && l.inflight < l.lim.inflight {
		u.inflight++
		l.inflight++
		return nil, admitted
	}
	if len(u.queue) >= l.lim.queuedPerUser || l.queued >= l.lim.queued {
		l.forget(u)
		return nil, queueFull
	}
	w := &waiter{u: u, ready: make(chan struct{})}
	if len(u.queue) == 0 {
		l.ring = append(l.ring, u)
	}
	u.queue = append(u.queue, w)
	l.queued++
	return w, admitted
}

// cancel takes w out of its queue when it gives up waiting. It reports
// false when w was granted a slot meanwhile: the request then runs (or
// calls leave) as if it had not given up.
func (l *limiter) cancel(w *waiter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted {
		return false
	}
	u := w.u
	for i, q := range u.queue {
		if q == w {
			u.queue = append(u.queue[:i], u.queue[i+1:]...)
			break
		}
	}
	l.queued--
	if len(u.queue) == 0 {
		l.leaveRing(u)
	}
	l.forget(u)
	return true
}

// leave ends a request that entered (at once or by a granted wait) and
// hands its slot on.
func (l *limiter) leave(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.users[name]
	u.inflight--
	l.inflight--
	l.dispatch()
	l.forget(u)
}

// dispatch grants free slots to queued requests, visiting the users with
// a queue in turn from l.next and skipping those at their own bound.
func (l *limiter) dispatch() {
	for l.inflight < l.lim.inflight {
		i, ok := l.nextEligible()
		if !ok {
			return
		}
		u := l.ring[i]
		w := u.queue[0]
		u.queue[0] = nil
		u.queue = u.queue[1:]
		l.queued--
		u.inflight++
		l.inflight++
		w.granted = true
		close(w.ready)
		l.next = i + 1
		if len(u.queue) == 0 {
			l.ring = append(l.ring[:i], l.ring[i+1:]...)
			l.next = i
		}
	}
}

// nextEligible finds, from l.next round the ring, the first user under
// its own bound.
func (l *limiter) nextEligible() (int, bool) {
	n := len(l.ring)
	for k := range n {
		i := (l.next + k) % n
		if l.ring[i].inflight < l.lim.inflightPerUser {
			return i, true
		}
	}
	return 0, false
}

// leaveRing takes u, whose queue is now empty, out of the ring.
func (l *limiter) leaveRing(u *share) {
	for i, r := range l.ring {
		if r == u {
			l.ring = append(l.ring[:i], l.ring[i+1:]...)
			if l.next > i {
				l.next--
			}
			return
		}
	}
}

// enterWatch counts a watch of the named user, or reports watchLimit
// when the user or everyone has the most watches allowed. A watch that
// entered must call leaveWatch.
func (l *limiter) enterWatch(name string) rejection {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.share(name)
	if u.watches >= l.lim.watchesPerUser || l.watches >= l.lim.watches {
		l.forget(u)
		return watchLimit
	}
	u.watches++
	l.watches++
	return admitted
}

// leaveWatch ends a watch counted by enterWatch.
func (l *limiter) leaveWatch(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.users[name]
	u.watches--
	l.watches--
	l.forget(u)
}

// counts returns the requests running, queued and the watches, for the
// metrics.
func (l *limiter) counts() (inflight, queued, watches int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight, l.queued, l.watches
}

// share returns the named user's part, adding it when new.
func (l *limiter) share(name string) *share {
	u := l.users[name]
	if u == nil {
		u = &share{name: name}
		l.users[name] = u
	}
	return u
}

// forget drops u when it has nothing running, queued or watching.
func (l *limiter) forget(u *share) {
	if u.inflight == 0 && u.watches == 0 && len(u.queue) == 0 {
		delete(l.users, u.name)
	}
}
