// Package listpage builds one page of a storage list at a revision, shared
// by the SQLite and PostgreSQL backends. A list at an older revision R
// merges two sources, each in key order: the current objects not written
// after R, and the states at R of keys written after R, rebuilt from their
// first log entry after R (Past), whose values are read only for the
// objects that make the page.
package listpage

import (
	"strings"

	"github.com/setpoint/setpoint/internal/storage"
)

// Past is the state of a key at the list's revision, rebuilt from the log
// entry LogRev, whose previous value is the object's value.
type Past struct {
	Obj    storage.Object
	LogRev int64
}

// Page is one page being built.
type Page struct {
	// Limit caps the page; 0 means no limit.
	Limit int
	// Objects is the page so far, in key order; More is set once it is
	// full and another object follows.
	Objects []storage.Object
	More    bool
	// Past holds, in key order, the past states Merge and Finish merge in;
	// they remove what they take.
	Past []Past
	// pastIndex maps the log revision of each object taken from Past to
	// its index in Objects, whose value SetPastValue fills.
	pastIndex map[int64]int
}

// New returns an empty page of at most limit objects (0: no limit).
func New(limit int) *Page {
	return &Page{Limit: limit, Objects: []storage.Object{}}
}

// add appends obj unless the page is full; it reports whether to go on.
func (p *Page) add(obj storage.Object) bool {
	if p.Limit > 0 && len(p.Objects) >= p.Limit {
		p.More = true
		return false
	}
	p.Objects = append(p.Objects, obj)
	return true
}

// addPast appends past.Obj like add and notes that it needs its value.
func (p *Page) addPast(past Past) bool {
	if !p.add(past.Obj) {
		return false
	}
	if p.pastIndex == nil {
		p.pastIndex = map[int64]int{}
	}
	p.pastIndex[past.LogRev] = len(p.Objects) - 1
	return true
}

// Merge adds the next current object (current objects come in key order),
// after the past states that order before it. It reports whether the page
// takes more.
func (p *Page) Merge(obj storage.Object) bool {
	for len(p.Past) > 0 && Compare(p.Past[0].Obj.Key, obj.Key) < 0 {
		if !p.addPast(p.Past[0]) {
			return false
		}
		p.Past = p.Past[1:]
	}
	return p.add(obj)
}

// Finish adds the past states after the last current object.
func (p *Page) Finish() {
	for _, past := range p.Past {
		if !p.addPast(past) {
			break
		}
	}
	p.Past = nil
}

// MergeAll merges objs, current objects in key order, as Merge would one
// by one, then finishes the page. A page with nothing to merge in takes
// objs itself when they all fit.
func (p *Page) MergeAll(objs []storage.Object) {
	if len(p.Past) == 0 && len(p.Objects) == 0 && len(objs) > 0 && (p.Limit == 0 || len(objs) <= p.Limit) {
		p.Objects = objs
		return
	}
	for _, obj := range objs {
		if !p.Merge(obj) {
			return
		}
	}
	p.Finish()
}

// PastRevisions returns the log revisions whose previous values the page
// needs, for SetPastValue.
func (p *Page) PastRevisions() []int64 {
	revs := make([]int64, 0, len(p.pastIndex))
	for rev := range p.pastIndex {
		revs = append(revs, rev)
	}
	return revs
}

// SetPastValue sets the value of the object taken from log entry logRev.
func (p *Page) SetPastValue(logRev int64, value []byte) {
	if i, ok := p.pastIndex[logRev]; ok {
		p.Objects[i].Value = value
	}
}

// Compare orders keys by namespace, then name.
func Compare(a, b storage.Key) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// PastNamespace reports whether a list of one namespace continues after a
// key beyond that namespace, so that no key is left.
func PastNamespace(opts storage.ListOptions) bool {
	return opts.Namespace != "" && opts.After != nil && opts.After.Namespace > opts.Namespace
}
