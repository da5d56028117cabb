// Package storage defines the revisioned object store that every backend
// (SQLite, PostgreSQL) implements, and the types and sentinel errors shared by
// its callers.
//
// A store holds opaque JSON documents addressed by Key. Every committed write
// gets the next value of one revision counter for the whole store; revisions
// are strictly increasing in commit order and never reused. Every write also
// appends one Event to the change log in the same transaction, so a reader of
// Changes sees every committed write exactly once, in revision order, with no
// gaps. Old log entries are removed by Compact; reading from a revision older
// than the compacted one fails with ErrCompacted.
//
// The store knows nothing about Kubernetes metadata: callers put the revision
// into metadata.resourceVersion when they serve an object.
package storage

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/labels"
)

// Sentinel errors returned by every Store. Backends wrap them with context;
// callers test with errors.Is.
var (
	// ErrNotFound: the key does not exist (Get, Update, Delete).
	ErrNotFound = errors.New("storage: not found")
	// ErrExists: Create of a key that already exists.
	ErrExists = errors.New("storage: already exists")
	// ErrConflict: the precondition revision did not match the stored one.
	ErrConflict = errors.New("storage: revision conflict")
	// ErrCompacted: the requested revision is older than the compacted
	// revision, so the change log no longer covers it.
	ErrCompacted = errors.New("storage: revision compacted")
	// ErrFutureRevision: the requested revision has not been committed yet.
	ErrFutureRevision = errors.New("storage: revision not yet committed")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("storage: closed")
	// ErrUnavailable: the database cannot be reached; the request may be retried.
	ErrUnavailable = errors.New("storage: unavailable")
	// ErrInvalid: a write carries data the store cannot hold as given, such
	// as labels that are not valid UTF-8. Callers validate input first; this
	// is the store's last line of defence.
	ErrInvalid = errors.New("storage: invalid data")
)

// Key addresses one object. Resource is "<group>/<plural>" ("/namespaces" for
// the core group). Namespace is empty for cluster-scoped resources.
type Key struct {
	Resource  string
	Namespace string
	Name      string
}

// Object is one stored object as of Revision.
type Object struct {
	Key
	// Revision is the revision of the write that produced this state
	// (metadata.resourceVersion).
	Revision int64
	// Labels are indexed for label-selector lists. They must match the
	// labels inside Value; the store does not parse Value.
	Labels map[string]string
	// Value is the JSON document. Stores return a slice the caller owns.
	Value []byte
}

// EventType says what a change did.
type EventType uint8

// The kinds of change.
const (
	Added EventType = iota + 1
	Modified
	Deleted
)

func (t EventType) String() string {
	switch t {
	case Added:
		return "ADDED"
	case Modified:
		return "MODIFIED"
	case Deleted:
		return "DELETED"
	}
	return "UNKNOWN"
}

// Event is one entry of the change log.
type Event struct {
	Type EventType
	// Object is the state after the change. For Deleted it is the last state
	// before deletion, with Revision set to the deletion's revision.
	Object Object
	// Prev is the state before the change; nil for Added. Prev.Revision is
	// the revision of the write that produced it.
	Prev *Object
}

// Revision returns the revision at which the event was committed.
func (e *Event) Revision() int64 { return e.Object.Revision }

// ListOptions selects objects of one resource.
type ListOptions struct {
	// Resource to list; required.
	Resource string
	// Namespace restricts the list to one namespace when not empty.
	Namespace string
	// Name restricts the list to one name when not empty (field selector
	// metadata.name=...).
	Name string
	// Labels filters by label; nil or labels.Everything() selects all. Stores
	// answer at least one indexable requirement from an index.
	Labels labels.Selector
	// Revision lists the state as of this revision; 0 means the latest
	// committed revision. A revision older than the compacted one fails with
	// ErrCompacted, a future one with ErrFutureRevision.
	Revision int64
	// After continues a paginated list: only keys strictly greater than
	// (Namespace, Name) of After are returned. Keys order by namespace, then name.
	After *Key
	// Limit caps the number of objects returned; 0 means no limit.
	Limit int
	// OmitLabels tells the store that the caller reads no Object.Labels:
	// it may leave them nil.
	OmitLabels bool
}

// ListResult is one page of a list.
type ListResult struct {
	// Objects in (namespace, name) order.
	Objects []Object
	// Revision is the snapshot the page was read at; pass it back in
	// ListOptions.Revision to read the next page on the same snapshot.
	Revision int64
	// More reports whether objects remain after the last one returned.
	More bool
	// Release, when not nil, gives the memory of the Objects' Values back
	// to the store, which may reuse it for later lists: call it at most
	// once, when nothing reads those Values any more. Not calling it is
	// always safe.
	Release func()
}

// Precondition guards a write. Zero means no condition.
type Precondition struct {
	// Revision the stored object must have.
	Revision int64
}

// Store is the revisioned object store. All methods are safe for concurrent
// use. A write returns only after it is durably committed.
type Store interface {
	Reader
	Writer

	// Changes returns up to limit log events with revision > after, in
	// revision order. If after is below the compacted revision it fails with
	// ErrCompacted. It returns an empty slice when nothing newer is committed.
	Changes(ctx context.Context, after int64, limit int) ([]Event, error)
	// Notify returns a channel that receives a value (coalesced, never
	// blocking the writer) after each commit. A change-feed reader waits on it
	// and then calls Changes. The channel is closed by Close.
	Notify() <-chan struct{}
	// CompactedRevision returns the revision at or below which the change
	// log has been removed (0 if never compacted).
	CompactedRevision(ctx context.Context) (int64, error)
	// Compact removes change-log entries with revision <= rev. Reads at or
	// below rev then fail with ErrCompacted.
	Compact(ctx context.Context, rev int64) error
	// Close stops background work, waits for it and releases the database.
	Close() error
}

// Reader reads committed state.
type Reader interface {
	// Get returns the current state of key, or ErrNotFound.
	Get(ctx context.Context, key Key) (Object, error)
	// List returns one page of objects; see ListOptions.
	List(ctx context.Context, opts ListOptions) (ListResult, error)
	// Count returns how many objects of resource (optionally in namespace) exist now.
	Count(ctx context.Context, resource, namespace string) (int64, error)
	// CurrentRevision returns the latest committed revision.
	CurrentRevision(ctx context.Context) (int64, error)
}

// Writer changes state. Each call is one atomic write with its own revision;
// backends batch concurrent calls into shared transactions (group commit)
// without changing these semantics.
type Writer interface {
	// Create stores a new object and returns it with its revision, or
	// ErrExists.
	Create(ctx context.Context, key Key, value []byte, labels map[string]string) (Object, error)
	// Update replaces an existing object if pre holds and returns the new
	// state. Errors: ErrNotFound, ErrConflict.
	Update(ctx context.Context, key Key, value []byte, labels map[string]string, pre Precondition) (Object, error)
	// Delete removes an object if pre holds and returns its last state with
	// Revision set to the deletion's revision. Errors: ErrNotFound, ErrConflict.
	Delete(ctx context.Context, key Key, pre Precondition) (Object, error)
}
