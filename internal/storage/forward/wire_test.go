package forward

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/setpoint/setpoint/internal/storage"
)

// FuzzDecodeRequest feeds the writer's request decoder arbitrary bodies:
// it must never panic nor over-allocate, and whatever it accepts must
// encode back to the same body's meaning.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(appendRequest(nil, []*write{
		{kind: kindCreate, timeout: time.Second, key: storage.Key{Resource: "r", Namespace: "n", Name: "a"}, value: []byte(`{}`), labels: map[string]string{"k": "v"}},
		{kind: kindUpdate, key: storage.Key{Resource: "r", Name: "b"}, pre: 7, value: []byte(`{"x":1}`)},
		{kind: kindDelete, key: storage.Key{Resource: "r", Name: "c"}, pre: -1},
	}))
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, body []byte) {
		ws, err := decodeRequest(body, maxOps)
		if err != nil {
			if !errors.Is(err, errBadBody) {
				t.Fatalf("error %v does not match errBadBody", err)
			}
			return
		}
		again, err := decodeRequest(appendRequest(nil, ws), maxOps)
		if err != nil {
			t.Fatalf("re-encoded request: %v", err)
		}
		if !reflect.DeepEqual(normalize(ws), normalize(again)) {
			t.Fatalf("round trip changed the ops: %+v, %+v", ws, again)
		}
	})
}

// normalize makes empty values comparable whether nil or not.
func normalize(ws []*write) []*write {
	for _, w := range ws {
		if len(w.value) == 0 {
			w.value = nil
		}
	}
	return ws
}

// FuzzDecodeResponse feeds a replica's response decoder arbitrary bodies
// for requests of the kinds in the first byte's bits.
func FuzzDecodeResponse(f *testing.F) {
	kinds := []kind{kindCreate, kindDelete, kindUpdate}
	f.Add(byte(3), appendResponse(nil, kinds, []result{
		{obj: storage.Object{Revision: 5}},
		{obj: storage.Object{Revision: 6, Labels: map[string]string{"a": "b"}, Value: []byte(`{}`)}},
		{err: errors.Join(storage.ErrConflict, errors.New("precondition"))},
	}))
	f.Add(byte(1), []byte{1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, n byte, body []byte) {
		ks := make([]kind, n%8)
		for i := range ks {
			ks[i] = kind(i%3 + 1)
		}
		rs, err := decodeResponse(body, ks)
		if err != nil {
			if !errors.Is(err, errBadBody) {
				t.Fatalf("error %v does not match errBadBody", err)
			}
			return
		}
		if len(rs) != len(ks) {
			t.Fatalf("%d results for %d ops", len(rs), len(ks))
		}
	})
}

// TestResponseKeepsSentinels checks that a result's error decodes with its
// message and every sentinel it matched, and an error of no known kind
// still decodes as an error.
func TestResponseKeepsSentinels(t *testing.T) {
	in := []error{
		errors.Join(storage.ErrUnavailable, context.DeadlineExceeded),
		errors.New("something else"),
	}
	rs, err := decodeResponse(appendResponse(nil, []kind{kindCreate, kindCreate}, []result{{err: in[0]}, {err: in[1]}}), []kind{kindCreate, kindCreate})
	if err != nil {
		t.Fatal(err)
	}
	if e := rs[0].err; e.Error() != in[0].Error() || !errors.Is(e, storage.ErrUnavailable) || !errors.Is(e, context.DeadlineExceeded) || errors.Is(e, storage.ErrExists) {
		t.Fatalf("decoded %v", e)
	}
	if e := rs[1].err; e == nil || e.Error() != "something else" {
		t.Fatalf("decoded %v", e)
	}
}
