package sqlite

import (
	"bytes"
	"fmt"
	"maps"
	"sync"

	"github.com/setpoint/setpoint/internal/storage"
)

// logRow is one row of the log table as the writer inserts it. The writer
// builds it, the ring keeps it, and event decodes it into the storage.Event
// that Changes returns, on the SQL and the ring path alike.
//
// The byte slices of a row handed to the ring are never written again by
// anyone: the writer builds them from private copies (op.logValue, labels
// encoded by the caller, values scanned from the database).
type logRow struct {
	rev    int64
	typ    storage.EventType
	key    storage.Key
	labels []byte
	value  []byte
	// prevRev is 0 when the row has no previous state (prev_revision is
	// NULL): revisions start at 1.
	prevRev               int64
	prevLabels, prevValue []byte
}

// rowOverhead approximates the bytes of a logRow besides its slices'
// contents, for the ring's byte bound.
const rowOverhead = 160

// size is the approximate memory a row keeps alive.
func (r *logRow) size() int {
	return rowOverhead + len(r.key.Resource) + len(r.key.Namespace) + len(r.key.Name) +
		len(r.labels) + len(r.value) + len(r.prevLabels) + len(r.prevValue)
}

// event decodes r. The event keeps r's value slices, so the caller passes a
// row whose slices it owns.
func (r *logRow) event() (storage.Event, error) {
	ev := storage.Event{Type: r.typ}
	var err error
	if r.prevRev != 0 {
		ev.Prev = &storage.Object{Key: r.key, Revision: r.prevRev, Value: r.prevValue}
		if ev.Prev.Labels, err = decodeLabels(r.prevLabels); err != nil {
			return ev, fmt.Errorf("log revision %d: %w", r.rev, err)
		}
	}
	ev.Object = storage.Object{Key: r.key, Revision: r.rev, Value: r.value}
	if ev.Type == storage.Deleted {
		if ev.Prev == nil {
			return ev, fmt.Errorf("log revision %d: delete without previous state", r.rev)
		}
		ev.Object.Value = append([]byte(nil), r.prevValue...)
		ev.Object.Labels = maps.Clone(ev.Prev.Labels)
		return ev, nil
	}
	if ev.Object.Labels, err = decodeLabels(r.labels); err != nil {
		return ev, fmt.Errorf("log revision %d: %w", r.rev, err)
	}
	return ev, nil
}

// Defaults of Options.ChangeCache and Options.ChangeCacheBytes.
const (
	DefaultChangeCache      = 4096
	DefaultChangeCacheBytes = 32 << 20
)

// eventRing holds the log rows of the most recent commits, so that Changes
// of recent revisions (the change feed's read after each commit) is answered
// from memory instead of the database.
//
// Its rows always have consecutive revisions ending at last, all above
// compacted: it covers the revisions (last-n, last]. The writer appends a
// batch's rows after COMMIT returned and before it answers the callers or
// signals Notify, so a row is visible only once durable, and a reader that
// saw a revision from CurrentRevision or a write's result finds it here.
//
// Lock order: mu is a leaf. The writer goroutine takes it (write) after a
// commit, holding nothing else; Changes takes it (read) holding nothing
// else and copies row headers only, decoding after it released mu.
type eventRing struct {
	// maxRows and maxBytes bound the ring; set at Open, read-only after.
	maxRows  int
	maxBytes int

	mu sync.RWMutex
	// buf is a circular buffer of rows, grown up to maxRows; the oldest row
	// is buf[head] and n rows are held. Guarded by mu.
	buf  []logRow
	head int
	n    int
	// bytes is the sum of the held rows' size. Guarded by mu.
	bytes int
	// last is the revision of the last commit appended, compacted the
	// compacted revision as of it. Guarded by mu.
	last, compacted int64
}

// newEventRing returns an empty ring positioned after revision last.
func newEventRing(maxRows, maxBytes int, last, compacted int64) *eventRing {
	return &eventRing{maxRows: maxRows, maxBytes: maxBytes, last: last, compacted: compacted}
}

// dropOldest removes the oldest row. Callers hold mu and n > 0.
func (r *eventRing) dropOldest() {
	r.bytes -= r.buf[r.head].size()
	r.buf[r.head] = logRow{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
}

// push appends one row, evicting the oldest one if the ring is full.
// Callers hold mu.
func (r *eventRing) push(row logRow) {
	if row.rev != r.last+1 {
		// Not contiguous; never expected, but a gap must not be served.
		for r.n > 0 {
			r.dropOldest()
		}
	}
	r.last = row.rev
	if r.n == len(r.buf) && len(r.buf) < r.maxRows {
		grown := make([]logRow, min(r.maxRows, max(64, 2*len(r.buf))))
		for i := range r.n {
			grown[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = grown, 0
	}
	if r.n == len(r.buf) {
		r.dropOldest()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = row
	r.n++
	r.bytes += row.size()
	for r.bytes > r.maxBytes && r.n > 0 {
		r.dropOldest()
	}
}

// commit records one committed batch: its log rows (consecutive revisions
// up to last, possibly none) and the compacted revision after it. Rows at or
// below compacted are dropped.
func (r *eventRing) commit(rows []logRow, last, compacted int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, row := range rows {
		r.push(row)
	}
	r.last = last
	r.compacted = compacted
	for r.n > 0 && r.buf[r.head].rev <= compacted {
		r.dropOldest()
	}
}

// read appends to dst the rows with revision > after, at most limit
// (limit <= 0: all), if the ring covers every revision after after. ok is
// false when it does not, and the caller reads the database. compacted is
// the compacted revision the answer is consistent with: if after is below
// it, read returns ok and no rows, and the caller fails with ErrCompacted.
func (r *eventRing) read(dst []logRow, after int64, limit int) (rows []logRow, compacted int64, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if after < r.compacted {
		return dst, r.compacted, true
	}
	if after >= r.last {
		return dst, r.compacted, true
	}
	first := r.last - int64(r.n) + 1
	if after+1 < first {
		return dst, r.compacted, false
	}
	count := int(r.last - after)
	if limit > 0 && count > limit {
		count = limit
	}
	start := r.head + int(after+1-first)
	for i := range count {
		dst = append(dst, r.buf[(start+i)%len(r.buf)])
	}
	return dst, r.compacted, true
}

// ringChanges answers Changes from the ring; ok is false when the ring does
// not cover the range. Every returned event owns its slices: the values are
// copied and the labels decoded afresh.
func (s *Store) ringChanges(after int64, limit int) (events []storage.Event, ok bool, err error) {
	rows, compacted, ok := s.ring.read(nil, after, limit)
	if !ok {
		return nil, false, nil
	}
	if after < compacted {
		return nil, true, fmt.Errorf("sqlite: changes after %d (compacted %d): %w", after, compacted, storage.ErrCompacted)
	}
	events = make([]storage.Event, 0, len(rows))
	for _, row := range rows {
		row.value = bytes.Clone(row.value)
		row.prevValue = bytes.Clone(row.prevValue)
		ev, err := row.event()
		if err != nil {
			return nil, true, fmt.Errorf("sqlite: changes: %w", err)
		}
		events = append(events, ev)
	}
	return events, true, nil
}
