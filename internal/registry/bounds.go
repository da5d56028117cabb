package registry

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/setpoint/setpoint/internal/jsondec"
)

// MaxDepth bounds how deep request bodies and patches may nest arrays and
// objects: deeper ones answer 400 before they are decoded. Every part
// that walks objects (admission, managed fields, the encoders) recurses
// at most this deep. Real objects nest a few levels; a CRD's
// openAPIV3Schema, the deepest kind of object commonly seen, takes two
// levels per level of the objects it describes, so 100 serves CRDs of
// objects more than 40 levels deep.
const MaxDepth = 100

// managedFieldsDepth is how much deeper than the fields it describes
// metadata.managedFields[].fieldsV1 nests (four levels to fieldsV1, and
// an empty object for each leaf): an object written with a body at
// MaxDepth is stored at most this much deeper.
const managedFieldsDepth = 5

// DefaultMaxObjectBytes is Options.MaxObjectBytes' default: etcd's own
// default bound on a request, which bounds Kubernetes objects.
const DefaultMaxObjectBytes = 3 << 19 // 1.5 MiB

// CheckDepth answers 400 BadRequest when the JSON text js nests deeper
// than MaxDepth.
func CheckDepth(js []byte) error {
	if jsondec.TooDeep(js, MaxDepth) {
		return apierrors.NewBadRequest(fmt.Sprintf("the request nests arrays and objects deeper than %d levels", MaxDepth))
	}
	return nil
}

// checkStored checks an object about to be written, as stored: larger
// than Options.MaxObjectBytes answers 413, deeper than a body may make it
// (which a patch that adds to what is there can) 400. A dry run is
// checked too, so it fails as the write would.
func (r *Registry) checkStored(value []byte) error {
	if len(value) > r.maxObjectBytes {
		return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf(
			"the object would be %d bytes once written; the limit is %d", len(value), r.maxObjectBytes))
	}
	if jsondec.TooDeep(value, MaxDepth+managedFieldsDepth) {
		return apierrors.NewBadRequest(fmt.Sprintf("the object would nest arrays and objects deeper than %d levels", MaxDepth))
	}
	return nil
}
