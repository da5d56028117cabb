// Package flowcontrol is the filter that bounds the requests a server
// runs at once, per user and in total, so that one user sending many
// requests cannot starve the others nor exhaust the server.
//
// Requests are keyed by the authenticated user's name (anonymous requests
// share one key). A request runs at once when its user and the server are
// under their bounds; otherwise it waits in its user's queue, and each
// freed slot goes to the next user in turn (round robin), so a user with
// a long queue waits its turn like a user with one request. Queues and
// waits are bounded: a request that finds its queue full, waits longer
// than Options.MaxWait, or whose client goes away, leaves at once; the
// first two get 429 TooManyRequests with Retry-After. Watches hold their
// slot for as long as they stream, so they are counted apart, against
// their own bounds, and get 429 at once beyond them. The bounds are
// checked before the request's body is read.
//
// As Kubernetes' exempt priority level, members of system:masters (the
// administrator and the built-in controllers) are not counted, so user
// floods never starve them; nor are the health checks, which load
// balancers probe.
package flowcontrol

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setpoint/setpoint/internal/apiserver"
	"github.com/setpoint/setpoint/internal/authn"
)

// Options are the bounds. Zero values take the defaults below; negative
// ones are an error.
type Options struct {
	// MaxInflight bounds the requests other than watches that run at
	// once, all users together. Default 600: the sum of Kubernetes'
	// --max-requests-inflight and --max-mutating-requests-inflight
	// defaults, which is how Kubernetes' own flow control uses them.
	MaxInflight int
	// MaxInflightPerUser bounds those of one user. Default 100.
	MaxInflightPerUser int
	// MaxQueuedPerUser bounds the requests of one user waiting for a
	// slot. All queues together hold at most MaxInflight. Default 50.
	MaxQueuedPerUser int
	// MaxWait bounds how long a request waits in its queue. Default 5s.
	MaxWait time.Duration
	// MaxWatches bounds the watches open at once, all users together.
	// Default 5000.
	MaxWatches int
	// MaxWatchesPerUser bounds those of one user. Default 1000.
	MaxWatchesPerUser int
}

// Defaults of Options.
const (
	DefaultMaxInflight        = 600
	DefaultMaxInflightPerUser = 100
	DefaultMaxQueuedPerUser   = 50
	DefaultMaxWait            = 5 * time.Second
	DefaultMaxWatches         = 5000
	DefaultMaxWatchesPerUser  = 1000
)

// retryAfterSeconds is what 429 answers tell clients to wait, as
// Kubernetes' own: client-go then retries the request.
const retryAfterSeconds = 1

// Validate reports the options that are negative.
func (o Options) Validate() error {
	var errs []error
	for _, b := range []struct {
		name string
		v    int64
	}{
		{"MaxInflight", int64(o.MaxInflight)}, {"MaxInflightPerUser", int64(o.MaxInflightPerUser)},
		{"MaxQueuedPerUser", int64(o.MaxQueuedPerUser)}, {"MaxWait", int64(o.MaxWait)},
		{"MaxWatches", int64(o.MaxWatches)}, {"MaxWatchesPerUser", int64(o.MaxWatchesPerUser)},
	} {
		if b.v < 0 {
			errs = append(errs, fmt.Errorf("flowcontrol: %s %d is negative", b.name, b.v))
		}
	}
	return errors.Join(errs...)
}

// orDefault is v, or def when v is zero.
func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// filter is the handler With returns.
type filter struct {
	next    http.Handler
	lim     *limiter
	maxWait time.Duration
	metrics *metrics
}

// With returns h behind flow control, whose metrics go to metrics when it
// is not nil. It must come after the filters that put the user
// (request.WithUser) and the RequestInfo (request.WithRequestInfo) in the
// context. It fails when an option is negative or the metrics cannot be
// registered.
func With(h http.Handler, opts Options, metrics prometheus.Registerer) (http.Handler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	inflight := orDefault(opts.MaxInflight, DefaultMaxInflight)
	lim := newLimiter(limits{
		inflight:        inflight,
		inflightPerUser: orDefault(opts.MaxInflightPerUser, DefaultMaxInflightPerUser),
		queuedPerUser:   orDefault(opts.MaxQueuedPerUser, DefaultMaxQueuedPerUser),
		queued:          inflight,
		watches:         orDefault(opts.MaxWatches, DefaultMaxWatches),
		watchesPerUser:  orDefault(opts.MaxWatchesPerUser, DefaultMaxWatchesPerUser),
	})
	m, err := newMetrics(metrics, lim)
	if err != nil {
		return nil, err
	}
	return &filter{next: h, lim: lim, maxWait: orDefault(opts.MaxWait, DefaultMaxWait), metrics: m}, nil
}

func (f *filter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, _ := request.UserFrom(r.Context())
	if exempt(r, u) {
		f.next.ServeHTTP(w, r)
		return
	}
	var name string
	if u != nil {
		name = u.GetName()
	}
	if info, ok := request.RequestInfoFrom(r.Context()); ok && info.Verb == "watch" {
		if why := f.lim.enterWatch(name); why != admitted {
			f.reject(w, r, why)
			return
		}
		defer f.lim.leaveWatch(name)
		f.next.ServeHTTP(w, r)
		return
	}
	wt, why := f.lim.enter(name)
	if why == admitted && wt != nil {
		why = f.await(r.Context(), wt)
	}
	if why != admitted {
		f.reject(w, r, why)
		return
	}
	defer f.lim.leave(name)
	f.next.ServeHTTP(w, r)
}

// await waits until wt is granted a slot, MaxWait passes or ctx ends.
func (f *filter) await(ctx context.Context, wt *waiter) rejection {
	timer := time.NewTimer(f.maxWait)
	defer timer.Stop()
	var why rejection
	select {
	case <-wt.ready:
		return admitted
	case <-ctx.Done():
		why = cancelled
	case <-timer.C:
		why = timedOut
	}
	if !f.lim.cancel(wt) {
		return admitted
	}
	return why
}

// rejectMessages are the messages of the 429 answers.
var rejectMessages = map[rejection]string{
	queueFull:  "too many requests of this user, or of all users, are running or waiting; try again later",
	timedOut:   "the request waited too long for its turn; try again later",
	cancelled:  "the request was cancelled while it waited for its turn",
	watchLimit: "too many watches of this user, or of all users, are open; try again later",
}

// reject answers 429 TooManyRequests with Retry-After.
func (f *filter) reject(w http.ResponseWriter, r *http.Request, why rejection) {
	f.metrics.rejected.WithLabelValues(string(why)).Inc()
	apiserver.WriteStatus(w, r, apierrors.NewTooManyRequests(rejectMessages[why], retryAfterSeconds))
}

// exempt reports whether r bypasses flow control: a health check, or a
// request of a member of system:masters.
func exempt(r *http.Request, u user.Info) bool {
	if authn.IsHealthPath(r.URL.Path) {
		return true
	}
	if u == nil {
		return false
	}
	for _, g := range u.GetGroups() {
		if g == user.SystemPrivilegedGroup {
			return true
		}
	}
	return false
}
