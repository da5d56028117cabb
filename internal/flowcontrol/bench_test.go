package flowcontrol_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/setpoint/setpoint/internal/flowcontrol"
	"github.com/setpoint/setpoint/internal/requestinfo"
)

// BenchmarkFilter measures what flow control adds to a request that runs
// at once: the filter in front of an API that does nothing, from parallel
// goroutines each sending as one of a few users.
func BenchmarkFilter(b *testing.B) {
	for _, users := range []int{1, 16} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			h, err := flowcontrol.With(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
				flowcontrol.Options{}, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				u := &user.DefaultInfo{Name: fmt.Sprint("user-", next.Add(1)%int64(users))}
				req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/a/configmaps/x", nil)
				info, err := requestinfo.Of(req)
				if err != nil {
					b.Error(err)
					return
				}
				req = req.WithContext(request.WithRequestInfo(request.WithUser(req.Context(), u), info))
				w := httptest.NewRecorder()
				for pb.Next() {
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}
