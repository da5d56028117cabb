package apiserver

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/setpoint/setpoint/internal/jsondec"
	"github.com/setpoint/setpoint/internal/registry"
)

// bodyFormat is the decoded Content-Type of a request body.
type bodyFormat int

const (
	bodyJSON bodyFormat = iota
	bodyYAML
	bodyProtobuf
)

// objectMediaTypes lists what create and update bodies may be (protobuf
// only for built-in types).
const objectMediaTypes = "application/json, application/yaml, application/vnd.kubernetes.protobuf"

// mediaType returns the media type of the request's Content-Type without
// parameters ("" when absent).
func mediaType(r *http.Request) (string, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return "", nil
	}
	typ, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", errUnsupportedMediaType(ct, objectMediaTypes)
	}
	return typ, nil
}

// objectFormat reads the Content-Type of an object body; no Content-Type
// means JSON.
func objectFormat(r *http.Request) (bodyFormat, error) {
	typ, err := mediaType(r)
	if err != nil {
		return 0, err
	}
	switch typ {
	case "", "application/json":
		return bodyJSON, nil
	case "application/yaml":
		return bodyYAML, nil
	case protobufMediaType:
		return bodyProtobuf, nil
	}
	return 0, errUnsupportedMediaType(r.Header.Get("Content-Type"), objectMediaTypes)
}

// readBody reads the request body into a pooled buffer (the caller returns
// it with putBuffer), bounded by the server's limit: larger bodies get 413.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, error) {
	buf := getBuffer()
	if r.Body == nil {
		return buf, nil
	}
	if n := r.ContentLength; n > s.maxBody {
		putBuffer(buf)
		return nil, tooLarge(s.maxBody)
	} else if n > 0 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		putBuffer(buf)
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge(s.maxBody)
		}
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unable to read the request body: %v", err))
	}
	return buf, nil
}

func tooLarge(limit int64) error {
	return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", limit))
}

// toJSON converts a body to JSON. For YAML, a duplicate key is reported as
// a strict-decoding issue instead of an error, as for JSON.
func toJSON(data []byte, format bodyFormat) ([]byte, []string, error) {
	if format == bodyJSON {
		return data, nil, nil
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err == nil {
		return js, nil, nil
	}
	js, lenientErr := yaml.YAMLToJSON(data)
	if lenientErr != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the request body is not valid YAML: %v", lenientErr))
	}
	return js, []string{err.Error()}, nil
}

// decodeObject decodes a JSON or YAML object body into an unstructured
// map, keeping integers as int64. Duplicate fields are returned as issues
// for the registry to report per fieldValidation; malformed bodies are 400.
func decodeObject(data []byte, format bodyFormat) (map[string]any, []string, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, apierrors.NewBadRequest("the request body is empty")
	}
	if format == bodyProtobuf {
		obj, err := protobufObject(data)
		return obj, nil, err
	}
	js, issues, err := toJSON(data, format)
	if err != nil {
		return nil, nil, err
	}
	if err := registry.CheckDepth(js); err != nil {
		return nil, nil, err
	}
	if obj, ok := jsondec.Object(js, true); ok {
		return obj, issues, nil
	}
	var obj map[string]any
	strict, err := sigsjson.UnmarshalStrict(js, &obj, sigsjson.DisallowDuplicateFields)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the request body is not a valid JSON object: %v", err))
	}
	if obj == nil {
		return nil, nil, apierrors.NewBadRequest("the request body must be an object, not null")
	}
	for _, e := range strict {
		issues = append(issues, e.Error())
	}
	return obj, issues, nil
}
