package apiserver

import (
	"encoding/json"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// protobufMediaType is what client-go's typed clientsets send bodies as
// since v0.37 (answers are negotiated to JSON, which they also accept).
const protobufMediaType = "application/vnd.kubernetes.protobuf"

// protobufDecoder decodes the protobuf bodies of the built-in types
// Setpoint serves (Namespace, ConfigMap, Secret, Event, Lease,
// events.k8s.io Event, CustomResourceDefinition), autoscaling/v1 Scale and
// DeleteOptions.
// Custom resources have no protobuf form, as in Kubernetes. This goes
// through typed objects, which is fine off the hot path of custom
// resources.
var protobufDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	s.AddKnownTypes(corev1.SchemeGroupVersion, &corev1.Namespace{}, &corev1.ConfigMap{}, &corev1.Secret{}, &corev1.Event{}, &metav1.DeleteOptions{})
	s.AddKnownTypes(coordinationv1.SchemeGroupVersion, &coordinationv1.Lease{}, &metav1.DeleteOptions{})
	s.AddKnownTypes(eventsv1.SchemeGroupVersion, &eventsv1.Event{}, &metav1.DeleteOptions{})
	s.AddKnownTypes(apiextensionsv1.SchemeGroupVersion, &apiextensionsv1.CustomResourceDefinition{}, &metav1.DeleteOptions{})
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
	obj.GetObjectKind().SetGroupVersionKind(*gvk)
	return obj, nil
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
