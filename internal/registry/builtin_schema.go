package registry

import (
	"fmt"
	"reflect"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/setpoint/setpoint/internal/admission"
)

// Types the schema generator maps to a JSON Schema type of their own
// rather than following their Go fields.
var (
	timeType      = reflect.TypeFor[metav1.Time]()
	microTimeType = reflect.TypeFor[metav1.MicroTime]()
	quantityType  = reflect.TypeFor[resource.Quantity]()
	intOrStrType  = reflect.TypeFor[intstr.IntOrString]()
	bytesType     = reflect.TypeFor[[]byte]()
)

// swaggerDoc is implemented by the k8s.io/api types: field descriptions by
// JSON name, "" for the type itself.
type swaggerDoc interface {
	SwaggerDoc() map[string]string
}

// builtinSchema derives the openAPIV3Schema of the Kubernetes API type T
// from its Go definition (JSON names, Go types and the descriptions the
// types carry) and compiles it. apiVersion, kind and metadata are left to
// the generic handling every object gets. It panics if the result does
// not compile, which is a programming error caught by any test.
func builtinSchema[T any]() (*apiextensionsv1.JSONSchemaProps, *admission.Schema) {
	props := typeSchema(reflect.TypeFor[T](), true)
	s, errs := admission.NewSchema(props, field.NewPath("openAPIV3Schema"))
	if len(errs) > 0 {
		panic(fmt.Sprintf("registry: schema of %v: %v", reflect.TypeFor[T](), errs.ToAggregate()))
	}
	return props, s
}

// typeSchema is the schema of values of Go type t; root skips TypeMeta and
// ObjectMeta.
func typeSchema(t reflect.Type, root bool) *apiextensionsv1.JSONSchemaProps {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType, microTimeType:
		return &apiextensionsv1.JSONSchemaProps{Type: "string", Format: "date-time"}
	case quantityType, intOrStrType:
		return &apiextensionsv1.JSONSchemaProps{XIntOrString: true}
	case bytesType:
		return &apiextensionsv1.JSONSchemaProps{Type: "string", Format: "byte"}
	}
	switch t.Kind() {
	case reflect.String:
		return &apiextensionsv1.JSONSchemaProps{Type: "string"}
	case reflect.Bool:
		return &apiextensionsv1.JSONSchemaProps{Type: "boolean"}
	case reflect.Int32, reflect.Uint16, reflect.Int16, reflect.Int8, reflect.Uint8:
		return &apiextensionsv1.JSONSchemaProps{Type: "integer", Format: "int32"}
	case reflect.Int, reflect.Int64, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return &apiextensionsv1.JSONSchemaProps{Type: "integer", Format: "int64"}
	case reflect.Float32, reflect.Float64:
		return &apiextensionsv1.JSONSchemaProps{Type: "number", Format: "double"}
	case reflect.Slice, reflect.Array:
		return &apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: typeSchema(t.Elem(), false)}}
	case reflect.Map:
		return &apiextensionsv1.JSONSchemaProps{Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{
			Allows: true, Schema: typeSchema(t.Elem(), false),
		}}
	case reflect.Struct:
		s := &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{}}
		var docs map[string]string
		if d, ok := reflect.Zero(t).Interface().(swaggerDoc); ok {
			docs = d.SwaggerDoc()
			s.Description = docs[""]
		}
		addFields(s, t, docs, root)
		return s
	}
	panic(fmt.Sprintf("registry: no schema for Go type %v", t))
}

// addFields adds the JSON fields of struct t (inline ones flattened) to s.
func addFields(s *apiextensionsv1.JSONSchemaProps, t reflect.Type, docs map[string]string, root bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) {
			if root && f.Type == reflect.TypeFor[metav1.TypeMeta]() {
				continue
			}
			addFields(s, f.Type, docs, root)
			continue
		}
		if name == "" {
			name = f.Name
		}
		if root && name == "metadata" {
			continue
		}
		p := typeSchema(f.Type, false)
		if d := docs[name]; d != "" {
			p.Description = d
		}
		s.Properties[name] = *p
	}
}
