// Package client is a typed Kubernetes API client for Go structs, built on
// generics instead of generated code.
//
// A type works with the client when it embeds metav1.TypeMeta and
// metav1.ObjectMeta the way Kubernetes types do; *unstructured.Unstructured
// works too (see Unstructured). A Resource names what the client serves:
//
//	type Widget struct {
//		metav1.TypeMeta   `json:",inline"`
//		metav1.ObjectMeta `json:"metadata,omitempty"`
//		Spec              WidgetSpec `json:"spec,omitempty"`
//	}
//
//	cfg, err := client.NewConfig("") // $KUBECONFIG or ~/.kube/config
//	...
//	widgets, err := client.New[Widget](cfg, client.Resource{
//		Group: "example.com", Version: "v1", Resource: "widgets", Kind: "Widget", Namespaced: true,
//	})
//	...
//	w, err := widgets.Get(ctx, "default", "w1")
//	if client.IsNotFound(err) { ... }
//
// Response bodies are decoded straight into the Go type, without an
// unstructured round trip. A client of metav1.PartialObjectMetadata asks
// the server for metadata alone.
//
// Requests go through client-go's rest transport (TLS, authentication and
// proxies from the rest.Config) and its rate limit settings. Answers of
// 429 or 5xx that carry Retry-After are retried as client-go retries them;
// other failures return *apierrors.StatusError, so the predicates
// IsNotFound, IsConflict and the others apply. The client reads at most
// 32 MiB for one object or watch event and 512 MiB for one page of a list
// (ErrResponseTooLarge); ListAll reads pages of 500.
package client
