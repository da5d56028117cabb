package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// Accept headers of raw requests.
const (
	// acceptTable asks for a meta.k8s.io Table, with plain JSON as the
	// fallback for servers that cannot build one.
	acceptTable = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
	acceptJSON  = "application/json"
)

// getRaw GETs path with query and returns the decoded answer. Errors
// answered by the server are *apierrors.StatusError.
func (c *clients) getRaw(ctx context.Context, path string, query url.Values, accept string) (*unstructured.Unstructured, error) {
	req := c.rest.Get().AbsPath(path).SetHeader("Accept", accept)
	for k, vs := range query {
		for _, v := range vs {
			req = req.Param(k, v)
		}
	}
	res := req.Do(ctx)
	// Error decodes a Status answer; Raw alone reports a generic error.
	if err := res.Error(); err != nil {
		return nil, err
	}
	body, err := res.Raw()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := utiljson.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("decode answer of GET %s: %w", path, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// watchEvent is one event of a watch stream.
type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// watchRaw watches path from resourceVersion rv, calling fn for every
// ADDED, MODIFIED and DELETED event, until ctx ends (a nil return) or the
// server fails the watch. A watch the server ends cleanly is resumed from
// the last resourceVersion seen.
func (c *clients) watchRaw(ctx context.Context, path string, query url.Values, rv, accept string, fn func(eventType string, obj *unstructured.Unstructured) error) error {
	for {
		err := c.watchOnce(ctx, path, query, &rv, accept, fn)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// watchOnce runs one watch request, advancing *rv as events arrive. It
// returns nil when the server ends the stream.
func (c *clients) watchOnce(ctx context.Context, path string, query url.Values, rv *string, accept string, fn func(string, *unstructured.Unstructured) error) error {
	req := c.rest.Get().AbsPath(path).SetHeader("Accept", accept).
		Param("watch", "true").Param("allowWatchBookmarks", "true")
	if *rv != "" {
		req = req.Param("resourceVersion", *rv)
	}
	for k, vs := range query {
		for _, v := range vs {
			req = req.Param(k, v)
		}
	}
	stream, err := req.Stream(ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	dec := json.NewDecoder(stream)
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read watch stream: %w", err)
		}
		var m map[string]any
		if err := utiljson.Unmarshal(ev.Object, &m); err != nil {
			return fmt.Errorf("decode watch event: %w", err)
		}
		obj := &unstructured.Unstructured{Object: m}
		switch ev.Type {
		case "ERROR":
			var status metav1.Status
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &status); err != nil {
				return fmt.Errorf("decode watch error: %w", err)
			}
			return &apierrors.StatusError{ErrStatus: status}
		case "BOOKMARK":
			*rv = objectResourceVersion(obj)
			continue
		}
		if v := objectResourceVersion(obj); v != "" {
			*rv = v
		}
		if err := fn(ev.Type, obj); err != nil {
			return err
		}
	}
}

// objectResourceVersion is the resourceVersion of obj, or of the object in
// the first row of a Table.
func objectResourceVersion(obj *unstructured.Unstructured) string {
	if obj.GetKind() != "Table" {
		return obj.GetResourceVersion()
	}
	rows, _, _ := unstructured.NestedSlice(obj.Object, "rows")
	for _, r := range rows {
		row, ok := r.(map[string]any)
		if !ok {
			continue
		}
		rv, _, _ := unstructured.NestedString(row, "object", "metadata", "resourceVersion")
		return rv
	}
	return ""
}
