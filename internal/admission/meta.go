package admission

import (
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateObjectMeta checks the metadata of a custom resource: the name
// (or, while the name is empty, generateName) is a DNS subdomain, namespace is set exactly when
// namespaced, labels, annotations (at most 256 KiB in total), finalizers
// and owner references are valid.
func ValidateObjectMeta(obj *unstructured.Unstructured, namespaced bool) field.ErrorList {
	return ValidateObjectMetaWithName(obj, namespaced, apivalidation.NameIsDNSSubdomain)
}

// ValidateObjectMetaWithName is ValidateObjectMeta with another rule for
// names, for example apivalidation.NameIsDNSLabel for namespaces.
func ValidateObjectMetaWithName(obj *unstructured.Unstructured, namespaced bool, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaAccessor(obj, namespaced, nameFn, field.NewPath("metadata"))
	if obj.GetName() != "" || obj.GetGenerateName() == "" {
		return errs
	}
	// The registry derives the name from generateName when it stores the
	// object; until then a missing name is not an error.
	kept := errs[:0]
	for _, e := range errs {
		if e.Type != field.ErrorTypeRequired || e.Field != "metadata.name" {
			kept = append(kept, e)
		}
	}
	return kept
}

// ValidateObjectMetaUpdate checks an update of metadata: resourceVersion is
// set, uid, name, namespace and creationTimestamp are immutable, and no
// finalizer may be added once deletionTimestamp is set. It does not repeat the checks of
// ValidateObjectMeta on newObj.
func ValidateObjectMetaUpdate(newObj, oldObj *unstructured.Unstructured) field.ErrorList {
	return apivalidation.ValidateObjectMetaAccessorUpdate(newObj, oldObj, field.NewPath("metadata"))
}
