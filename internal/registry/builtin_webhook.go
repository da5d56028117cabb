package registry

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// admissionRegistrationGroup is the API group of the webhook configurations.
const admissionRegistrationGroup = "admissionregistration.k8s.io"

// Storage keys of the two webhook configuration resources.
const (
	validatingWebhooksKey = admissionRegistrationGroup + "/validatingwebhookconfigurations"
	mutatingWebhooksKey   = admissionRegistrationGroup + "/mutatingwebhookconfigurations"
)

// validatingWebhookBuiltin serves admissionregistration.k8s.io/v1
// ValidatingWebhookConfigurations.
var validatingWebhookBuiltin = typed[admissionregistrationv1.ValidatingWebhookConfiguration](&builtin{
	Resource: Resource{
		Group: admissionRegistrationGroup, Version: "v1", Resource: "validatingwebhookconfigurations",
		SingularName: "validatingwebhookconfiguration", Kind: "ValidatingWebhookConfiguration",
		ListKind: "ValidatingWebhookConfigurationList", Categories: []string{"api-extensions"},
		Verbs: standardVerbs, StorageKey: validatingWebhooksKey,
	},
	prepare:       func(_ *Registry, obj map[string]any) error { defaultWebhooks(obj, false); return nil },
	prepareUpdate: func(obj, _ map[string]any) error { defaultWebhooks(obj, false); return nil },
	validate: func(obj, _ map[string]any) field.ErrorList {
		var c admissionregistrationv1.ValidatingWebhookConfiguration
		if err := remarshal(obj, &c); err != nil {
			return field.ErrorList{field.Invalid(field.NewPath("webhooks"), "", err.Error())}
		}
		hooks := make([]webhookFields, len(c.Webhooks))
		for i, w := range c.Webhooks {
			hooks[i] = webhookFields{w.Name, w.ClientConfig, w.Rules, w.FailurePolicy, w.MatchPolicy, w.NamespaceSelector,
				w.ObjectSelector, w.SideEffects, w.TimeoutSeconds, w.AdmissionReviewVersions, len(w.MatchConditions), nil}
		}
		return validateWebhooks(hooks)
	},
})

// mutatingWebhookBuiltin serves admissionregistration.k8s.io/v1
// MutatingWebhookConfigurations.
var mutatingWebhookBuiltin = typed[admissionregistrationv1.MutatingWebhookConfiguration](&builtin{
	Resource: Resource{
		Group: admissionRegistrationGroup, Version: "v1", Resource: "mutatingwebhookconfigurations",
		SingularName: "mutatingwebhookconfiguration", Kind: "MutatingWebhookConfiguration",
		ListKind: "MutatingWebhookConfigurationList", Categories: []string{"api-extensions"},
		Verbs: standardVerbs, StorageKey: mutatingWebhooksKey,
	},
	prepare:       func(_ *Registry, obj map[string]any) error { defaultWebhooks(obj, true); return nil },
	prepareUpdate: func(obj, _ map[string]any) error { defaultWebhooks(obj, true); return nil },
	validate: func(obj, _ map[string]any) field.ErrorList {
		var c admissionregistrationv1.MutatingWebhookConfiguration
		if err := remarshal(obj, &c); err != nil {
			return field.ErrorList{field.Invalid(field.NewPath("webhooks"), "", err.Error())}
		}
		hooks := make([]webhookFields, len(c.Webhooks))
		for i, w := range c.Webhooks {
			hooks[i] = webhookFields{w.Name, w.ClientConfig, w.Rules, w.FailurePolicy, w.MatchPolicy, w.NamespaceSelector,
				w.ObjectSelector, w.SideEffects, w.TimeoutSeconds, w.AdmissionReviewVersions, len(w.MatchConditions), w.ReinvocationPolicy}
		}
		return validateWebhooks(hooks)
	},
})

// remarshal decodes obj into the Go value v through JSON.
func remarshal(obj map[string]any, v any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// defaultWebhooks sets Kubernetes' defaults on each entry of webhooks:
// failurePolicy Fail, matchPolicy Equivalent, empty namespace and object
// selectors (everything), timeoutSeconds 10, rule scope "*", service port
// 443 and, for mutating webhooks, reinvocationPolicy Never. sideEffects
// and admissionReviewVersions have no default in v1: they are required.
func defaultWebhooks(obj map[string]any, mutating bool) {
	hooks, _ := obj["webhooks"].([]any)
	for _, h := range hooks {
		w, ok := h.(map[string]any)
		if !ok {
			continue
		}
		setDefault(w, "failurePolicy", string(admissionregistrationv1.Fail))
		setDefault(w, "matchPolicy", string(admissionregistrationv1.Equivalent))
		setDefault(w, "namespaceSelector", map[string]any{})
		setDefault(w, "objectSelector", map[string]any{})
		setDefault(w, "timeoutSeconds", int64(10))
		if mutating {
			setDefault(w, "reinvocationPolicy", string(admissionregistrationv1.NeverReinvocationPolicy))
		}
		rules, _ := w["rules"].([]any)
		for _, r := range rules {
			if rm, ok := r.(map[string]any); ok {
				setDefault(rm, "scope", string(admissionregistrationv1.AllScopes))
			}
		}
		cc, _ := w["clientConfig"].(map[string]any)
		if svc, ok := cc["service"].(map[string]any); ok {
			setDefault(svc, "port", int64(443))
		}
	}
}

// setDefault sets m[key] to v when it is absent or null.
func setDefault(m map[string]any, key string, v any) {
	if m[key] == nil {
		m[key] = v
	}
}

// webhookFields are the fields validating and mutating webhooks share,
// plus the mutating webhooks' reinvocationPolicy.
type webhookFields struct {
	name                    string
	clientConfig            admissionregistrationv1.WebhookClientConfig
	rules                   []admissionregistrationv1.RuleWithOperations
	failurePolicy           *admissionregistrationv1.FailurePolicyType
	matchPolicy             *admissionregistrationv1.MatchPolicyType
	namespaceSelector       *metav1.LabelSelector
	objectSelector          *metav1.LabelSelector
	sideEffects             *admissionregistrationv1.SideEffectClass
	timeoutSeconds          *int32
	admissionReviewVersions []string
	matchConditions         int
	reinvocationPolicy      *admissionregistrationv1.ReinvocationPolicyType
}

// validateWebhooks checks the webhooks of a configuration as Kubernetes
// does, with two differences where Setpoint serves less: clientConfig must
// be a url (there are no Services to route to), admissionReviewVersions
// must include v1 (the only version sent), and matchConditions are not
// supported.
func validateWebhooks(hooks []webhookFields) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, h := range hooks {
		p := field.NewPath("webhooks").Index(i)
		errs = append(errs, validation.IsFullyQualifiedName(p.Child("name"), h.name)...)
		if h.name != "" {
			if names.Has(h.name) {
				errs = append(errs, field.Duplicate(p.Child("name"), h.name))
			}
			names.Insert(h.name)
		}
		for j, r := range h.rules {
			errs = append(errs, validateRule(p.Child("rules").Index(j), r)...)
		}
		errs = append(errs, oneOf(p.Child("failurePolicy"), h.failurePolicy, admissionregistrationv1.Fail, admissionregistrationv1.Ignore)...)
		errs = append(errs, oneOf(p.Child("matchPolicy"), h.matchPolicy, admissionregistrationv1.Exact, admissionregistrationv1.Equivalent)...)
		errs = append(errs, oneOf(p.Child("reinvocationPolicy"), h.reinvocationPolicy, admissionregistrationv1.NeverReinvocationPolicy, admissionregistrationv1.IfNeededReinvocationPolicy)...)
		if h.sideEffects == nil {
			errs = append(errs, field.Required(p.Child("sideEffects"), "must specify one of None, NoneOnDryRun"))
		} else {
			errs = append(errs, oneOf(p.Child("sideEffects"), h.sideEffects, admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.SideEffectClassNoneOnDryRun)...)
		}
		if t := h.timeoutSeconds; t != nil && (*t < 1 || *t > 30) {
			errs = append(errs, field.Invalid(p.Child("timeoutSeconds"), *t, "the timeout value must be between 1 and 30 seconds"))
		}
		for name, s := range map[string]*metav1.LabelSelector{"namespaceSelector": h.namespaceSelector, "objectSelector": h.objectSelector} {
			if s != nil {
				errs = append(errs, metav1validation.ValidateLabelSelector(s, metav1validation.LabelSelectorValidationOptions{}, p.Child(name))...)
			}
		}
		errs = append(errs, validateReviewVersions(p.Child("admissionReviewVersions"), h.admissionReviewVersions)...)
		errs = append(errs, validateClientConfig(p.Child("clientConfig"), h.clientConfig)...)
		if h.matchConditions > 0 {
			errs = append(errs, field.Forbidden(p.Child("matchConditions"), "matchConditions are not supported by this server"))
		}
	}
	return errs
}

// oneOf checks that an optional enumerated value, when set, is one of
// allowed.
func oneOf[T ~string](p *field.Path, v *T, allowed ...T) field.ErrorList {
	if v == nil {
		return nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		if *v == a {
			return nil
		}
		names[i] = string(a)
	}
	return field.ErrorList{field.NotSupported(p, *v, names)}
}

// validateRule checks the operations, groups, versions, resources and scope
// of one rule.
func validateRule(p *field.Path, r admissionregistrationv1.RuleWithOperations) field.ErrorList {
	var errs field.ErrorList
	ops := make([]string, len(r.Operations))
	for i, op := range r.Operations {
		ops[i] = string(op)
		switch op {
		case admissionregistrationv1.OperationAll, admissionregistrationv1.Create, admissionregistrationv1.Update,
			admissionregistrationv1.Delete, admissionregistrationv1.Connect:
		default:
			errs = append(errs, field.NotSupported(p.Child("operations").Index(i), op, []string{"*", "CONNECT", "CREATE", "DELETE", "UPDATE"}))
		}
	}
	errs = append(errs, validateList(p.Child("operations"), ops, "operations", false)...)
	errs = append(errs, validateList(p.Child("apiGroups"), r.APIGroups, "API groups", true)...)
	errs = append(errs, validateList(p.Child("apiVersions"), r.APIVersions, "API versions", false)...)
	errs = append(errs, validateResources(p.Child("resources"), r.Resources)...)
	errs = append(errs, oneOf(p.Child("scope"), r.Scope, admissionregistrationv1.AllScopes, admissionregistrationv1.ClusterScope, admissionregistrationv1.NamespacedScope)...)
	return errs
}

// validateList requires a non-empty list in which "*" stands alone and,
// unless emptyOK (the core group is ""), no entry is empty.
func validateList(p *field.Path, items []string, what string, emptyOK bool) field.ErrorList {
	var errs field.ErrorList
	if len(items) == 0 {
		return field.ErrorList{field.Required(p, "")}
	}
	for i, s := range items {
		if s == "" && !emptyOK {
			errs = append(errs, field.Required(p.Index(i), ""))
		}
		if s == "*" && len(items) > 1 {
			errs = append(errs, field.Invalid(p, items, fmt.Sprintf("if '*' is present, must not specify other %s", what)))
			break
		}
	}
	return errs
}

// validateResources checks rule resources ("name", "name/sub", "*",
// "*/*", "name/*", "*/sub") for combinations that overlap.
func validateResources(p *field.Path, resources []string) field.ErrorList {
	if len(resources) == 0 {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	anySub, anyRes := sets.New[string](), sets.New[string]()
	single, plain, double := false, false, false
	for i, rs := range resources {
		if rs == "" {
			errs = append(errs, field.Required(p.Index(i), ""))
			continue
		}
		res, sub, hasSub := strings.Cut(rs, "/")
		switch {
		case rs == "*":
			single = true
		case rs == "*/*":
			double = true
		case !hasSub:
			plain = true
		}
		if !hasSub {
			continue
		}
		if anySub.Has(res) {
			errs = append(errs, field.Invalid(p.Index(i), rs, fmt.Sprintf("if '%s/*' is present, must not specify %s", res, rs)))
		}
		if anyRes.Has(sub) {
			errs = append(errs, field.Invalid(p.Index(i), rs, fmt.Sprintf("if '*/%s' is present, must not specify %s", sub, rs)))
		}
		if sub == "*" {
			anySub.Insert(res)
		}
		if res == "*" {
			anyRes.Insert(sub)
		}
	}
	if double && len(resources) > 1 {
		errs = append(errs, field.Invalid(p, resources, "if '*/*' is present, must not specify other resources"))
	}
	if single && plain {
		errs = append(errs, field.Invalid(p, resources, "if '*' is present, must not specify other resources without subresources"))
	}
	return errs
}

// validateReviewVersions requires a list of distinct DNS labels that
// includes v1.
func validateReviewVersions(p *field.Path, versions []string) field.ErrorList {
	if len(versions) == 0 {
		return field.ErrorList{field.Required(p, "must specify one of v1")}
	}
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, v := range versions {
		if seen.Has(v) {
			errs = append(errs, field.Invalid(p.Index(i), v, "duplicate version"))
			continue
		}
		seen.Insert(v)
		for _, msg := range validation.IsDNS1035Label(v) {
			errs = append(errs, field.Invalid(p.Index(i), v, msg))
		}
	}
	if !seen.Has("v1") {
		errs = append(errs, field.Invalid(p, versions, "must include v1, the only AdmissionReview version this server sends"))
	}
	return errs
}

// validateClientConfig requires an https url without user information,
// query or fragment. Service references cannot be served (there are no
// Services to route to) and are refused.
func validateClientConfig(p *field.Path, cc admissionregistrationv1.WebhookClientConfig) field.ErrorList {
	const form = "; desired format: https://host[/path]"
	switch {
	case cc.Service != nil:
		return field.ErrorList{field.Forbidden(p.Child("service"), "service references are not supported by this server (it runs no Services): set url instead")}
	case cc.URL == nil:
		return field.ErrorList{field.Required(p, "exactly one of url or service is required")}
	}
	p = p.Child("url")
	u, err := url.Parse(*cc.URL)
	if err != nil {
		return field.ErrorList{field.Required(p, "url must be a valid URL: "+err.Error()+form)}
	}
	var errs field.ErrorList
	if u.Scheme != "https" {
		errs = append(errs, field.Invalid(p, u.Scheme, "'https' is the only allowed URL scheme"+form))
	}
	if u.Host == "" {
		errs = append(errs, field.Invalid(p, u.Host, "host must be specified"+form))
	}
	if u.User != nil {
		errs = append(errs, field.Invalid(p, "<redacted>", "user information is not permitted in the URL"))
	}
	if u.Fragment != "" {
		errs = append(errs, field.Invalid(p, u.Fragment, "fragments are not permitted in the URL"))
	}
	if u.RawQuery != "" {
		errs = append(errs, field.Invalid(p, u.RawQuery, "query parameters are not permitted in the URL"))
	}
	return errs
}
