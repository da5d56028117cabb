package apiserver

import (
	"encoding/json"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"

	"github.com/setpoint/setpoint/internal/registry"
)

// protobufMediaType is what client-go's typed clientsets send bodies as
// since v0.37 (answers are negotiated to JSON, which they also accept).
const protobufMediaType = "application/vnd.kubernetes.protobuf"

// protobufDecoder decodes the protobuf bodies of the built-in types
// Setpoint serves (Namespace, ConfigMap, Secret, Event, Lease,
// events.k8s.io Event, CustomResourceDefinition, the webhook
// configurations, the RBAC types and the reviews kubectl auth sends),
// autoscaling/v1 Scale and DeleteOptions.
// Custom resources have no protobuf form, as in Kubernetes. This goes
// through typed objects, which is fine off the hot path of custom
// resources.
var protobufDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	s.AddKnownTypes(corev1.SchemeGroupVersion, &corev1.Namespace{}, &corev1.ConfigMap{}, &corev1.Secret{}, &corev1.Event{}, &metav1.DeleteOptions{})
	s.AddKnownTypes(coordinationv1.SchemeGroupVersion, &coordinationv1.Lease{}, &metav1.DeleteOptions{})
	s.AddKnownTypes(eventsv1.SchemeGroupVersion, &eventsv1.Event{}, &metav1.DeleteOptions{})
	s.AddKnownTypes(apiextensionsv1.SchemeGroupVersion, &apiextensionsv1.CustomResourceDefinition{}, &metav1.DeleteOptions{})
	s.AddKnownTypes(admissionregistrationv1.SchemeGroupVersion, &admissionregistrationv1.ValidatingWebhookConfiguration{},
		&admissionregistrationv1.MutatingWebhookConfiguration{}, &metav1.DeleteOptions{})
	s.AddKnownTypes(rbacv1.SchemeGroupVersion, &rbacv1.Role{}, &rbacv1.ClusterRole{}, &rbacv1.RoleBinding{}, &rbacv1.ClusterRoleBinding{}, &metav1.DeleteOptions{})
	s.AddKnownTypes(authorizationv1.SchemeGroupVersion, &authorizationv1.SelfSubjectAccessReview{}, &authorizationv1.SelfSubjectRulesReview{})
	s.AddKnownTypes(authenticationv1.SchemeGroupVersion, &authenticationv1.SelfSubjectReview{})
	s.AddKnownTypes(metav1.SchemeGroupVersion, &metav1.DeleteOptions{})
	// The scale subresource of custom resources takes autoscaling/v1 Scale.
	s.AddKnownTypes(autoscalingv1.SchemeGroupVersion, &autoscalingv1.Scale{})
	return protobuf.NewSerializer(s, s)
}()

// decodeProtobuf decodes a protobuf body of a known type.
func decodeProtobuf(data []byte) (runtime.Object, error) {
	obj, gvk, err := protobufDecoder.Decode(data, nil, nil)
	if runtime.IsNotRegisteredError(err) {
		return nil, errUnsupportedMediaType(protobufMediaType, objectMediaTypes)
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the request body is not valid protobuf: %v", err))
	}
	if crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition); ok && crdTooDeep(crd) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the request nests schemas deeper than %d levels", registry.MaxDepth))
	}
	obj.GetObjectKind().SetGroupVersionKind(*gvk)
	return obj, nil
}

// crdTooDeep reports whether a CRD's schemas nest deeper than a JSON body
// may. It bounds protobuf bodies as TooDeep bounds JSON before they are
// converted: a CRD is the one type accepted in protobuf whose depth has no
// bound, and converting its schemas costs time quadratic in their depth
// (each level encodes the levels below it again). Each schema nests at
// least one JSON level below its parent, so counting schemas bounds the
// recursion here and the JSON check of the converted object does the rest.
func crdTooDeep(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, v := range crd.Spec.Versions {
		if v.Schema != nil && schemaTooDeep(v.Schema.OpenAPIV3Schema, registry.MaxDepth) {
			return true
		}
	}
	return false
}

// schemaTooDeep reports whether s nests more than budget schemas.
func schemaTooDeep(s *apiextensionsv1.JSONSchemaProps, budget int) bool {
	if s == nil {
		return false
	}
	if budget == 0 {
		return true
	}
	var children []*apiextensionsv1.JSONSchemaProps
	for _, m := range []map[string]apiextensionsv1.JSONSchemaProps{s.Properties, s.PatternProperties, s.Definitions} {
		for _, c := range m {
			children = append(children, &c)
		}
	}
	for _, d := range s.Dependencies {
		children = append(children, d.Schema)
	}
	for _, l := range [][]apiextensionsv1.JSONSchemaProps{s.AllOf, s.OneOf, s.AnyOf} {
		for i := range l {
			children = append(children, &l[i])
		}
	}
	if s.Items != nil {
		children = append(children, s.Items.Schema)
		for i := range s.Items.JSONSchemas {
			children = append(children, &s.Items.JSONSchemas[i])
		}
	}
	for _, b := range []*apiextensionsv1.JSONSchemaPropsOrBool{s.AdditionalProperties, s.AdditionalItems} {
		if b != nil {
			children = append(children, b.Schema)
		}
	}
	children = append(children, s.Not)
	for _, c := range children {
		if schemaTooDeep(c, budget-1) {
			return true
		}
	}
	return false
}

// protobufObject decodes a protobuf object body into unstructured content.
func protobufObject(data []byte) (map[string]any, error) {
	obj, err := decodeProtobuf(data)
	if err != nil {
		return nil, err
	}
	if _, isOptions := obj.(*metav1.DeleteOptions); isOptions {
		return nil, apierrors.NewBadRequest("the request body is DeleteOptions, not an object")
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the request body cannot be converted: %v", err))
	}
	return m, nil
}

// ProtobufToJSON decodes a protobuf request body of a type the API
// accepts in protobuf and encodes it as JSON, for the audit log, which
// logs request bodies as JSON whatever the client sent.
func ProtobufToJSON(data []byte) ([]byte, error) {
	obj, err := decodeProtobuf(data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}
