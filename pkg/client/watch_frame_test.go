package client

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// chunkReader returns at most n bytes per read, n changing at random, so
// that frames and escapes are cut anywhere.
type chunkReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	n := 1 + c.rng.IntN(64)
	if len(p) > n {
		p = p[:n]
	}
	return c.r.Read(p)
}

// watchPieces are parts of watch streams: events as servers send them,
// and everything decodeStream reads in its own way.
var watchPieces = []string{
	metadataFrame(1),
	metadataFrame(22) + metadataFrame(333),
	`{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a}{\"b","resourceVersion":"5"},"data":{"k":"v\\\"}"}}}`,
	`{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"9","annotations":{"k8s.io/initial-events-end":"true"}}}}`,
	"  \n\t{\"object\":{\"metadata\":{\"name\":\"later\"}},\"type\":\"DELETED\"}\r\n",
	`{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","code":410,"reason":"Expired","message":"too old"}}`,
	`{"type":"RENAMED","object":{"metadata":{"name":"x"}}}`,
	`{"TYPE":"ADDED","type":"MODIFIED","object":{"metadata":{"name":"case"}}}`,
	`{"type":"ADDED","Object":{"metadata":{"name":"case"}}}`,
	`{"type":"ADDED","object":{"metadata":{"name":"one"}},"object":{"metadata":{"name":"two"}}}`,
	`{"type":"ADDED","\u006fbject":{"metadata":{"name":"escaped"}}}`,
	`{"type":"ADDED","object":{"metadata":{"name":"y","labels":{"a":"b"}}},"OBJECT":{"metadata":{"name":"x"}}}`,
	`{"type":"ADDED","object":{"metadata":{"name":"y","labels":{"a":"b"}}},"object":{"metadata":{"name":"x"}}}`,
	`{"type":"ADDED","object":{"metadata":{"name":"z"}},"Type":"DELETED"}`,
	`{"type":"ADDED","object":{"metadata":{"name":"z"}},"\u0074ype":"DELETED"}`,
	`{"type":"ADDED","object":{"metadata":{"name":"z"}},"\u0054ype":"DELETED"}`,
	`{"type":"ADDED","object":null}`,
	`{"type":"ADDED"}`,
	`{"type":5,"object":{}}`,
	`{"type":"ADDED","object":{"metadata":{"name":5}}}`,
	`{"type":"ADDED","object":{"metadata":{"generation":"x","name":"bad"}}}`,
	`{"type":"ADDED","object":{"metadata":{"name":"big","annotations":{"pad":"` + strings.Repeat("p", 10000) + `"}}}}`,
	`{"type":"ADDED","object":{"metadata":{"name":"trailing"}},"extra":[1,{"a":"}"}]}`,
	`[1,2]`,
	`"text"`,
	`{"type":"ADDED","object":{"metadata":{"name":"cut"`,
	`{"type":"ADDED" "object":{}}`,
	`}`,
}

// TestWatchFramesMatchStream runs random streams of watchPieces through
// run, which decodes typed clients' events frame by frame, and through
// decodeStream alone: the events delivered and the error at the end must
// be the same.
func TestWatchFramesMatchStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 1))
	res := Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}
	meta := &Client[metav1.PartialObjectMetadata, *metav1.PartialObjectMetadata]{res: res, gvk: res.GroupVersionKind(), metadataOnly: true}
	typed := &Client[corev1.ConfigMap, *corev1.ConfigMap]{res: res, gvk: res.GroupVersionKind()}
	for i := range 3000 {
		var stream strings.Builder
		for range 1 + rng.IntN(5) {
			stream.WriteString(watchPieces[rng.IntN(len(watchPieces))])
			if rng.IntN(3) > 0 {
				stream.WriteString("\n")
			}
		}
		data := stream.String()
		compareStreams(t, i, meta, data, rng)
		compareStreams(t, i, typed, data, rng)
	}
}

func compareStreams[T any, PT interface {
	*T
	Object
}](t *testing.T, i int, c *Client[T, PT], data string, rng *rand.Rand) {
	const limit = 3000
	framed := collect(func(w *Watch[T, PT], ctx context.Context) {
		w.run(ctx, io.NopCloser(&chunkReader{strings.NewReader(data), rng}), c, limit)
	})
	streamed := collect(func(w *Watch[T, PT], ctx context.Context) {
		defer close(w.events)
		defer close(w.done)
		w.decodeStream(ctx, &chunkReader{strings.NewReader(data), rng}, c.decode, limit)
	})
	if !reflect.DeepEqual(framed, streamed) {
		for j := range min(len(framed), len(streamed)) {
			if !reflect.DeepEqual(framed[j], streamed[j]) {
				t.Fatalf("stream %d (%T) %q: delivery %d differs:\nframes %v\nstream %v", i, c, data, j, framed[j], streamed[j])
			}
		}
		t.Fatalf("stream %d (%T) %q:\nframes %v\nstream %v", i, c, data, framed, streamed)
	}
}

// collect runs a watch and returns what it delivered: each event, then
// its error.
func collect[T any, PT interface {
	*T
	Object
}](run func(*Watch[T, PT], context.Context)) []any {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &Watch[T, PT]{events: make(chan Event[PT], 100), cancel: cancel, done: make(chan struct{})}
	run(w, ctx)
	var out []any
	for ev := range w.events {
		out = append(out, ev)
	}
	return append(out, fmt.Sprint("error: ", w.err))
}
