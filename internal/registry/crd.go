package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/version"

	"github.com/setpoint/setpoint/internal/admission"
)

const (
	crdGroup      = "apiextensions.k8s.io"
	crdStorageKey = crdGroup + "/customresourcedefinitions"
	// crdCleanupFinalizer keeps a deleted CRD until its objects are gone.
	crdCleanupFinalizer = "customresourcecleanup.apiextensions.k8s.io"
)

func crdResource() *Resource { return &builtins[1].Resource }

// toCRD converts a JSON-like map into a typed CRD.
func toCRD(obj map[string]any) (*apiextensionsv1.CustomResourceDefinition, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := json.Unmarshal(b, crd); err != nil {
		return nil, err
	}
	return crd, nil
}

// fromCRD converts a typed CRD back into a JSON-like map.
func fromCRD(crd *apiextensionsv1.CustomResourceDefinition) (map[string]any, error) {
	b, err := json.Marshal(crd)
	if err != nil {
		return nil, err
	}
	return decodeValue(b)
}

// prepareCRD defaults and validates a CRD being created (old nil) or
// updated and computes its status (accepted names, conditions, stored
// versions), replacing obj's content in place. The storage version joins
// status.storedVersions: objects are about to be written in it.
func (r *Registry) prepareCRD(obj, old map[string]any) error {
	return r.admitCRD(obj, old, true)
}

// prepareCRDStatus is prepareCRD for an update of the status subresource:
// obj carries the status the client sets, whose storedVersions may drop
// versions whose objects were migrated, but not the storage version.
func (r *Registry) prepareCRDStatus(obj, old map[string]any) error {
	return r.admitCRD(obj, old, false)
}

// admitCRD implements prepareCRD and prepareCRDStatus; addStorage tells
// whether the storage version is added to status.storedVersions. On update
// obj already carries the status to keep.
func (r *Registry) admitCRD(obj, old map[string]any, addStorage bool) error {
	crd, err := toCRD(obj)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid CustomResourceDefinition: %v", err))
	}
	admission.DefaultCRD(crd)
	var errs field.ErrorList
	if old == nil {
		crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
		addStorageVersion(crd)
		errs = admission.ValidateCRD(crd)
	} else {
		oldCRD, err := toCRD(old)
		if err != nil {
			return apierrors.NewInternalError(fmt.Errorf("stored CustomResourceDefinition %s: %w", crd.Name, err))
		}
		crd.Status.Conditions = oldCRD.Status.Conditions
		if addStorage {
			addStorageVersion(crd)
		}
		errs = admission.ValidateCRDUpdate(crd, oldCRD)
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(crdResource().groupKind(), crd.Name, errs)
	}
	r.computeCRDStatus(crd)
	m, err := fromCRD(crd)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	clear(obj)
	for k, v := range m {
		obj[k] = v
	}
	return nil
}

// addStorageVersion appends the storage version to status.storedVersions
// unless it is there.
func addStorageVersion(crd *apiextensionsv1.CustomResourceDefinition) {
	for _, v := range crd.Spec.Versions {
		if v.Storage && !slices.Contains(crd.Status.StoredVersions, v.Name) {
			crd.Status.StoredVersions = append(crd.Status.StoredVersions, v.Name)
		}
	}
}

// computeCRDStatus sets accepted names and the NamesAccepted and
// Established conditions, checking for name clashes with other CRDs of the
// same group.
func (r *Registry) computeCRDStatus(crd *apiextensionsv1.CustomResourceDefinition) {
	names := crd.Spec.Names
	conflict := r.nameConflict(crd)
	accepted := conflict == ""
	if accepted {
		crd.Status.AcceptedNames = names
		setCondition(crd, r, apiextensionsv1.NamesAccepted, apiextensionsv1.ConditionTrue, "NoConflicts", "no conflicts found")
		setCondition(crd, r, apiextensionsv1.Established, apiextensionsv1.ConditionTrue, "InitialNamesAccepted", "the initial names have been accepted")
	} else {
		setCondition(crd, r, apiextensionsv1.NamesAccepted, apiextensionsv1.ConditionFalse, conflict, "name conflict with another CustomResourceDefinition in the group")
		if !isEstablished(crd) {
			setCondition(crd, r, apiextensionsv1.Established, apiextensionsv1.ConditionFalse, "NotAccepted", "not all names are accepted")
		}
	}
}

// nameConflict returns a reason ("PluralConflict", "KindConflict",
// "ShortNamesConflict") if crd's names clash with another CRD of its group.
func (r *Registry) nameConflict(crd *apiextensionsv1.CustomResourceDefinition) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := crd.Spec.Names
	for name, e := range r.crds {
		if name == crd.Name || e.crd == nil || e.crd.Spec.Group != crd.Spec.Group {
			continue
		}
		other := e.crd.Status.AcceptedNames
		switch {
		case n.Plural == other.Plural || n.Plural == other.Singular || n.Singular == other.Plural || n.Singular == other.Singular:
			return "PluralConflict"
		case n.Kind == other.Kind || n.ListKind == other.ListKind:
			return "KindConflict"
		}
		for _, s := range n.ShortNames {
			if slices.Contains(other.ShortNames, s) || s == other.Plural {
				return "ShortNamesConflict"
			}
		}
	}
	return ""
}

func isEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// setCondition sets one status condition, keeping lastTransitionTime when
// the status does not change.
func setCondition(crd *apiextensionsv1.CustomResourceDefinition, r *Registry, t apiextensionsv1.CustomResourceDefinitionConditionType, s apiextensionsv1.ConditionStatus, reason, message string) {
	c := apiextensionsv1.CustomResourceDefinitionCondition{
		Type: t, Status: s, Reason: reason, Message: message,
		LastTransitionTime: metav1.NewTime(r.now().UTC().Truncate(1e9)),
	}
	for i, old := range crd.Status.Conditions {
		if old.Type == t {
			if old.Status == s {
				c.LastTransitionTime = old.LastTransitionTime
			}
			crd.Status.Conditions[i] = c
			return
		}
	}
	crd.Status.Conditions = append(crd.Status.Conditions, c)
}

// crdResources returns the resources an established CRD serves, one per
// served version.
func crdResources(crd *apiextensionsv1.CustomResourceDefinition) []*Resource {
	if crd == nil || !isEstablished(crd) {
		return nil
	}
	names := crd.Status.AcceptedNames
	if names.Plural == "" {
		names = crd.Spec.Names
	}
	storageVersion := ""
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			storageVersion = v.Name
		}
	}
	var out []*Resource
	for i, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		res := &Resource{
			Group: crd.Spec.Group, Version: v.Name, Resource: names.Plural,
			SingularName: names.Singular, Kind: names.Kind, ListKind: names.ListKind,
			Namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
			ShortNames: names.ShortNames, Categories: names.Categories,
			Verbs:          standardVerbs,
			HasStatus:      v.Subresources != nil && v.Subresources.Status != nil,
			PrinterColumns: v.AdditionalPrinterColumns,
			StorageKey:     crd.Spec.Group + "/" + names.Plural,
			StorageVersion: storageVersion,
		}
		if v.Deprecated {
			res.DeprecationWarning = deprecationWarning(crd, v)
		}
		if v.Subresources != nil && v.Subresources.Scale != nil {
			sc := v.Subresources.Scale
			res.Scale = &ScalePaths{SpecReplicas: sc.SpecReplicasPath, StatusReplicas: sc.StatusReplicasPath}
			if sc.LabelSelectorPath != nil {
				res.Scale.LabelSelector = *sc.LabelSelectorPath
			}
		}
		for _, sf := range v.SelectableFields {
			res.SelectableFields = append(res.SelectableFields, strings.TrimPrefix(sf.JSONPath, "."))
		}
		if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
			path := field.NewPath("spec", "versions").Index(i).Child("schema", "openAPIV3Schema")
			s, errs := admission.NewSchema(v.Schema.OpenAPIV3Schema, path)
			if len(errs) > 0 {
				continue
			}
			res.Schema = s
			res.OpenAPISchema = v.Schema.OpenAPIV3Schema
		}
		out = append(out, res)
	}
	return out
}

// deprecationWarning is the warning for a deprecated version v of crd:
// its deprecationWarning or, without one, Kubernetes' default text, which
// names the newest served, not deprecated version newer than v.
func deprecationWarning(crd *apiextensionsv1.CustomResourceDefinition, v apiextensionsv1.CustomResourceDefinitionVersion) string {
	if v.DeprecationWarning != nil {
		return *v.DeprecationWarning
	}
	spec := &crd.Spec
	msg := fmt.Sprintf("%s/%s %s is deprecated", spec.Group, v.Name, spec.Names.Kind)
	newest := ""
	for _, o := range spec.Versions {
		if o.Served && !o.Deprecated && version.CompareKubeAwareVersionStrings(v.Name, o.Name) < 0 &&
			(newest == "" || version.CompareKubeAwareVersionStrings(o.Name, newest) > 0) {
			newest = o.Name
		}
	}
	if newest != "" {
		msg += fmt.Sprintf("; use %s/%s %s", spec.Group, newest, spec.Names.Kind)
	}
	return msg
}

// crdTerminating reports whether res belongs to a CRD being deleted.
func (r *Registry) crdTerminating(res *Resource) bool {
	if builtinFor(res) != nil {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.crds[res.Resource+"."+res.Group]
	return e.crd != nil && e.crd.DeletionTimestamp != nil
}

// markCRDTerminating adds the cleanup finalizer and the Terminating
// condition to a CRD being deleted.
func (r *Registry) markCRDTerminating(obj map[string]any) (map[string]any, error) {
	crd, err := toCRD(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if !slices.Contains(crd.Finalizers, crdCleanupFinalizer) {
		crd.Finalizers = append(crd.Finalizers, crdCleanupFinalizer)
	}
	setCondition(crd, r, apiextensionsv1.Terminating, apiextensionsv1.ConditionTrue, "InstanceDeletionPending",
		"CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon")
	m, err := fromCRD(crd)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return m, nil
}
