package registry

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// typed completes b as the built-in resource of Go type T: its schema,
// and a check that bodies decode into T.
func typed[T any](b *builtin) *builtin {
	b.OpenAPISchema, b.Schema = builtinSchema[T]()
	b.decodes = func(obj map[string]any) error { return decodesAs[T](&b.Resource, obj) }
	return b
}

// decodesAs checks that obj decodes into T, as Kubernetes decodes the
// bodies of its own types: a value of the wrong JSON type or a []byte that
// is not base64 answers 400. The message names the field, never its value.
func decodesAs[T any](res *Resource, obj map[string]any) error {
	b, err := json.Marshal(obj)
	if err == nil {
		var v T
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", res.Kind, res.Version, res.Kind, err))
	}
	return nil
}

// dropGeneration removes metadata.generation, which Kubernetes does not
// set on types without a spec.
func dropGeneration(obj map[string]any) {
	delete(metadata(obj), "generation")
}

// The prepare hooks of types without a spec, on which Kubernetes sets no
// generation.
var (
	dropGenerationOnCreate = func(_ *Registry, obj map[string]any) error { dropGeneration(obj); return nil }
	dropGenerationOnUpdate = func(obj, _ map[string]any) error { dropGeneration(obj); return nil }
)

// configMapBuiltin serves v1 ConfigMaps.
var configMapBuiltin = typed[corev1.ConfigMap](&builtin{
	Resource: Resource{
		Version: "v1", Resource: "configmaps", SingularName: "configmap",
		Kind: "ConfigMap", ListKind: "ConfigMapList", Namespaced: true, ShortNames: []string{"cm"},
		Verbs: standardVerbs, StorageKey: "/configmaps",
	},
	prepare:       dropGenerationOnCreate,
	prepareUpdate: dropGenerationOnUpdate,
	validate:      validateConfigMap,
})

// maxDataSize is the total size of a ConfigMap's or Secret's values that
// Kubernetes accepts (corev1.MaxSecretSize, 1 MiB).
const maxDataSize = corev1.MaxSecretSize

// validateConfigMap checks keys, the total size and, for an immutable
// ConfigMap, that data, binaryData and immutable do not change.
func validateConfigMap(obj, old map[string]any) field.ErrorList {
	var errs field.ErrorList
	data, _ := obj["data"].(map[string]any)
	binary, _ := obj["binaryData"].(map[string]any)
	size := 0
	for _, k := range sortedKeys(data) {
		p := field.NewPath("data").Key(k)
		errs = append(errs, keyErrors(p, k)...)
		if _, dup := binary[k]; dup {
			errs = append(errs, field.Invalid(p, k, "duplicate of key present in binaryData"))
		}
		s, _ := data[k].(string)
		size += len(s)
	}
	for _, k := range sortedKeys(binary) {
		p := field.NewPath("binaryData").Key(k)
		errs = append(errs, keyErrors(p, k)...)
		if _, dup := data[k]; dup {
			errs = append(errs, field.Invalid(p, k, "duplicate of key present in data"))
		}
		size += decodedLen(binary[k])
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", maxDataSize))
	}
	if old != nil && isImmutable(old) {
		errs = append(errs, immutableErrors(obj, old, "data", "binaryData")...)
	}
	return errs
}

// keyErrors checks a ConfigMap or Secret key.
func keyErrors(p *field.Path, key string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsConfigMapKey(key) {
		errs = append(errs, field.Invalid(p, key, msg))
	}
	return errs
}

// decodedLen is the length of the bytes a base64 value stands for.
func decodedLen(v any) int {
	s, _ := v.(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return len(s)
	}
	return len(b)
}

// isImmutable reports whether obj has immutable: true.
func isImmutable(obj map[string]any) bool {
	b, _ := obj["immutable"].(bool)
	return b
}

// immutableErrors reports the changes an immutable ConfigMap or Secret
// may not have: to immutable itself and to fields. Values are never
// echoed (they may be secret).
func immutableErrors(obj, old map[string]any, fields ...string) field.ErrorList {
	const msg = "field is immutable when `immutable` is set"
	var errs field.ErrorList
	if !isImmutable(obj) {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), msg))
	}
	for _, f := range fields {
		if !reflect.DeepEqual(emptyToNil(obj[f]), emptyToNil(old[f])) {
			errs = append(errs, field.Forbidden(field.NewPath(f), msg))
		}
	}
	return errs
}

// emptyToNil treats an empty map as absent, as the Go types do.
func emptyToNil(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 0 {
		return nil
	}
	return v
}

// secretBuiltin serves v1 Secrets.
var secretBuiltin = typed[corev1.Secret](&builtin{
	Resource: Resource{
		Version: "v1", Resource: "secrets", SingularName: "secret",
		Kind: "Secret", ListKind: "SecretList", Namespaced: true,
		Verbs: standardVerbs, StorageKey: "/secrets", SelectableFields: []string{"type"},
	},
	prepare:       func(_ *Registry, obj map[string]any) error { return prepareSecret(obj) },
	prepareUpdate: func(obj, _ map[string]any) error { return prepareSecret(obj) },
	validate:      validateSecret,
})

// prepareSecret merges stringData into data (stringData wins, and is
// never stored) and defaults type to Opaque, as Kubernetes does on decode.
func prepareSecret(obj map[string]any) error {
	dropGeneration(obj)
	if sd, ok := obj["stringData"].(map[string]any); ok && len(sd) > 0 {
		data, _ := obj["data"].(map[string]any)
		if data == nil {
			data = map[string]any{}
			obj["data"] = data
		}
		for k, v := range sd {
			s, _ := v.(string)
			data[k] = base64.StdEncoding.EncodeToString([]byte(s))
		}
	}
	delete(obj, "stringData")
	if t, _ := obj["type"].(string); t == "" {
		obj["type"] = string(corev1.SecretTypeOpaque)
	}
	return nil
}

// secretRedacted stands for a secret value in error messages, as
// Kubernetes words it.
const secretRedacted = "<secret contents redacted>"

// requiredSecretKeys are the data keys each Secret type must have.
var requiredSecretKeys = map[corev1.SecretType][]string{
	corev1.SecretTypeDockercfg:        {corev1.DockerConfigKey},
	corev1.SecretTypeDockerConfigJson: {corev1.DockerConfigJsonKey},
	corev1.SecretTypeSSHAuth:          {corev1.SSHAuthPrivateKey},
	corev1.SecretTypeTLS:              {corev1.TLSCertKey, corev1.TLSPrivateKeyKey},
}

// validateSecret checks keys, the total size, the keys the type requires,
// and on update that type does not change and, for an immutable Secret,
// that data and immutable do not either. No message carries a value.
func validateSecret(obj, old map[string]any) field.ErrorList {
	var errs field.ErrorList
	dataPath := field.NewPath("data")
	data, _ := obj["data"].(map[string]any)
	size := 0
	for _, k := range sortedKeys(data) {
		errs = append(errs, keyErrors(dataPath.Key(k), k)...)
		size += decodedLen(data[k])
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(dataPath, "", maxDataSize))
	}
	typ, _ := obj["type"].(string)
	for _, k := range requiredSecretKeys[corev1.SecretType(typ)] {
		if _, ok := data[k]; !ok {
			errs = append(errs, field.Required(dataPath.Key(k), ""))
		}
	}
	switch corev1.SecretType(typ) {
	case corev1.SecretTypeServiceAccountToken:
		if metaAnnotation(obj, corev1.ServiceAccountNameKey) == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeBasicAuth:
		_, user := data[corev1.BasicAuthUsernameKey]
		_, pass := data[corev1.BasicAuthPasswordKey]
		if !user && !pass {
			errs = append(errs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""),
				field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg:
		key := corev1.DockerConfigJsonKey
		if corev1.SecretType(typ) == corev1.SecretTypeDockercfg {
			key = corev1.DockerConfigKey
		}
		if v, ok := data[key].(string); ok {
			b, _ := base64.StdEncoding.DecodeString(v)
			if !json.Valid(b) {
				errs = append(errs, field.Invalid(dataPath.Key(key), secretRedacted, "invalid JSON"))
			}
		}
	}
	if old != nil {
		oldType, _ := old["type"].(string)
		if typ != oldType {
			errs = append(errs, field.Invalid(field.NewPath("type"), typ, "field is immutable"))
		}
		if isImmutable(old) {
			errs = append(errs, immutableErrors(obj, old, "data")...)
		}
	}
	return errs
}

// metaAnnotation returns metadata.annotations[key].
func metaAnnotation(obj map[string]any, key string) string {
	a, _ := metadata(obj)["annotations"].(map[string]any)
	s, _ := a[key].(string)
	return s
}

// leaseBuiltin serves coordination.k8s.io/v1 Leases.
var leaseBuiltin = typed[coordinationv1.Lease](&builtin{
	Resource: Resource{
		Group: "coordination.k8s.io", Version: "v1", Resource: "leases", SingularName: "lease",
		Kind: "Lease", ListKind: "LeaseList", Namespaced: true,
		Verbs: standardVerbs, StorageKey: "coordination.k8s.io/leases",
	},
	prepare:       dropGenerationOnCreate,
	prepareUpdate: dropGenerationOnUpdate,
	validate:      validateLease,
})

// validateLease checks spec.leaseDurationSeconds and spec.leaseTransitions
// as Kubernetes does.
func validateLease(obj, _ map[string]any) field.ErrorList {
	var errs field.ErrorList
	spec, _ := obj["spec"].(map[string]any)
	p := field.NewPath("spec")
	if d, ok := spec["leaseDurationSeconds"].(int64); ok && d <= 0 {
		errs = append(errs, field.Invalid(p.Child("leaseDurationSeconds"), d, "must be greater than 0"))
	}
	if n, ok := spec["leaseTransitions"].(int64); ok && n < 0 {
		errs = append(errs, field.Invalid(p.Child("leaseTransitions"), n, "must be greater than or equal to 0"))
	}
	return errs
}

// sortedKeys returns the keys of m in order, so errors come in a stable
// order.
func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}
