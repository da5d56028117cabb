package client

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// metadataFrame is a PartialObjectMetadata event as the server sends it
// for a widget after its first status update.
func metadataFrame(i int) string {
	n := strconv.Itoa(i)
	return `{"type":"MODIFIED","object":{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata","metadata":{"creationTimestamp":"2026-11-26T12:00:00Z","generation":1,"labels":{"bucket":"b07"},` +
		`"managedFields":[{"apiVersion":"bench.setpoint.dev/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:bucket":{}}},"f:spec":{".":{},"f:color":{},"f:data":{},"f:replicas":{}}},"manager":"bench","operation":"Update","time":"2026-11-26T12:00:00Z"},` +
		`{"apiVersion":"bench.setpoint.dev/v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{".":{},"f:phase":{},"f:ready":{}}},"manager":"bench","operation":"Update","subresource":"status","time":"2026-11-26T12:00:01Z"}],` +
		`"name":"w` + n + `","namespace":"bench","resourceVersion":"` + n + `","uid":"6f1c2a4e-0000-4000-8000-` + n + `"}}}` + "\n"
}

// BenchmarkWatchDecodeMetadata measures the client side of a metadata-only
// watch, as the garbage collector runs one: events decoded from the
// stream into PartialObjectMetadata.
func BenchmarkWatchDecodeMetadata(b *testing.B) {
	const events = 1000
	var stream bytes.Buffer
	for i := range events {
		stream.WriteString(metadataFrame(i))
	}
	res := Resource{Group: "bench.setpoint.dev", Version: "v1", Resource: "widgets", Kind: "Widget", Namespaced: true}
	c := &Client[metav1.PartialObjectMetadata, *metav1.PartialObjectMetadata]{res: res, gvk: res.GroupVersionKind(), metadataOnly: true}
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		w := &Watch[metav1.PartialObjectMetadata, *metav1.PartialObjectMetadata]{events: make(chan Event[*metav1.PartialObjectMetadata], events), cancel: cancel, done: make(chan struct{})}
		w.run(ctx, io.NopCloser(bytes.NewReader(stream.Bytes())), c, 1<<20)
		if n := len(w.events); n != events || w.Err() != nil {
			b.Fatalf("%d events, %v", n, w.Err())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}
