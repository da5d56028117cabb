package apiserver

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPanicAnswers500 serves from a server without a registry, so that
// routing panics: the client gets a 500 Status and the panic is logged.
func TestPanicAnswers500(t *testing.T) {
	var logs bytes.Buffer
	s := &server{log: slog.New(slog.NewTextHandler(&logs, nil)), maxBody: defaultMaxBodyBytes}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/api/v1/namespaces")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var status metav1.Status
	if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusInternalServerError || status.Kind != "Status" || status.Reason != metav1.StatusReasonInternalError || status.Message != internalErrorMessage {
		t.Fatalf("got %d %+v", resp.StatusCode, status)
	}
	if !strings.Contains(logs.String(), "panic") {
		t.Fatalf("the panic was not logged: %s", logs.String())
	}
	// The server still answers.
	resp2, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusOK {
		t.Fatalf("healthz after a panic: %d", resp2.StatusCode)
	}
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		name, accept, verb string
		want               output
		fails              bool
	}{
		{"Empty", "", "get", output{}, false},
		{"Any", "*/*", "get", output{}, false},
		{"YAML", "application/yaml", "get", output{yaml: true}, false},
		{"ProtobufThenJSON", "application/vnd.kubernetes.protobuf, application/json", "list", output{}, false},
		{"ProtobufOnly", "application/vnd.kubernetes.protobuf", "get", output{}, true},
		{"ZeroQuality", "application/json;q=0", "get", output{}, true},
		{"Table", "application/json;as=Table;v=v1;g=meta.k8s.io", "list", output{target: targetTable, metaVersion: "v1"}, false},
		{"TableWrongGroup", "application/json;as=Table;v=v1;g=example.com, application/json", "list", output{}, false},
		{"PartialListForList", "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", "list", output{target: targetPartialList, metaVersion: "v1"}, false},
		{"PartialListForGet", "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", "get", output{}, true},
		{"WatchYAML", "application/yaml", "watch", output{}, true},
		{"StreamWatch", "application/json;stream=watch", "watch", output{}, false},
		{"Malformed", "application/json;;;=", "get", output{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := negotiate(tc.accept, tc.verb, false)
			if (err != nil) != tc.fails || (!tc.fails && got != tc.want) {
				t.Fatalf("negotiate(%q, %s) = %+v, %v; want %+v, fails %v", tc.accept, tc.verb, got, err, tc.want, tc.fails)
			}
		})
	}
}

func TestWarningText(t *testing.T) {
	if got := warningText("unknown field \"spec.a\\b\"\nnext"); got != `unknown field \"spec.a\\b\" next` {
		t.Fatalf("got %s", got)
	}
}
