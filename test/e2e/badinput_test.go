package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// TestBadInput sends malformed requests over raw HTTP. Each must get a 4xx
// answer carrying a v1 Status with the matching code and reason, and none may
// change what is stored.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, 60*time.Second)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "bad")
	target := mustCreate(t, ctx, c.widgets("bad"), widget("bad", "target", nil, validSpec()))

	hc, err := rest.HTTPClientFor(s.restConfig())
	if err != nil {
		t.Fatalf("HTTP client: %v", err)
	}
	coll := s.baseURL() + "/apis/" + testGroup + "/" + testVersion + "/namespaces/bad/widgets"
	item := coll + "/target"
	valid := func(name string) string {
		return `{"apiVersion":"` + testGroup + `/` + testVersion + `","kind":"Widget","metadata":{"name":"` + name + `"},"spec":{"size":3,"color":"red"}}`
	}
	withRV := func(rv string) string {
		return `{"apiVersion":"` + testGroup + `/` + testVersion + `","kind":"Widget","metadata":{"name":"target","resourceVersion":"` + rv + `"},"spec":{"size":4,"color":"red"}}`
	}
	huge := `{"apiVersion":"` + testGroup + `/` + testVersion + `","kind":"Widget","metadata":{"name":"huge"},"spec":{"size":3,"color":"red","note":"` +
		strings.Repeat("x", 4<<20) + `"}}`

	for _, tc := range []struct {
		name, method, url, contentType, body string
		codes                                []int // acceptable codes, the first is Kubernetes'
		reason                               metav1.StatusReason
		accept                               string // default application/json
	}{
		{"MalformedJSON", "POST", coll, "application/json", `{"apiVersion":`, []int{400}, metav1.StatusReasonBadRequest, ""},
		{"NotAnObject", "POST", coll, "application/json", `[1,2]`, []int{400}, metav1.StatusReasonBadRequest, ""},
		{"EmptyBody", "POST", coll, "application/json", ``, []int{400}, metav1.StatusReasonBadRequest, ""},
		{"WrongKind", "POST", coll, "application/json", strings.Replace(valid("wrongkind"), `"Widget"`, `"Gadget"`, 1), []int{400}, metav1.StatusReasonBadRequest, ""},
		{"MetadataNotObject", "POST", coll, "application/json", `{"apiVersion":"` + testGroup + `/` + testVersion + `","kind":"Widget","metadata":"x","spec":{}}`, []int{400}, metav1.StatusReasonBadRequest, ""},
		{"BadName", "POST", coll, "application/json", valid("Bad_Name"), []int{422}, metav1.StatusReasonInvalid, ""},
		{"NamespaceMismatch", "POST", coll, "application/json", strings.Replace(valid("nsmismatch"), `"metadata":{`, `"metadata":{"namespace":"other",`, 1), []int{400}, metav1.StatusReasonBadRequest, ""},
		{"TooLarge", "POST", coll, "application/json", huge, []int{413}, metav1.StatusReasonRequestEntityTooLarge, ""},
		{"UnsupportedContentType", "POST", coll, "text/plain", valid("textplain"), []int{415}, metav1.StatusReasonUnsupportedMediaType, ""},
		{"ListBadResourceVersion", "GET", coll + "?resourceVersion=abc", "", "", []int{400}, metav1.StatusReasonBadRequest, ""},
		{"WatchBadResourceVersion", "GET", coll + "?watch=true&resourceVersion=abc", "", "", []int{400}, metav1.StatusReasonBadRequest, ""},
		{"ListBadLimit", "GET", coll + "?limit=abc", "", "", []int{400}, metav1.StatusReasonBadRequest, ""},
		{"ListBadLabelSelector", "GET", coll + "?labelSelector=a%20in%20(b", "", "", []int{400}, metav1.StatusReasonBadRequest, ""},
		{"UpdateBadResourceVersion", "PUT", item, "application/json", withRV("abc"), []int{400, 422}, "", ""},
		{"UpdateStaleResourceVersion", "PUT", item, "application/json", withRV("1"), []int{409}, metav1.StatusReasonConflict, ""},
		{"UpdateNameMismatch", "PUT", item, "application/json", strings.Replace(withRV(target.GetResourceVersion()), `"name":"target"`, `"name":"other"`, 1), []int{400}, metav1.StatusReasonBadRequest, ""},
		{"MalformedJSONPatch", "PATCH", item, "application/json-patch+json", `not json`, []int{400}, metav1.StatusReasonBadRequest, ""},
		{"MalformedMergePatch", "PATCH", item, "application/merge-patch+json", `{"spec":`, []int{400}, metav1.StatusReasonBadRequest, ""},
		{"MalformedDeleteOptions", "DELETE", item, "application/json", `{"propagationPolicy":`, []int{400}, metav1.StatusReasonBadRequest, ""},
		{"BadPropagationPolicy", "DELETE", item, "application/json", `{"propagationPolicy":"Sideways"}`, []int{400, 422}, "", ""},
		{"UnknownResource", "GET", s.baseURL() + "/apis/" + testGroup + "/" + testVersion + "/namespaces/bad/nothings", "", "", []int{404}, metav1.StatusReasonNotFound, ""},
		{"UnknownGroup", "GET", s.baseURL() + "/apis/nowhere.example/v1/things", "", "", []int{404}, metav1.StatusReasonNotFound, ""},
		{"PostToItem", "POST", item, "application/json", valid("target"), []int{405}, metav1.StatusReasonMethodNotAllowed, ""},
		{"DeepNesting", "POST", coll, "application/json", strings.Replace(valid("deep"), `"color":"red"`, `"color":"red","tags":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000), 1), []int{400, 422}, "", ""},
		{"DuplicateFieldStrict", "POST", coll + "?fieldValidation=Strict", "application/json", strings.Replace(valid("dup"), `"size":3`, `"size":3,"size":4`, 1), []int{400}, metav1.StatusReasonBadRequest, ""},
		{"FloatForInteger", "POST", coll, "application/json", strings.Replace(valid("float"), `"size":3`, `"size":3.5`, 1), []int{422}, metav1.StatusReasonInvalid, ""},
		{"NameTooLong", "POST", coll, "application/json", valid(strings.Repeat("n", 254)), []int{422}, metav1.StatusReasonInvalid, ""},
		{"BadGenerateName", "POST", coll, "application/json", strings.Replace(valid(""), `"name":""`, `"generateName":"Bad_"`, 1), []int{422}, metav1.StatusReasonInvalid, ""},
		// A version the server has not reached: Kubernetes waits a little,
		// then answers 504 "Too large resource version" (raw, so that
		// client-go does not retry after the Retry-After it carries).
		{"FutureResourceVersion", "GET", coll + "?resourceVersion=999999999&resourceVersionMatch=NotOlderThan", "", "", []int{504}, metav1.StatusReasonTimeout, ""},
		{"ClusterScopedInNamespace", "GET", s.baseURL() + "/apis/apiextensions.k8s.io/v1/namespaces/bad/customresourcedefinitions", "", "", []int{404}, metav1.StatusReasonNotFound, ""},
		{"CreateWithoutNamespace", "POST", s.baseURL() + "/apis/" + testGroup + "/" + testVersion + "/widgets", "application/json", valid("nons"), []int{405, 404}, "", ""},
		{name: "AcceptProtobufOnly", method: "GET", url: item, codes: []int{406}, reason: metav1.StatusReasonNotAcceptable, accept: "application/vnd.kubernetes.protobuf"},
		{name: "AcceptUnknown", method: "GET", url: coll, codes: []int{406}, reason: metav1.StatusReasonNotAcceptable, accept: "text/html"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, tc.method, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			req.Header.Set("Accept", "application/json")
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.url, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read answer: %v", err)
			}
			if !slices.Contains(tc.codes, resp.StatusCode) {
				t.Errorf("code %d, want %v; body %s", resp.StatusCode, tc.codes, truncate(body))
			}
			var st metav1.Status
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatalf("answer is not a Status: %v; body %s", err, truncate(body))
			}
			if st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure || int(st.Code) != resp.StatusCode || st.Message == "" {
				t.Errorf("Status kind %q apiVersion %q status %q code %d message %q; want Status v1 Failure %d with a message",
					st.Kind, st.APIVersion, st.Status, st.Code, st.Message, resp.StatusCode)
			}
			if tc.reason != "" && st.Reason != tc.reason {
				t.Errorf("reason %q, want %q (message %q)", st.Reason, tc.reason, st.Message)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		})
	}

	// Nothing changed: the target keeps its version and no other widget
	// exists.
	list, err := c.widgets("bad").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list after bad input: %v", err)
	}
	if got := names(list.Items); !slices.Equal(got, []string{"target"}) {
		t.Errorf("widgets after bad input: %v, want only target", got)
	}
	if got := mustGet(t, ctx, c.widgets("bad"), "target"); got.GetResourceVersion() != target.GetResourceVersion() {
		t.Errorf("bad input changed target: rv %s -> %s", target.GetResourceVersion(), got.GetResourceVersion())
	}
}

// truncate shortens an answer body for a failure message.
func truncate(b []byte) []byte {
	if len(b) > 300 {
		return append(bytes.Clone(b[:300]), "..."...)
	}
	return b
}

// TestBodyLimitFromEnvironment sets the body limit through its environment
// variable: a body just over it gets 413, one under it is created.
func TestBodyLimitFromEnvironment(t *testing.T) {
	t.Parallel()
	s := startServerEnv(t, []string{"SETPOINT_MAX_BODY_BYTES=4096"})
	c := newClients(t, s)
	ctx := testContext(t, 30*time.Second)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "limit")
	wc := c.widgets("limit")
	small := validSpec()
	small["note"] = strings.Repeat("s", 1000)
	mustCreate(t, ctx, wc, widget("limit", "small", nil, small))
	big := validSpec()
	big["note"] = strings.Repeat("b", 4096)
	_, err := wc.Create(ctx, widget("limit", "big", nil, big), metav1.CreateOptions{})
	if !apierrors.IsRequestEntityTooLargeError(err) {
		t.Errorf("create with a body over SETPOINT_MAX_BODY_BYTES=4096: want 413, got %v", err)
	}
	wantNotFound(t, ctx, wc, "big")
}
