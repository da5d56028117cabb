package rbac_test

import (
	"encoding/json"
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// FuzzReview sends arbitrary review bodies, as a client could, to each
// review resource: the answer is an object or a StatusError, never a
// panic.
func FuzzReview(f *testing.F) {
	for _, seed := range []string{
		`{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"verb":"get","resource":"configmaps","namespace":"a"}}}`,
		`{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"nonResourceAttributes":{"verb":"get","path":"/api"}}}`,
		`{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{},"nonResourceAttributes":{}}}`,
		`{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview","spec":{"namespace":"a"}}`,
		`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`,
		`{"spec":{"resourceAttributes":{"verb":7}}}`,
		`{"spec":[1,2]}`,
	} {
		for _, r := range []uint8{0, 1, 2} {
			f.Add([]byte(seed), r)
		}
	}
	e := start(f)
	resources := []struct{ group, resource string }{
		{"authorization.k8s.io", "selfsubjectaccessreviews"},
		{"authorization.k8s.io", "selfsubjectrulesreviews"},
		{"authentication.k8s.io", "selfsubjectreviews"},
	}
	ctx := request.WithUser(f.Context(), alice)
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		var obj map[string]any
		if json.Unmarshal(body, &obj) != nil || obj == nil {
			return
		}
		r := resources[int(which)%len(resources)]
		res, ok := e.Registry.Lookup(r.group, "v1", r.resource)
		if !ok {
			t.Fatalf("%s not served", r.resource)
		}
		out, err := e.az.Review(ctx, res, obj)
		var se *apierrors.StatusError
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("error %v is not a StatusError", err)
		}
		if err == nil && out == nil {
			t.Fatal("no answer and no error")
		}
	})
}
