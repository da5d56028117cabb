package audit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/requestinfo"
)

// BenchmarkWith measures what the audit filter adds to a create of a small
// ConfigMap: off, at Metadata level (the default policy) and at
// RequestResponse, with the events written to a file.
func BenchmarkWith(b *testing.B) {
	const body = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"ns"},"data":{"k":"v"}}`
	for _, bc := range []struct{ name, policy string }{{"off", ""}, {"metadata", ""}, {"request_response", allRequestResponse}} {
		b.Run(bc.name, func(b *testing.B) {
			var l *Logger
			if bc.name != "off" {
				l, _ = newTestLogger(b, bc.policy, nil)
			}
			h := requestinfo.With(With(http.HandlerFunc(echo), l))
			ctx := request.WithUser(b.Context(), alice)
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequestWithContext(ctx, "POST", "/api/v1/namespaces/ns/configmaps", strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
}
