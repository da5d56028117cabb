package audit

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"sigs.k8s.io/yaml"

	"github.com/setpoint/setpoint/internal/apiserver"
)

// Bounds on what a client controls in an event, so that an unauthenticated
// client cannot make each of its requests write a megabyte of audit log
// (headers alone may hold 1 MiB). A clipped field is named in the
// truncatedAnnotation.
const (
	maxURIBytes       = 4096
	maxUserAgentBytes = 1024
	maxFieldBytes     = 512
	maxMessageBytes   = 4096
	maxSourceIPs      = 16
	// maxStatusBytes bounds the capture of an error answer, read for the
	// responseStatus message.
	maxStatusBytes = 64 << 10
)

// Annotations Setpoint adds to events.
const (
	// latencyAnnotation is the time from the request's arrival to the
	// event's stage, in milliseconds.
	latencyAnnotation = "audit.setpoint.io/latency-ms"
	// truncatedAnnotation lists the fields clipped to their bound.
	truncatedAnnotation = "audit.setpoint.io/truncated"
	// omittedAnnotation says why a body the level asks for is left out:
	// too large, not JSON, or unreadable.
	omittedRequestAnnotation  = "audit.setpoint.io/request-object-omitted"
	omittedResponseAnnotation = "audit.setpoint.io/response-object-omitted"
)

// newEvent fills the metadata of the event of r: everything but the stage,
// the timestamps after arrival, the answer and the bodies.
func newEvent(r *http.Request, info *request.RequestInfo, u user.Info, level auditv1.Level, id string) *auditv1.Event {
	ev := &auditv1.Event{
		TypeMeta:   metav1.TypeMeta{APIVersion: auditv1.SchemeGroupVersion.String(), Kind: "Event"},
		Level:      level,
		AuditID:    types.UID(id),
		RequestURI: r.RequestURI,
		Verb:       info.Verb,
		UserAgent:  r.UserAgent(),
		SourceIPs:  sourceIPs(r),
	}
	if ev.RequestURI == "" {
		ev.RequestURI = r.URL.RequestURI()
	}
	if u != nil {
		// Extra is left out: authenticators may put claims there.
		ev.User = authnv1.UserInfo{Username: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups()}
	}
	if info.IsResourceRequest {
		ev.ObjectRef = &auditv1.ObjectReference{
			Resource:    info.Resource,
			Namespace:   info.Namespace,
			Name:        info.Name,
			APIGroup:    info.APIGroup,
			APIVersion:  info.APIVersion,
			Subresource: info.Subresource,
		}
	}
	clipFields(ev)
	return ev
}

// clipFields bounds the fields a client chooses and notes which it clipped.
func clipFields(ev *auditv1.Event) {
	var clipped []string
	clip := func(name string, s *string, limit int) {
		if len(*s) > limit {
			*s = (*s)[:limit]
			clipped = append(clipped, name)
		}
	}
	clip("requestURI", &ev.RequestURI, maxURIBytes)
	clip("userAgent", &ev.UserAgent, maxUserAgentBytes)
	if o := ev.ObjectRef; o != nil {
		clip("objectRef.resource", &o.Resource, maxFieldBytes)
		clip("objectRef.namespace", &o.Namespace, maxFieldBytes)
		clip("objectRef.name", &o.Name, maxFieldBytes)
		clip("objectRef.apiGroup", &o.APIGroup, maxFieldBytes)
		clip("objectRef.apiVersion", &o.APIVersion, maxFieldBytes)
		clip("objectRef.subresource", &o.Subresource, maxFieldBytes)
	}
	if len(ev.SourceIPs) > maxSourceIPs {
		// Keep the first hops and the connection's own address, the
		// last, which the client cannot forge.
		ev.SourceIPs = append(ev.SourceIPs[:maxSourceIPs-1], ev.SourceIPs[len(ev.SourceIPs)-1])
		clipped = append(clipped, "sourceIPs")
	}
	if len(clipped) > 0 {
		annotate(ev, truncatedAnnotation, strings.Join(clipped, ","))
	}
}

// sourceIPs lists the addresses of r as Kubernetes does: X-Forwarded-For,
// X-Real-Ip, then the connection's remote address (only the last one is
// not chosen by the client).
func sourceIPs(r *http.Request) []string {
	ips := utilnet.SourceIPs(r)
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// annotate sets an annotation of ev.
func annotate(ev *auditv1.Event, key, value string) {
	if ev.Annotations == nil {
		ev.Annotations = map[string]string{}
	}
	ev.Annotations[key] = value
}

// responseStatus reads the Status a failed request was answered with,
// keeping its bounded fields; any other answer gives only the code.
func responseStatus(code int, body []byte) *metav1.Status {
	st := &metav1.Status{Code: int32(code)}
	if code < http.StatusBadRequest || len(body) == 0 {
		return st
	}
	var got metav1.Status
	if json.Unmarshal(body, &got) != nil || got.Kind != "Status" {
		return st
	}
	st.Status, st.Reason, st.Message = got.Status, got.Reason, got.Message
	if len(st.Message) > maxMessageBytes {
		st.Message = st.Message[:maxMessageBytes]
	}
	return st
}

// protobufMediaType is the content type of Kubernetes' protobuf bodies.
const protobufMediaType = "application/vnd.kubernetes.protobuf"

// bodyObject turns a captured body into the JSON of an event's object,
// as Kubernetes logs request bodies as JSON whatever their encoding. It
// returns nil and a reason when it cannot: the body was too large, is of
// another media type, or is malformed.
func bodyObject(c *capture, contentType string, omitManagedFields bool) (*runtime.Unknown, string) {
	if c.over {
		return nil, "larger than the audit body limit"
	}
	if len(c.buf) == 0 {
		return nil, ""
	}
	mediaType, _, _ := mime.ParseMediaType(contentType)
	data := c.buf
	switch {
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
	case mediaType == "application/yaml" || strings.HasSuffix(mediaType, "+yaml"):
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, "malformed"
		}
		data = js
	case mediaType == protobufMediaType:
		js, err := apiserver.ProtobufToJSON(data)
		if err != nil {
			return nil, "malformed"
		}
		data = js
	default:
		return nil, "not JSON, YAML or protobuf"
	}
	if !json.Valid(data) {
		return nil, "malformed"
	}
	if omitManagedFields {
		data = withoutManagedFields(data)
	}
	return &runtime.Unknown{Raw: data, ContentType: runtime.ContentTypeJSON}, ""
}

// withoutManagedFields removes metadata.managedFields from an object or
// from each item of a list; data is valid JSON.
func withoutManagedFields(data []byte) []byte {
	if !bytes.Contains(data, []byte(`"managedFields"`)) {
		return data
	}
	var obj map[string]any
	if json.Unmarshal(data, &obj) != nil {
		return data // a JSON patch: an array
	}
	strip := func(o any) {
		if m, ok := o.(map[string]any); ok {
			if md, ok := m["metadata"].(map[string]any); ok {
				delete(md, "managedFields")
			}
		}
	}
	strip(obj)
	if items, ok := obj["items"].([]any); ok {
		for _, it := range items {
			strip(it)
		}
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return data
	}
	return out
}

// createdName reads metadata.name from the answer to a create, for the
// objectRef of objects named by generateName or in the body only.
func createdName(body []byte) string {
	var obj struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if json.Unmarshal(body, &obj) != nil || len(obj.Metadata.Name) > maxFieldBytes {
		return ""
	}
	return obj.Metadata.Name
}
