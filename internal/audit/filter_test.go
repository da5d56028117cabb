package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/requestinfo"
)

// allRequestResponse audits every request with its bodies.
const allRequestResponse = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
`

// newTestLogger starts an audit log in a temporary file with policy (the
// default policy when empty). The returned function closes it and
// returns its events.
func newTestLogger(t testing.TB, policy string, tune func(*Config)) (*Logger, func() []auditv1.Event) {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{Path: filepath.Join(dir, "audit.log")}
	if policy != "" {
		cfg.PolicyFile = filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(cfg.PolicyFile, []byte(policy), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if tune != nil {
		tune(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, func() []auditv1.Event {
		t.Helper()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		return decodeEvents(t, data)
	}
}

// decodeEvents reads a log: one JSON event per line, nothing else.
func decodeEvents(t testing.TB, data []byte) []auditv1.Event {
	t.Helper()
	var events []auditv1.Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var ev auditv1.Event
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("line %q is no audit event: %v", sc.Text(), err)
		}
		if ev.APIVersion != "audit.k8s.io/v1" || ev.Kind != "Event" {
			t.Fatalf("line %q has no audit.k8s.io/v1 Event type", sc.Text())
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

// alice is the user the test chain authenticates.
var alice = &user.DefaultInfo{Name: "alice", UID: "u-1", Groups: []string{"devs", "system:authenticated"}, Extra: map[string][]string{"token-id": {"secret-claim"}}}

// serveAudited serves h behind the filters the server puts before the
// audit filter: requestinfo and an authentication that knows alice.
func serveAudited(t *testing.T, h http.Handler, l *Logger) *httptest.Server {
	t.Helper()
	audited := With(h, l)
	authn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		audited.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), alice)))
	})
	srv := httptest.NewServer(requestinfo.With(authn))
	t.Cleanup(srv.Close)
	return srv
}

// echo answers with the request body as JSON, or the given code and
// body when the path ends in a code.
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodGet {
		body = []byte(`{"kind":"ConfigMap","metadata":{"name":"cm","managedFields":[{"manager":"m"}]}}`)
	}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/json" {
		body = []byte(`{"kind":"ConfigMap","metadata":{"name":"generated-x1"}}`)
	}
	_, _ = w.Write(body)
}

// protobufConfigMap is a ConfigMap as client-go sends it in protobuf.
func protobufConfigMap(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	enc := protobuf.NewSerializer(nil, nil)
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, Data: map[string]string{"k": "from-protobuf"}}
	if err := enc.Encode(cm, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func do(t *testing.T, method, url, contentType, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "audit-test/1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestEventMetadata(t *testing.T) {
	l, events := newTestLogger(t, "", nil)
	srv := serveAudited(t, http.HandlerFunc(echo), l)
	resp := do(t, "GET", srv.URL+"/api/v1/namespaces/ns1/configmaps/cm", "", "")
	do(t, "GET", srv.URL+"/healthz", "", "")
	do(t, "GET", srv.URL+"/readyz/ping", "", "")
	evs := events()
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1 (health probes are not audited): %+v", len(evs), evs)
	}
	ev := evs[0]
	if id := resp.Header.Get(HeaderAuditID); id == "" || string(ev.AuditID) != id {
		t.Errorf("auditID %q, Audit-Id header %q", ev.AuditID, id)
	}
	if ev.Stage != auditv1.StageResponseComplete || ev.Level != auditv1.LevelMetadata || ev.Verb != "get" ||
		ev.RequestURI != "/api/v1/namespaces/ns1/configmaps/cm" || ev.UserAgent != "audit-test/1" {
		t.Errorf("event %+v", ev)
	}
	if ev.User.Username != "alice" || ev.User.UID != "u-1" || len(ev.User.Groups) != 2 || ev.User.Extra != nil {
		t.Errorf("user %+v: want name, uid and groups, no extra", ev.User)
	}
	want := auditv1.ObjectReference{Resource: "configmaps", Namespace: "ns1", Name: "cm", APIVersion: "v1"}
	if ev.ObjectRef == nil || *ev.ObjectRef != want {
		t.Errorf("objectRef %+v, want %+v", ev.ObjectRef, want)
	}
	if ev.ResponseStatus == nil || ev.ResponseStatus.Code != 200 {
		t.Errorf("responseStatus %+v", ev.ResponseStatus)
	}
	if len(ev.SourceIPs) != 1 || ev.SourceIPs[0] != "127.0.0.1" {
		t.Errorf("sourceIPs %v", ev.SourceIPs)
	}
	if ev.RequestObject != nil || ev.ResponseObject != nil {
		t.Errorf("bodies at Metadata level: %s %s", ev.RequestObject, ev.ResponseObject)
	}
	if ev.StageTimestamp.Before(&ev.RequestReceivedTimestamp) || ev.Annotations[latencyAnnotation] == "" {
		t.Errorf("timestamps %v %v, latency %q", ev.RequestReceivedTimestamp, ev.StageTimestamp, ev.Annotations[latencyAnnotation])
	}
}

func TestBodiesFollowLevel(t *testing.T) {
	policy := `apiVersion: audit.k8s.io/v1
kind: Policy
omitManagedFields: true
rules:
- level: RequestResponse
  resources: [{group: "", resources: [configmaps]}]
- level: Request
  resources: [{group: example.com, resources: [widgets]}]
- level: Metadata
`
	l, events := newTestLogger(t, policy, func(c *Config) { c.MaxBodyBytes = 100 })
	srv := serveAudited(t, http.HandlerFunc(echo), l)
	cm := `{"kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}`
	do(t, "POST", srv.URL+"/api/v1/namespaces/ns/configmaps", "application/json", cm)
	do(t, "GET", srv.URL+"/api/v1/namespaces/ns/configmaps/cm", "", "")
	do(t, "PATCH", srv.URL+"/apis/example.com/v1/namespaces/ns/widgets/w", "application/apply-patch+yaml", "kind: Widget\nspec: {size: 3}\n")
	do(t, "POST", srv.URL+"/api/v1/namespaces/ns/configmaps", "application/vnd.kubernetes.protobuf", protobufConfigMap(t))
	do(t, "POST", srv.URL+"/api/v1/namespaces/ns/configmaps", "application/vnd.kubernetes.protobuf", "k8s\x00\x0a")
	do(t, "POST", srv.URL+"/api/v1/namespaces/ns/configmaps", "text/plain", "hello")
	do(t, "PUT", srv.URL+"/api/v1/namespaces/ns/configmaps/big", "application/json", `{"data":{"k":"`+strings.Repeat("x", 200)+`"}}`)
	do(t, "PUT", srv.URL+"/apis/other.com/v1/namespaces/ns/things/t", "application/json", `{"spec":{}}`)
	evs := events()
	if len(evs) != 8 {
		t.Fatalf("got %d events, want 8", len(evs))
	}
	raw := func(u interface{ MarshalJSON() ([]byte, error) }) string {
		b, _ := u.MarshalJSON()
		return string(b)
	}
	if evs[0].Level != auditv1.LevelRequestResponse || evs[0].RequestObject == nil || raw(evs[0].RequestObject) != cm || evs[0].ResponseObject == nil {
		t.Errorf("RequestResponse create: %+v", evs[0])
	}
	if evs[1].ResponseObject == nil || strings.Contains(raw(evs[1].ResponseObject), "managedFields") {
		t.Errorf("get: response object %v, want it without managedFields", evs[1].ResponseObject)
	}
	if evs[2].Level != auditv1.LevelRequest || evs[2].RequestObject == nil || raw(evs[2].RequestObject) != `{"kind":"Widget","spec":{"size":3}}` || evs[2].ResponseObject != nil {
		t.Errorf("Request-level apply: %+v", evs[2])
	}
	if evs[3].RequestObject == nil || !strings.Contains(raw(evs[3].RequestObject), `"data":{"k":"from-protobuf"}`) {
		t.Errorf("protobuf body logged as %v, want its JSON", evs[3].RequestObject)
	}
	if evs[3].ObjectRef.Name != "generated-x1" {
		t.Errorf("create's objectRef.name %q, want the name from the answer", evs[3].ObjectRef.Name)
	}
	for i, why := range map[int]string{4: "malformed", 5: "not JSON, YAML or protobuf", 6: "larger than the audit body limit"} {
		if evs[i].RequestObject != nil || evs[i].Annotations[omittedRequestAnnotation] != why {
			t.Errorf("event %d: %+v, want no request object because %s", i, evs[i], why)
		}
	}
	if evs[7].Level != auditv1.LevelMetadata || evs[7].RequestObject != nil || evs[7].ResponseObject != nil {
		t.Errorf("Metadata-level update: %+v", evs[7])
	}
}

// TestCredentialsNeverAboveMetadata asks for every body and checks that
// requests on Secrets, token reviews and token requests get Metadata only.
func TestCredentialsNeverAboveMetadata(t *testing.T) {
	l, events := newTestLogger(t, allRequestResponse, nil)
	srv := serveAudited(t, http.HandlerFunc(echo), l)
	for _, p := range []string{
		"/api/v1/namespaces/ns/secrets",
		"/apis/authentication.k8s.io/v1/tokenreviews",
		"/api/v1/namespaces/ns/serviceaccounts/default/token",
		"/apis/example.com/v1/namespaces/ns/secrets",
	} {
		do(t, "POST", srv.URL+p, "application/json", `{"data":{"password":"aHVudGVyMg=="},"stringData":{"token":"hunter2"}}`)
	}
	do(t, "GET", srv.URL+"/api/v1/namespaces/ns/secrets/cm", "", "")
	for _, ev := range events() {
		if ev.Level != auditv1.LevelMetadata || ev.RequestObject != nil || ev.ResponseObject != nil {
			t.Errorf("%s %s audited at %s with bodies %v %v", ev.Verb, ev.RequestURI, ev.Level, ev.RequestObject, ev.ResponseObject)
		}
	}
}

func TestWatchStartsAndCompletes(t *testing.T) {
	l, events := newTestLogger(t, allRequestResponse, nil)
	release := make(chan struct{})
	srv := serveAudited(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"type":"ADDED","object":{}}` + "\n"))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err)
		}
		<-release
	}), l)
	resp, err := http.Get(srv.URL + "/api/v1/namespaces/ns/configmaps?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	// The first event arrives while the handler still runs: the audit
	// writer passes flushes on.
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "ADDED") {
		t.Fatalf("first watch line %q, %v", line, err)
	}
	close(release)
	resp.Body.Close()
	srv.Close()
	evs := events()
	if len(evs) != 2 || evs[0].Stage != auditv1.StageResponseStarted || evs[1].Stage != auditv1.StageResponseComplete ||
		evs[0].AuditID != evs[1].AuditID || evs[0].Verb != "watch" {
		t.Fatalf("events %+v, want ResponseStarted then ResponseComplete of one watch", evs)
	}
	if evs[1].ResponseObject != nil {
		t.Errorf("a watch logged its stream: %s", evs[1].ResponseObject)
	}
}

func TestFailedAuthentication(t *testing.T) {
	l, events := newTestLogger(t, "", nil)
	unauthorized := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`))
	})
	srv := httptest.NewServer(requestinfo.With(WithFailedAuthentication(unauthorized, l)))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/namespaces/ns/secrets", nil)
	req.Header.Set("Authorization", "Bearer not-a-valid-token-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get(HeaderAuditID) == "" {
		t.Error("no Audit-Id on a 401")
	}
	evs := events()
	if len(evs) != 1 {
		t.Fatalf("events %+v", evs)
	}
	ev := evs[0]
	st := ev.ResponseStatus
	if ev.User.Username != "" || st == nil || st.Code != 401 || st.Reason != "Unauthorized" || st.Message != "Unauthorized" || st.Status != "Failure" {
		t.Errorf("event %+v status %+v", ev, st)
	}
}

func TestPanicIsAudited(t *testing.T) {
	l, events := newTestLogger(t, "", nil)
	srv := serveAudited(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }), l)
	if _, err := http.Get(srv.URL + "/api/v1/namespaces"); err == nil {
		t.Error("an aborted request got an answer")
	}
	srv.Close()
	evs := events()
	if len(evs) != 1 || evs[0].Stage != auditv1.StagePanic || evs[0].ResponseStatus.Code != 500 {
		t.Fatalf("events %+v, want one at Panic with 500", evs)
	}
}

func TestClientFieldsAreBounded(t *testing.T) {
	l, events := newTestLogger(t, "", nil)
	srv := serveAudited(t, http.HandlerFunc(echo), l)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/namespaces/ns/configmaps/"+strings.Repeat("n", 10000), nil)
	req.Header.Set("User-Agent", strings.Repeat("u", 5000))
	req.Header.Set("X-Forwarded-For", strings.Repeat("10.0.0.1,", 100))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ev := events()[0]
	if len(ev.RequestURI) != maxURIBytes || len(ev.UserAgent) != maxUserAgentBytes || len(ev.ObjectRef.Name) != maxFieldBytes ||
		len(ev.SourceIPs) != maxSourceIPs || ev.SourceIPs[maxSourceIPs-1] != "127.0.0.1" {
		t.Errorf("uri %d, agent %d, name %d, ips %v", len(ev.RequestURI), len(ev.UserAgent), len(ev.ObjectRef.Name), ev.SourceIPs)
	}
	if got := ev.Annotations[truncatedAnnotation]; got != "requestURI,userAgent,objectRef.name,sourceIPs" {
		t.Errorf("truncated annotation %q", got)
	}
}

func TestNoLogWhenPathEmpty(t *testing.T) {
	l, err := New(Config{})
	if err != nil || l != nil {
		t.Fatalf("New with no path: %v, %v", l, err)
	}
	h := http.HandlerFunc(echo)
	if With(h, nil) == nil || l.Close() != nil || l.Collectors() != nil {
		t.Error("a nil Logger is not a no-op")
	}
}

func TestStdout(t *testing.T) {
	var out bytes.Buffer
	l, err := New(Config{Path: "-", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveAudited(t, http.HandlerFunc(echo), l)
	do(t, "DELETE", srv.URL+"/api/v1/namespaces/ns", "", "")
	srv.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if evs := decodeEvents(t, out.Bytes()); len(evs) != 1 || evs[0].Verb != "delete" {
		t.Errorf("stdout events %+v", evs)
	}
}

// FuzzEventLine sends requests with hostile paths, headers and bodies
// through the filter and checks that each gives whole, one-line events
// with the client's fields bounded.
func FuzzEventLine(f *testing.F) {
	f.Add("POST", "/api/v1/namespaces/ns/configmaps", "application/json", `{"a":"<b>\u2028"}`, "x-agent", "10.0.0.1")
	f.Add("GET", "/api/v1/namespaces/ns/configmaps?watch=true", "", "", "", "")
	f.Add("PATCH", "/apis/g/v1/namespaces/n/widgets/w", "application/apply-patch+yaml", "a: [1, {b: c}]\n", "ua\n\x00", "::1, 1.2.3.4")
	f.Add("PUT", "/api/v1/namespaces/ns/secrets/s", "application/json", `{"data":{"k":"djE="}}`, "", "")
	f.Add("POST", "/api/v1/namespaces/ns/configmaps", "application/vnd.kubernetes.protobuf", "k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12\x00", "", "")
	f.Fuzz(func(t *testing.T, method, target, contentType, body, agent, forwarded string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(target, "/") {
			return
		}
		var out bytes.Buffer
		l, err := New(Config{Path: "-", Stdout: &out, MaxBodyBytes: 1 << 10, PolicyFile: policyFile(t)})
		if err != nil {
			t.Fatal(err)
		}
		r := &http.Request{
			Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:     http.Header{"Content-Type": {contentType}, "User-Agent": {agent}, "X-Forwarded-For": {forwarded}},
			Body:       io.NopCloser(strings.NewReader(body)),
			RemoteAddr: "127.0.0.1:1234",
		}
		r = r.WithContext(request.WithUser(t.Context(), alice))
		requestinfo.With(With(http.HandlerFunc(echo), l)).ServeHTTP(httptest.NewRecorder(), r)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for _, ev := range decodeEvents(t, out.Bytes()) {
			if len(ev.RequestURI) > maxURIBytes || len(ev.UserAgent) > maxUserAgentBytes || len(ev.SourceIPs) > maxSourceIPs {
				t.Fatalf("unbounded event %+v", ev)
			}
			if ev.ObjectRef != nil && ev.ObjectRef.Resource == "secrets" && (ev.RequestObject != nil || ev.ResponseObject != nil) {
				t.Fatalf("secret body logged: %+v", ev)
			}
		}
	})
}

// policyFile writes allRequestResponse to a file once per test.
func policyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte(allRequestResponse), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
