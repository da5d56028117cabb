package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/setpoint/setpoint/internal/registry"
)

// wantClientError fails on errors that are not StatusErrors or that are
// server errors: bad input must never answer 500. A resource version from
// the future answers 504 as Kubernetes does.
func wantClientError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a StatusError", err, err)
	}
	tooLarge := se.ErrStatus.Code == http.StatusGatewayTimeout && strings.Contains(se.ErrStatus.Message, "Too large resource version")
	if se.ErrStatus.Code >= http.StatusInternalServerError && !tooLarge {
		t.Fatalf("server error for bad input: %d %s", se.ErrStatus.Code, se.ErrStatus.Message)
	}
}

func FuzzPatch(f *testing.F) {
	e := newEnv(f)
	res := e.widgets(f)
	ctx := context.Background()
	base := widget("target", map[string]any{"size": int64(1), "tags": []any{"a", "b"}})
	base.SetLabels(map[string]string{"app": "x"})
	if _, err := e.reg.Create(ctx, res, "default", base, registry.WriteOptions{}); err != nil {
		f.Fatal(err)
	}
	f.Add(true, []byte(`[{"op":"add","path":"/spec/tags/-","value":"c"}]`))
	f.Add(true, []byte(`[{"op":"remove","path":"/metadata"}]`))
	f.Add(true, []byte(`[{"op":"replace","path":"/metadata/labels","value":{"a":1}}]`))
	f.Add(true, []byte(`[{"op":"move","from":"/spec","path":"/spec/x"}]`))
	f.Add(true, []byte(`[{"op":"copy","from":"/metadata/uid","path":"/metadata/name"}]`))
	f.Add(false, []byte(`{"spec":{"size":null,"new":[1,2.5,"x"]}}`))
	f.Add(false, []byte(`{"metadata":{"finalizers":["a/b"],"labels":{"bad key!":"v"}}}`))
	f.Add(false, []byte(`{"apiVersion":"v2","kind":null}`))
	f.Add(false, []byte(`{"metadata":{"creationTimestamp":"yesterday"}}`))
	f.Add(false, []byte(`[]`))
	f.Fuzz(func(t *testing.T, jsonPatch bool, patch []byte) {
		pt := types.MergePatchType
		if jsonPatch {
			pt = types.JSONPatchType
		}
		_, err := e.reg.Patch(ctx, res, "default", "target", pt, patch, registry.WriteOptions{})
		wantClientError(t, err)
		// Keep the target alive and free of finalizers for the next input.
		cur, err := e.reg.Get(ctx, res, "default", "target")
		if apierrors.IsNotFound(err) {
			_, err = e.reg.Create(ctx, res, "default", base.DeepCopy(), registry.WriteOptions{})
		} else if err == nil && (len(cur.GetFinalizers()) > 0 || cur.GetDeletionTimestamp() != nil) {
			cur.SetFinalizers(nil)
			_, err = e.reg.Update(ctx, res, "default", "target", cur, registry.WriteOptions{})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	})
}

func FuzzCreate(f *testing.F) {
	e := newEnv(f)
	res := e.widgets(f)
	ctx := context.Background()
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"a"},"spec":{"x":1}}`))
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"generateName":"g-"}}`))
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"b","labels":{"k":"v"},"finalizers":["x/y"]}}`))
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"c","namespace":"other"}}`))
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"d","ownerReferences":[{}]}}`))
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":["x"]}`))
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"e","annotations":{"a":5}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(body); err != nil {
			return
		}
		r, err := e.reg.Create(ctx, res, "default", u, registry.WriteOptions{FieldValidation: "Strict"})
		wantClientError(t, err)
		if err == nil {
			_, _, err = e.reg.Delete(ctx, res, "default", r.Object.GetName(), nil)
			wantClientError(t, err)
		}
	})
}

// FuzzListParameters sends arbitrary continue tokens, resource versions
// and field selectors to List: the answer is a page or a client error.
func FuzzListParameters(f *testing.F) {
	e := newEnv(f)
	res := e.widgets(f)
	ctx := context.Background()
	for i := range 3 {
		if _, err := e.reg.Create(ctx, res, "default", widget(fmt.Sprintf("w%d", i), nil), registry.WriteOptions{}); err != nil {
			f.Fatal(err)
		}
	}
	opts := everything()
	opts.Limit = 1
	page, err := e.reg.List(ctx, res, "default", opts)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(page.GetContinue(), "", "", "", int64(1))
	f.Add("eyJyZXYiOjEsIm5hbWUiOiJ4In0", "", "", "metadata.name=w1", int64(0))
	f.Add("", "3", "Exact", "metadata.namespace!=x", int64(2))
	f.Add("", "99999999999999999999", "NotOlderThan", "", int64(0))
	f.Add("", "-1", "", "spec.x=1", int64(-5))
	f.Fuzz(func(t *testing.T, cont, rv, match, sel string, limit int64) {
		o := everything()
		o.Continue, o.ResourceVersion, o.ResourceVersionMatch, o.Limit = cont, rv, metav1.ResourceVersionMatch(match), limit
		if s, err := fields.ParseSelector(sel); err == nil {
			o.Fields = s
		}
		_, err := e.reg.List(ctx, res, "default", o)
		wantClientError(t, err)
	})
}
