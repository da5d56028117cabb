package apiserver

import (
	"net/http"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/internal/registry"
)

// create serves POST on a collection: 201 when the object was created.
func (s *server) create(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	opts, err := writeOptions(r, info.verb, "", "")
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	obj, err := s.readObject(w, r, &opts)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	result, err := s.reg.Create(r.Context(), info.res, info.namespace, obj, opts)
	if err != nil {
		s.writeError(w, r, info.out, err)
		return
	}
	s.respondResult(w, r, info, result)
}

// readObject reads and decodes an object body (JSON or YAML) and records
// its strict-decoding issues in opts.
func (s *server) readObject(w http.ResponseWriter, r *http.Request, opts *registry.WriteOptions) (*unstructured.Unstructured, error) {
	format, err := objectFormat(r)
	if err != nil {
		return nil, err
	}
	buf, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	defer putBuffer(buf)
	obj, issues, err := decodeObject(buf.Bytes(), format)
	if err != nil {
		return nil, err
	}
	opts.DecodeIssues = issues
	return &unstructured.Unstructured{Object: obj}, nil
}
