package forward

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/setpoint/setpoint/internal/storage"
)

// The peer protocol's bodies are binary: unsigned varints (uvarint),
// signed varints (varint) and length-prefixed byte strings (a uvarint
// length, then the bytes).
//
// A request is the version byte, the number of ops, then each op: its kind
// byte, its timeout in nanoseconds (0: none), the key's resource,
// namespace and name, the precondition revision (varint), and for creates
// and updates the value and the labels (their number, then key and value
// of each).
//
// A response is the version byte, the number of results (the number of
// ops), then each result: a bitmask of the sentinel errors the error
// matches (wireSentinels; 0 for success), then for a success the
// revision (varint) and, for a delete, the labels and value of the
// deleted state, or for a failure the error's message.

// wireVersion starts every body; a peer of another version is refused.
const wireVersion = 1

// kind says what a write does.
type kind uint8

const (
	kindCreate kind = iota + 1
	kindUpdate
	kindDelete
)

func (k kind) String() string {
	switch k {
	case kindCreate:
		return "create"
	case kindUpdate:
		return "update"
	}
	return "delete"
}

// write is one op as the protocol carries it.
type write struct {
	kind    kind
	timeout time.Duration
	key     storage.Key
	pre     int64
	value   []byte
	labels  map[string]string
}

// result is one op's outcome as the protocol carries it. For a success
// obj holds the revision, and for a delete the labels and value.
type result struct {
	obj storage.Object
	err error
}

// wireSentinels are the errors a result's bitmask can name, bit i for
// wireSentinels[i]. Append only: the order is the protocol.
var wireSentinels = []error{
	storage.ErrNotFound, storage.ErrExists, storage.ErrConflict, storage.ErrCompacted,
	storage.ErrFutureRevision, storage.ErrClosed, storage.ErrUnavailable, storage.ErrInvalid,
	context.DeadlineExceeded, context.Canceled,
}

// remoteError is an error answered by the writer: its message, matching
// (errors.Is) the sentinels it matched there.
type remoteError struct {
	msg string
	is  []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.is }

// errBadBody is wrapped by every decoding error.
var errBadBody = errors.New("malformed peer message")

// appendString appends a length-prefixed string.
func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// appendBytes appends a length-prefixed byte string.
func appendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendLabels(b []byte, labels map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(labels)))
	for k, v := range labels {
		b = appendString(appendString(b, k), v)
	}
	return b
}

// appendRequest appends the request carrying ws.
func appendRequest(b []byte, ws []*write) []byte {
	b = binary.AppendUvarint(append(b, wireVersion), uint64(len(ws)))
	for _, w := range ws {
		b = append(b, byte(w.kind))
		b = binary.AppendUvarint(b, uint64(max(w.timeout, 0)))
		b = appendString(appendString(appendString(b, w.key.Resource), w.key.Namespace), w.key.Name)
		b = binary.AppendVarint(b, w.pre)
		if w.kind != kindDelete {
			b = appendLabels(appendBytes(b, w.value), w.labels)
		}
	}
	return b
}

// appendResponse appends the response carrying rs, the results of ops of
// the given kinds.
func appendResponse(b []byte, kinds []kind, rs []result) []byte {
	b = binary.AppendUvarint(append(b, wireVersion), uint64(len(rs)))
	for i, r := range rs {
		var mask uint64
		for bit, s := range wireSentinels {
			if r.err != nil && errors.Is(r.err, s) {
				mask |= 1 << bit
			}
		}
		if r.err != nil && mask == 0 {
			// An error of no known kind still must not read as success.
			mask = 1 << len(wireSentinels)
		}
		b = binary.AppendUvarint(b, mask)
		switch {
		case r.err != nil:
			b = appendString(b, r.err.Error())
		default:
			b = binary.AppendVarint(b, r.obj.Revision)
			if kinds[i] == kindDelete {
				b = appendBytes(appendLabels(b, r.obj.Labels), r.obj.Value)
			}
		}
	}
	return b
}

// reader decodes a body; its first error sticks and later reads return
// zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errBadBody}, args...)...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad or truncated number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad or truncated number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a number of items, each at least min bytes long, so that a
// count larger than the rest of the body is refused before any allocation.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/min) {
		r.fail("count %d exceeds the body", n)
		return 0
	}
	return int(n)
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("length %d exceeds the body", n)
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) labels() map[string]string {
	n := r.count(2)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := r.string()
		m[k] = r.string()
	}
	if r.err == nil && len(m) != n {
		r.fail("duplicate label")
	}
	return m
}

func (r *reader) version() {
	if v := r.byte(); r.err == nil && v != wireVersion {
		r.fail("protocol version %d, want %d", v, wireVersion)
	}
}

// end fails unless the whole body was read.
func (r *reader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the end", len(r.b))
	}
	return r.err
}

// decodeRequest decodes a request of at most maxOps ops. Values alias
// body.
func decodeRequest(body []byte, maxOps int) ([]*write, error) {
	r := &reader{b: body}
	r.version()
	n := r.count(6) // kind, timeout, three lengths, precondition
	if r.err == nil && (n == 0 || n > maxOps) {
		r.fail("%d ops, want 1 to %d", n, maxOps)
	}
	ws := make([]*write, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		w := &write{kind: kind(r.byte())}
		if r.err == nil && (w.kind < kindCreate || w.kind > kindDelete) {
			r.fail("op kind %d", w.kind)
		}
		timeout := r.uvarint()
		if timeout > uint64(maxTimeout) {
			r.fail("timeout %d ns exceeds %v", timeout, maxTimeout)
		}
		w.timeout = time.Duration(timeout)
		w.key = storage.Key{Resource: r.string(), Namespace: r.string(), Name: r.string()}
		w.pre = r.varint()
		if w.kind != kindDelete {
			w.value = r.bytes()
			w.labels = r.labels()
		}
		ws = append(ws, w)
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return ws, nil
}

// decodeResponse decodes the response to a request of ops of the given
// kinds. Values alias body.
func decodeResponse(body []byte, kinds []kind) ([]result, error) {
	r := &reader{b: body}
	r.version()
	if n := r.uvarint(); r.err == nil && n != uint64(len(kinds)) {
		r.fail("%d results for %d ops", n, len(kinds))
	}
	rs := make([]result, len(kinds))
	for i := 0; i < len(kinds) && r.err == nil; i++ {
		mask := r.uvarint()
		if mask >= 1<<(len(wireSentinels)+1) {
			r.fail("error bits %#x", mask)
		}
		if mask == 0 {
			rs[i].obj.Revision = r.varint()
			if kinds[i] == kindDelete {
				rs[i].obj.Labels = r.labels()
				rs[i].obj.Value = r.bytes()
			}
			continue
		}
		e := &remoteError{msg: r.string()}
		for bit, s := range wireSentinels {
			if mask&(1<<bit) != 0 {
				e.is = append(e.is, s)
			}
		}
		rs[i].err = e
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return rs, nil
}
