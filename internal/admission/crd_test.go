package admission

import (
	"encoding/json"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validCRD(t testing.TB) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	var props apiextensionsv1.JSONSchemaProps
	if err := json.Unmarshal([]byte(widgetSchema), &props); err != nil {
		t.Fatalf("unmarshal schema: %v", err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	crd.Name = "widgets.example.com"
	crd.ResourceVersion = "1"
	crd.Spec = apiextensionsv1.CustomResourceDefinitionSpec{
		Group: "example.com",
		Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Kind: "Widget", ShortNames: []string{"wd"}, Categories: []string{"all"}},
		Scope: apiextensionsv1.NamespaceScoped,
		Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
			Name: "v1", Served: true, Storage: true,
			Schema:       &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &props},
			Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
			AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
				{Name: "Image", Type: "string", JSONPath: ".spec.image"},
			},
		}},
	}
	DefaultCRD(crd)
	return crd
}

func TestDefaultCRD(t *testing.T) {
	crd := validCRD(t)
	n := crd.Spec.Names
	if n.Singular != "widget" || n.ListKind != "WidgetList" || crd.Spec.Conversion.Strategy != apiextensionsv1.NoneConverter {
		t.Fatalf("defaults: singular %q listKind %q conversion %v", n.Singular, n.ListKind, crd.Spec.Conversion)
	}
}

func TestValidateCRD(t *testing.T) {
	v0 := "spec.versions[0]"
	cases := []struct {
		name   string
		mutate func(c *apiextensionsv1.CustomResourceDefinition)
		field  string
		typ    field.ErrorType
	}{
		{"valid", func(*apiextensionsv1.CustomResourceDefinition) {}, "", ""},
		{"nameMismatch", func(c *apiextensionsv1.CustomResourceDefinition) { c.Name = "gadgets.example.com" }, "metadata.name", field.ErrorTypeInvalid},
		{"groupWithoutDot", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Group = "example"
			c.Name = "widgets.example"
		}, "spec.group", field.ErrorTypeInvalid},
		{"pluralUpper", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Names.Plural = "1widgets"
			c.Name = "1widgets.example.com"
		}, "spec.names.plural", field.ErrorTypeInvalid},
		{"singularBad", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Names.Singular = "wid_get" }, "spec.names.singular", field.ErrorTypeInvalid},
		{"kindMissing", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Names.Kind = "" }, "spec.names.kind", field.ErrorTypeRequired},
		{"listKindSameAsKind", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Names.ListKind = "Widget" }, "spec.names.listKind", field.ErrorTypeInvalid},
		{"shortNameBad", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Names.ShortNames = []string{"w d"} }, "spec.names.shortNames[0]", field.ErrorTypeInvalid},
		{"categoryBad", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Names.Categories = []string{"A!"} }, "spec.names.categories[0]", field.ErrorTypeInvalid},
		{"scope", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = "Global" }, "spec.scope", field.ErrorTypeNotSupported},
		{"noVersions", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions = nil }, "spec.versions", field.ErrorTypeRequired},
		{"versionName", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Name = "V1" }, v0 + ".name", field.ErrorTypeInvalid},
		{"duplicateVersion", func(c *apiextensionsv1.CustomResourceDefinition) {
			dup := c.Spec.Versions[0]
			dup.Storage = false
			c.Spec.Versions = append(c.Spec.Versions, dup)
		}, "spec.versions[1].name", field.ErrorTypeDuplicate},
		{"twoStorage", func(c *apiextensionsv1.CustomResourceDefinition) {
			v2 := c.Spec.Versions[0]
			v2.Name = "v2"
			c.Spec.Versions = append(c.Spec.Versions, v2)
		}, "spec.versions", field.ErrorTypeInvalid},
		{"noneServed", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Served = false }, "spec.versions", field.ErrorTypeInvalid},
		{"noSchema", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Schema = nil }, v0 + ".schema.openAPIV3Schema", field.ErrorTypeRequired},
		{"schemaNotStructural", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["bad"] = apiextensionsv1.JSONSchemaProps{}
		}, v0 + ".schema.openAPIV3Schema.properties[bad].type", field.ErrorTypeRequired},
		{"columnName", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].AdditionalPrinterColumns[0].Name = ""
		}, v0 + ".additionalPrinterColumns[0].name", field.ErrorTypeRequired},
		{"columnType", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].AdditionalPrinterColumns[0].Type = "float"
		}, v0 + ".additionalPrinterColumns[0].type", field.ErrorTypeInvalid},
		{"columnTypeMissing", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].AdditionalPrinterColumns[0].Type = ""
		}, v0 + ".additionalPrinterColumns[0].type", field.ErrorTypeRequired},
		{"columnFormat", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].AdditionalPrinterColumns[0].Format = "uuid"
		}, v0 + ".additionalPrinterColumns[0].format", field.ErrorTypeInvalid},
		{"columnJSONPathMissing", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].AdditionalPrinterColumns[0].JSONPath = ""
		}, v0 + ".additionalPrinterColumns[0].JSONPath", field.ErrorTypeRequired},
		{"columnJSONPathNoDot", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].AdditionalPrinterColumns[0].JSONPath = "spec["
		}, v0 + ".additionalPrinterColumns[0].JSONPath", field.ErrorTypeInvalid},
		{"columnJSONPathUnparsable", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].AdditionalPrinterColumns[0].JSONPath = ".spec[image"
		}, v0 + ".additionalPrinterColumns[0].JSONPath", field.ErrorTypeInvalid},
		{"scalePaths", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Subresources.Scale = &apiextensionsv1.CustomResourceSubresourceScale{SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".spec.replicas"}
		}, v0 + ".subresources.scale.statusReplicasPath", field.ErrorTypeInvalid},
		{"conversionWebhook", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion.Strategy = apiextensionsv1.WebhookConverter
		}, "spec.conversion.strategy", field.ErrorTypeNotSupported},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			crd := validCRD(t)
			tc.mutate(crd)
			checkOne(t, ValidateCRD(crd), tc.field, tc.typ)
		})
	}
}

func TestValidateCRDUpdate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(c *apiextensionsv1.CustomResourceDefinition)
		field  string
		typ    field.ErrorType
	}{
		{"addVersion", func(c *apiextensionsv1.CustomResourceDefinition) {
			v2 := c.Spec.Versions[0]
			v2.Name, v2.Storage = "v2", false
			c.Spec.Versions = append(c.Spec.Versions, v2)
		}, "", ""},
		{"scope", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = apiextensionsv1.ClusterScoped }, "spec.scope", field.ErrorTypeInvalid},
		{"dropStoredVersion", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Name = "v2"
			c.Status.StoredVersions = []string{"v1", "v2"}
		}, "status.storedVersions[0]", field.ErrorTypeInvalid},
		{"storageVersionNotStored", func(c *apiextensionsv1.CustomResourceDefinition) {
			v2 := c.Spec.Versions[0]
			v2.Name = "v2"
			c.Spec.Versions[0].Storage = false
			c.Spec.Versions = append(c.Spec.Versions, v2)
		}, "status.storedVersions", field.ErrorTypeInvalid},
		{"noStoredVersions", func(c *apiextensionsv1.CustomResourceDefinition) { c.Status.StoredVersions = nil }, "status.storedVersions", field.ErrorTypeInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := validCRD(t)
			old.Status.StoredVersions = []string{"v1"}
			crd := old.DeepCopy()
			tc.mutate(crd)
			checkOne(t, ValidateCRDUpdate(crd, old), tc.field, tc.typ)
		})
	}
}

func TestValidateCRDUpdateGroupImmutable(t *testing.T) {
	old := validCRD(t)
	crd := old.DeepCopy()
	crd.Spec.Group, crd.Name = "example.org", "widgets.example.org"
	errs := ValidateCRDUpdate(crd, old)
	found := false
	for _, e := range errs {
		found = found || (e.Field == "spec.group" && e.Type == field.ErrorTypeInvalid)
	}
	if !found {
		t.Fatalf("errors %v, want spec.group immutable", errs)
	}
}

// FuzzValidateCRD validates random CRD documents: nothing panics.
func FuzzValidateCRD(f *testing.F) {
	seed, err := json.Marshal(validCRD(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add(`{"metadata":{"name":"a.b.c"},"spec":{"group":"b.c","names":{"plural":"a","kind":"A"},"versions":[{"name":"v1","additionalPrinterColumns":[{"name":"x","type":"date","jsonPath":".{"}]}]}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := json.Unmarshal([]byte(doc), &crd); err != nil {
			return
		}
		DefaultCRD(&crd)
		old := crd.DeepCopy()
		ValidateCRD(&crd)
		ValidateCRDUpdate(&crd, old)
	})
}
