package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/setpoint/setpoint/internal/storage"
	"github.com/setpoint/setpoint/internal/storage/internal/opqueue"
	"github.com/setpoint/setpoint/internal/storage/postgres"
)

var _ storage.Store = (*Store)(nil)

// Limits of the peer protocol.
const (
	// maxOps caps the ops of one request; Options.MaxBatch is capped to it.
	maxOps = 1024
	// maxTimeout caps the time a request may give an op, and is the time
	// a sender waits for an answer about ops without a deadline.
	maxTimeout = 10 * time.Minute
	// opOverhead bounds the bytes of one encoded op besides its key,
	// value and labels (and of each label besides its text).
	opOverhead = 40
)

// Options tune a Store. The zero value is usable: the replica forwards
// its writes but never serves as the writer.
type Options struct {
	// Listener is the peer listener, on which the replica serves the
	// other replicas' writes while it is the writer; Close closes it.
	// Nil: the replica never becomes the writer.
	Listener net.Listener
	// AdvertiseAddress is the host:port the other replicas dial to reach
	// Listener; default Listener's address, which must then not be an
	// unspecified one (0.0.0.0, ::).
	AdvertiseAddress string
	// MaxRequestBytes bounds the body of a peer request and of its
	// answer; default 8 MiB. A write larger than half of it is committed
	// by the local store. Every replica should use the same value.
	MaxRequestBytes int64
	// MaxBatch caps how many writes share one request; default 512, at
	// most 1024.
	MaxBatch int
	// Senders is how many requests a replica may have in flight to the
	// writer at once; default 2, so one batch fills while another commits.
	Senders int
	// RetryPeriod is how often a standby tries to become the writer and
	// rereads the writer's record, and how often the writer checks its
	// election session; default 1s.
	RetryPeriod time.Duration
	// Logger receives elections and failures; default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = 8 << 20
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	o.MaxBatch = min(o.MaxBatch, maxOps)
	if o.Senders <= 0 {
		o.Senders = 2
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Listener != nil && o.AdvertiseAddress == "" {
		o.AdvertiseAddress = o.Listener.Addr().String()
		host, _, err := net.SplitHostPort(o.AdvertiseAddress)
		if err != nil {
			return o, fmt.Errorf("peer listener address %s: %w", o.AdvertiseAddress, err)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return o, fmt.Errorf("peer listener %s has an unspecified host: give the address peers reach it at", o.AdvertiseAddress)
		}
	}
	return o, nil
}

// Store is a storage.Store that commits its writes through the elected
// writer replica; see the package documentation. Create it with New.
type Store struct {
	// Store is the local store, which serves reads.
	storage.Store
	local *postgres.Store
	opts  Options
	log   *slog.Logger

	// ops carries writes to the senders.
	ops chan *op
	// stop is closed by Close; sendersDone once the senders have exited
	// and the queue is drained; campaignDone when the campaign has.
	stop, sendersDone, campaignDone chan struct{}
	senders                         sync.WaitGroup
	// kick asks the campaign to run now (coalesced).
	kick chan struct{}
	// target is the writer's client, nil when writes commit locally.
	target atomic.Pointer[peerClient]

	// peer and httpSrv serve the peer listener; nil without one.
	peer      *peerServer
	httpSrv   *http.Server
	serveDone chan struct{}

	forwarded, fallbacks atomic.Int64

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// op is one write queued to the senders.
type op struct {
	write
	// ctx is the caller's, for a local commit after a failed send.
	ctx  context.Context
	size int
	slot opqueue.Slot[result]
}

func slotOf(o *op) *opqueue.Slot[result] { return &o.slot }

// New wraps local, which it then owns (Close closes it), and starts
// campaigning for writer, serving the peer listener, and forwarding. It
// takes part in one election before returning, so the first replica
// opened on a schema leads at once and later ones know it.
func New(local *postgres.Store, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	s := &Store{
		Store:        local,
		local:        local,
		opts:         opts,
		log:          opts.Logger,
		ops:          make(chan *op, opts.MaxBatch),
		stop:         make(chan struct{}),
		sendersDone:  make(chan struct{}),
		campaignDone: make(chan struct{}),
		kick:         make(chan struct{}, 1),
	}
	el := local.NewElection()
	if opts.Listener != nil {
		if s.peer, err = newPeerServer(local, opts.MaxRequestBytes, opts.Logger); err != nil {
			return nil, fmt.Errorf("forward: %w", err)
		}
		s.httpSrv = s.peer.httpServer()
		s.serveDone = make(chan struct{})
		go func() {
			defer close(s.serveDone)
			if err := s.httpSrv.ServeTLS(opts.Listener, "", ""); !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("peer listener failed; this replica serves no forwarded writes", "err", err)
			}
		}()
	}
	s.step(el)
	go s.campaign(el)
	for range opts.Senders {
		s.senders.Go(s.send)
	}
	return s, nil
}

// errClosed is returned by writes after Close.
var errClosed = fmt.Errorf("forward: %w", storage.ErrClosed)

// Stats counts what a Store did with writes since New.
type Stats struct {
	// Forwarded counts writes sent to the writer, whatever their outcome.
	Forwarded int64
	// Fallbacks counts writes committed locally because a send failed
	// before the writer could have applied them.
	Fallbacks int64
	// Served counts writes received from other replicas while this one
	// was the writer.
	Served int64
}

// Stats returns the counts so far.
func (s *Store) Stats() Stats {
	st := Stats{Forwarded: s.forwarded.Load(), Fallbacks: s.fallbacks.Load()}
	if s.peer != nil {
		st.Served = s.peer.served.Load()
	}
	return st
}

// Create implements storage.Store.
func (s *Store) Create(ctx context.Context, key storage.Key, value []byte, labels map[string]string) (storage.Object, error) {
	return s.do(ctx, &write{kind: kindCreate, key: key, value: value, labels: labels})
}

// Update implements storage.Store.
func (s *Store) Update(ctx context.Context, key storage.Key, value []byte, labels map[string]string, pre storage.Precondition) (storage.Object, error) {
	return s.do(ctx, &write{kind: kindUpdate, key: key, value: value, labels: labels, pre: pre.Revision})
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, key storage.Key, pre storage.Precondition) (storage.Object, error) {
	return s.do(ctx, &write{kind: kindDelete, key: key, pre: pre.Revision})
}

// apply runs w on st.
func apply(ctx context.Context, st storage.Writer, w *write) (storage.Object, error) {
	switch w.kind {
	case kindCreate:
		return st.Create(ctx, w.key, w.value, w.labels)
	case kindUpdate:
		return st.Update(ctx, w.key, w.value, w.labels, storage.Precondition{Revision: w.pre})
	}
	return st.Delete(ctx, w.key, storage.Precondition{Revision: w.pre})
}

// size bounds the encoded size of w.
func (w *write) size() int {
	n := opOverhead + len(w.key.Resource) + len(w.key.Namespace) + len(w.key.Name) + len(w.value)
	for k, v := range w.labels {
		n += opOverhead + len(k) + len(v)
	}
	return n
}

// do commits w locally when this replica is the writer, no writer is
// reachable or w is too large for a request, and queues it to the
// senders otherwise.
func (s *Store) do(ctx context.Context, w *write) (storage.Object, error) {
	if s.closed.Load() {
		return storage.Object{}, errClosed
	}
	o := &op{write: *w, ctx: ctx, size: w.size()}
	if c := s.target.Load(); c == nil || !c.usable() || int64(o.size) > s.opts.MaxRequestBytes/2 {
		return apply(ctx, s.local, w)
	}
	r, err := opqueue.Submit(ctx, s.ops, o, &o.slot, s.sendersDone)
	switch {
	case errors.Is(err, opqueue.ErrStopped):
		return storage.Object{}, errClosed
	case err != nil:
		return storage.Object{}, fmt.Errorf("forward: %s %s: %w", w.kind, keyString(w.key), err)
	}
	return r.obj, r.err
}

// send is a sender goroutine: it takes the queued writes into batches
// and sends each, until Close.
func (s *Store) send() {
	var batch, carry []*op
	for {
		batch = append(batch[:0], carry...)
		carry = carry[:0]
		var ok bool
		if batch, ok = opqueue.Next(s.stop, s.ops, slotOf, batch, s.opts.MaxBatch); !ok {
			for _, o := range batch {
				o.slot.Answer(result{err: errClosed})
			}
			return
		}
		// Keep the request within MaxRequestBytes; each op fits alone.
		total := 0
		for i, o := range batch {
			if total += o.size; total > int(s.opts.MaxRequestBytes) && i > 0 {
				carry = append(carry, batch[i:]...)
				batch = batch[:i]
				break
			}
		}
		if len(batch) > 0 {
			s.sendBatch(batch)
		}
	}
}

// sendBatch sends batch to the writer and answers every op: with the
// writer's results, with an unknown outcome if the answer was lost, or
// with the local store's results if nothing was sent.
func (s *Store) sendBatch(batch []*op) {
	c := s.target.Load()
	if c == nil || !c.usable() {
		s.commitLocally(batch)
		return
	}
	now := time.Now()
	ws := make([]*write, 0, len(batch))
	kinds := make([]kind, 0, len(batch))
	live := batch[:0]
	wait := time.Duration(0)
	for _, o := range batch {
		o.timeout = 0
		if dl, ok := o.ctx.Deadline(); ok {
			if o.timeout = dl.Sub(now); o.timeout <= 0 {
				o.slot.Answer(result{err: fmt.Errorf("forward: %s %s: %w", o.kind, keyString(o.key), context.DeadlineExceeded)})
				continue
			}
		}
		o.timeout = min(o.timeout, maxTimeout)
		wait = max(wait, o.timeout)
		if o.timeout == 0 {
			wait = maxTimeout
		}
		live = append(live, o)
		ws = append(ws, &o.write)
		kinds = append(kinds, o.kind)
	}
	if len(live) == 0 {
		return
	}
	// The writer ends each op by its own timeout; allow for the trip.
	ctx, cancel := context.WithTimeout(context.Background(), wait+s.opts.RetryPeriod+time.Second)
	defer cancel()
	results, sent, err := c.do(ctx, appendRequest(nil, ws), kinds, s.opts.MaxRequestBytes)
	switch {
	case err == nil:
		s.forwarded.Add(int64(len(live)))
		for i, o := range live {
			o.slot.Answer(s.outcome(o, results[i]))
		}
	case !sent:
		s.log.Debug("forward: writer unreachable, committing locally", "writer", c.rec.Address, "err", err)
		c.markDown(s.opts.RetryPeriod)
		s.requestCampaign()
		s.commitLocally(live)
	default:
		s.forwarded.Add(int64(len(live)))
		s.requestCampaign()
		for _, o := range live {
			o.slot.Answer(result{err: fmt.Errorf("forward: %s %s: sent to the writer at %s, which did not answer; the write may or may not have been committed: %w: %w",
				o.kind, keyString(o.key), c.rec.Address, storage.ErrUnavailable, err)})
		}
	}
}

// outcome turns the writer's result for o into the caller's.
func (s *Store) outcome(o *op, r result) result {
	if r.err != nil {
		if errors.Is(r.err, storage.ErrClosed) {
			// The writer was closing; this store is not.
			return result{err: fmt.Errorf("%w: %w", storage.ErrUnavailable, &remoteError{msg: r.err.Error()})}
		}
		return r
	}
	if o.kind == kindDelete {
		r.obj.Key = o.key
		return r
	}
	value := o.value
	if value == nil {
		value = []byte{}
	}
	return result{obj: storage.Object{Key: o.key, Revision: r.obj.Revision, Labels: maps.Clone(o.labels), Value: value}}
}

// commitLocally commits the ops of a batch that was not sent by the
// local store, concurrently so that they share its group commit.
func (s *Store) commitLocally(batch []*op) {
	s.fallbacks.Add(int64(len(batch)))
	for _, o := range batch {
		go func() {
			obj, err := apply(o.ctx, s.local, &o.write)
			o.slot.Answer(result{obj: obj, err: err})
		}()
	}
}

// requestCampaign asks the campaign to run now.
func (s *Store) requestCampaign() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// setTarget makes c, or the local store if nil, where writes go.
func (s *Store) setTarget(c *peerClient) {
	if old := s.target.Swap(c); old != nil && old != c {
		old.close()
	}
}

// Close resigns the lead if held, stops forwarding (writes still queued
// fail with storage.ErrClosed), finishes the peer requests in flight,
// closes the peer listener and then the local store. Later calls return
// the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.campaignDone
		s.senders.Wait()
		opqueue.Drain(s.ops, slotOf, result{err: errClosed})
		close(s.sendersDone)
		s.setTarget(nil)
		var errs []error
		if s.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), maxTimeout)
			if err := s.httpSrv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("forward: close peer listener: %w", err))
			}
			cancel()
			<-s.serveDone
		}
		s.closeErr = errors.Join(append(errs, s.local.Close())...)
	})
	return s.closeErr
}

func keyString(k storage.Key) string {
	if k.Namespace == "" {
		return k.Resource + "/" + k.Name
	}
	return k.Resource + "/" + k.Namespace + "/" + k.Name
}
