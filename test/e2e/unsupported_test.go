package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// TestUnsupportedRequests sends requests Setpoint does not serve over raw
// HTTP and checks that each gets the code and Status reason Kubernetes
// gives, so that clients' fallbacks work. The upstream answer of each case
// (kube-apiserver v1.37 with apiextensions-apiserver) is noted beside it.
func TestUnsupportedRequests(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	ctx := testContext(t, time.Minute)
	installCRD(t, c, widgetCRD())
	installCRD(t, c, gadgetCRD())
	createNamespace(t, c, "un")
	target := mustCreate(t, ctx, c.widgets("un"), widget("un", "w", nil, validSpec()))
	hc, err := rest.HTTPClientFor(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	base := s.baseURL()
	gv := base + "/apis/" + testGroup + "/" + testVersion
	coll := gv + "/namespaces/un/widgets"
	item := coll + "/w"
	body := `{"apiVersion":"` + testGroup + `/` + testVersion + `","kind":"Widget","metadata":{"name":"x"},"spec":{"size":3,"color":"red"}}`
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`
	const (
		protobuf = "application/vnd.kubernetes.protobuf"
		jsonType = "application/json"
	)
	for _, tc := range []struct {
		name, method, url, contentType, accept, body string
		code                                         int
		reason                                       metav1.StatusReason
	}{
		// Built-in kinds not served. Upstream, /api/v1 is a go-restful
		// service whose unknown routes answer a 404 Status (NotFound,
		// "the server could not find the requested resource"); unknown
		// groups fall through to a plain 404 that client-go turns into a
		// NotFound error. kubectl learns from discovery that the type is
		// missing (see TestUnsupportedRequestsKubectl).
		{name: "CorePods", method: "GET", url: base + "/api/v1/pods", code: 404, reason: metav1.StatusReasonNotFound},
		{name: "CorePodsInNamespace", method: "GET", url: base + "/api/v1/namespaces/un/pods", code: 404, reason: metav1.StatusReasonNotFound},
		{name: "CreatePod", method: "POST", url: base + "/api/v1/namespaces/un/pods", contentType: jsonType, body: pod, code: 404, reason: metav1.StatusReasonNotFound},
		{name: "WatchServices", method: "GET", url: base + "/api/v1/services?watch=true", code: 404, reason: metav1.StatusReasonNotFound},
		{name: "AppsDeployments", method: "GET", url: base + "/apis/apps/v1/deployments", code: 404, reason: metav1.StatusReasonNotFound},
		{name: "AppsDeploymentInNamespace", method: "GET", url: base + "/apis/apps/v1/namespaces/un/deployments/d", code: 404, reason: metav1.StatusReasonNotFound},
		{name: "AppsDiscovery", method: "GET", url: base + "/apis/apps/v1", code: 404, reason: metav1.StatusReasonNotFound},
		{name: "UnknownVersionOfGroup", method: "GET", url: base + "/apis/" + testGroup + "/v9/namespaces/un/widgets", code: 404, reason: metav1.StatusReasonNotFound},
		// Namespaced custom resources outside a namespace (other than
		// list, watch and deletecollection) go to the delegate: 404.
		{name: "CreateWithoutNamespace", method: "POST", url: gv + "/widgets", contentType: jsonType, body: body, code: 404, reason: metav1.StatusReasonNotFound},
		// Subresources a CRD does not define: crdHandler answers NotFound.
		{name: "UnknownSubresource", method: "GET", url: item + "/logs", code: 404, reason: metav1.StatusReasonNotFound},
		{name: "ScaleNotEnabled", method: "GET", url: item + "/scale", code: 404, reason: metav1.StatusReasonNotFound},
		{name: "StatusNotEnabled", method: "GET", url: gv + "/gadgets/g/status", code: 404, reason: metav1.StatusReasonNotFound},
		// Patch types: custom resources take JSON patch, merge patch and
		// apply; strategic merge patch answers 415 (kubectl then says it
		// "is not supported by" the kind).
		{name: "StrategicMergePatch", method: "PATCH", url: item, contentType: "application/strategic-merge-patch+json", body: `{"spec":{"size":4}}`, code: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "UnknownPatchType", method: "PATCH", url: item, contentType: "application/x-patch", body: `{}`, code: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		// Bodies: custom resources have no protobuf form; unknown types.
		{name: "ProtobufBody", method: "POST", url: coll, contentType: protobuf, body: "k8s\x00junk", code: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "TextBody", method: "POST", url: coll, contentType: "text/plain", body: body, code: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "XMLBody", method: "PUT", url: item, contentType: "application/xml", body: "<w/>", code: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		// Accept: protobuf alone cannot be served for custom resources
		// (406); watch streams have no YAML form.
		{name: "AcceptProtobuf", method: "GET", url: item, accept: protobuf, code: 406, reason: metav1.StatusReasonNotAcceptable},
		{name: "AcceptProtobufList", method: "GET", url: coll, accept: protobuf, code: 406, reason: metav1.StatusReasonNotAcceptable},
		{name: "AcceptProtobufWatch", method: "GET", url: coll + "?watch=true", accept: protobuf + ";stream=watch", code: 406, reason: metav1.StatusReasonNotAcceptable},
		// CBOR is off by default in Kubernetes (feature gate
		// CBORServingAndStorage); clients only send it when told to.
		{name: "AcceptCBOR", method: "GET", url: item, accept: "application/cbor", code: 406, reason: metav1.StatusReasonNotAcceptable},
		{name: "CBORBody", method: "POST", url: coll, contentType: "application/cbor", body: "\xa0", code: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "AcceptYAMLWatch", method: "GET", url: coll + "?watch=true", accept: "application/yaml", code: 406, reason: metav1.StatusReasonNotAcceptable},
		// Verbs a path does not have. crdHandler maps PUT and PATCH on a
		// collection to update and patch, which need a name: 400.
		{name: "PutCollection", method: "PUT", url: coll, contentType: jsonType, body: body, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "PatchCollection", method: "PATCH", url: coll, contentType: "application/merge-patch+json", body: `{}`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "DeleteStatus", method: "DELETE", url: item + "/status", code: 405, reason: metav1.StatusReasonMethodNotAllowed},
		{name: "PostStatus", method: "POST", url: item + "/status", contentType: jsonType, body: body, code: 405, reason: metav1.StatusReasonMethodNotAllowed},
		{name: "UnknownMethod", method: "PROPFIND", url: item, code: 405, reason: metav1.StatusReasonMethodNotAllowed},
		{name: "PutNamespaceCollection", method: "PUT", url: base + "/api/v1/namespaces", contentType: jsonType, body: `{}`, code: 405, reason: metav1.StatusReasonMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, tc.method, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			req.Header.Set("Accept", jsonType)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var st metav1.Status
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatalf("code %d, answer is not a Status: %v; body %s", resp.StatusCode, err, truncate(b))
			}
			if resp.StatusCode != tc.code || int(st.Code) != tc.code || st.Reason != tc.reason || st.Kind != "Status" || st.Status != metav1.StatusFailure {
				t.Errorf("got %d %s (Status code %d, %q), want %d %s", resp.StatusCode, st.Reason, st.Code, st.Message, tc.code, tc.reason)
			}
		})
	}

	// A client that lists protobuf first and JSON second gets JSON.
	req, _ := http.NewRequestWithContext(ctx, "GET", item, nil)
	req.Header.Set("Accept", protobuf+", "+jsonType)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), jsonType) {
		t.Errorf("Accept protobuf, json: %d %s, want 200 JSON", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// client-go's typed clients and discovery see NotFound, as against a
	// cluster without these types.
	if _, err := c.core.CoreV1().Pods("un").List(ctx, metav1.ListOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("typed pods list: %v, want NotFound", err)
	}
	if _, err := c.core.AppsV1().Deployments("un").Get(ctx, "d", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("typed deployment get: %v, want NotFound", err)
	}
	if _, err := c.core.Discovery().ServerResourcesForGroupVersion("apps/v1"); !apierrors.IsNotFound(err) {
		t.Errorf("discovery of apps/v1: %v, want NotFound", err)
	}
	if got := mustGet(t, ctx, c.widgets("un"), "w"); got.GetResourceVersion() != target.GetResourceVersion() {
		t.Errorf("unsupported requests changed the widget: rv %s -> %s", target.GetResourceVersion(), got.GetResourceVersion())
	}
}

// TestUnsupportedRequestsKubectl checks kubectl's reaction to what the
// server does not serve: types missing from discovery and strategic merge
// patches of custom resources.
func TestUnsupportedRequestsKubectl(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := newClients(t, s)
	installCRD(t, c, widgetCRD())
	createNamespace(t, c, "un")
	mustCreate(t, testContext(t, time.Minute), c.widgets("un"), widget("un", "w", nil, validSpec()))
	k := newKubectl(t, s)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "pods"}, `error: the server doesn't have a resource type "pods"`},
		{[]string{"get", "deployments.apps", "-A"}, `error: the server doesn't have a resource type "deployments"`},
		{[]string{"get", "--raw", "/api/v1/pods"}, "Error from server (NotFound): the server could not find the requested resource"},
		{[]string{"patch", "widget", "w", "-n", "un", "-p", `{"spec":{"size":4}}`},
			"application/strategic-merge-patch+json is not supported by " + testGroup + "/" + testVersion + ", Kind=Widget"},
	} {
		if got := k.fail(t, tc.args...); !strings.Contains(got, tc.want) {
			t.Errorf("kubectl %s: stderr %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}
	// With the merge type kubectl patches the same object.
	k.run(t, "patch", "widget", "w", "-n", "un", "--type", "merge", "-p", `{"spec":{"size":4}}`)
}
