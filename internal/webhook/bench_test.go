package webhook_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/setpoint/setpoint/internal/registry"
	"github.com/setpoint/setpoint/internal/webhook"
)

// BenchmarkCreateDryRun measures what webhooks add to a create (a dry
// run, to leave storage out): nothing configured, a webhook for another
// resource, and a validating webhook called over HTTPS on loopback.
func BenchmarkCreateDryRun(b *testing.B) {
	for _, tc := range []struct {
		name  string
		setup func(t testing.TB, e *env)
	}{
		{"no-configuration", func(testing.TB, *env) {}},
		{"other-resource", func(t testing.TB, e *env) {
			e.validating(t, "other", vhook("other.example.com", newHookServer(t, allow), rule("", "v1", all, "secrets")))
		}},
		{"matching", func(t testing.TB, e *env) {
			e.validating(t, "cms", vhook("cms.example.com", newHookServer(t, allow), configMapRule))
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b, webhook.Options{})
			tc.setup(b, e)
			cms := e.lookup(b, "", "v1", "configmaps")
			body := &unstructured.Unstructured{Object: configMap("c", nil, map[string]string{"k": "v"})}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.reg.Create(b.Context(), cms, "default", body, registry.WriteOptions{DryRun: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
