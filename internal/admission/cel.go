package admission

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"

	celgo "github.com/google/cel-go/cel"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	schemacel "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/common"
	"k8s.io/apiserver/pkg/cel/environment"
)

// CEL rules (x-kubernetes-validations) are compiled and evaluated by
// Kubernetes' own CRD validator (apiextensions-apiserver's schema/cel on
// google/cel-go), so type checking against the schema, the libraries
// (strings, lists, regex, url, quantity, ...), cost estimation and runtime
// cost limits, error messages and ratcheting are Kubernetes'. What this file
// adds is the walk that checks the rules when a CRD is written, worded and
// placed as Kubernetes does.

const (
	// ruleCostLimit is the largest estimated cost of one rule (or message
	// expression) times the number of times it can run, as Kubernetes'
	// StaticEstimatedCostLimit.
	ruleCostLimit = 10_000_000
	// crdCostLimit bounds the estimated cost of all the rules of one
	// schema, as Kubernetes' StaticEstimatedCRDCostLimit.
	crdCostLimit = 100_000_000
)

// ruleReasons are the reasons a rule may give, sorted as Kubernetes lists
// them.
var ruleReasons = []string{
	string(apiextensionsv1.FieldValueDuplicate),
	string(apiextensionsv1.FieldValueForbidden),
	string(apiextensionsv1.FieldValueInvalid),
	string(apiextensionsv1.FieldValueRequired),
}

var newlines = regexp.MustCompile(`[\n\r]+`)

// celRules is what evaluating the x-kubernetes-validations of one schema
// needs: the structural schema and the compiled programs of every node.
type celRules struct {
	structural *structuralschema.Structural
	validator  func() *schemacel.Validator
}

// hasRules reports whether p or a schema under it has
// x-kubernetes-validations (junctors may not have any).
func hasRules(p *apiextensionsv1.JSONSchemaProps) bool {
	if p == nil {
		return false
	}
	if len(p.XValidations) > 0 {
		return true
	}
	for _, sub := range p.Properties {
		if hasRules(&sub) {
			return true
		}
	}
	if p.AdditionalProperties != nil && hasRules(p.AdditionalProperties.Schema) {
		return true
	}
	return p.Items != nil && hasRules(p.Items.Schema)
}

// newRules prepares the rules of a structural schema props for
// evaluation; perCallLimit bounds the runtime cost of one evaluation of
// one rule. It returns nil when the schema has no rules. The rules compile
// on first use, in Kubernetes' environment for stored expressions and
// without checks: a rule that does not compile fails each write with
// Kubernetes' "rule compile error" (checkRules keeps such rules out of new
// CRDs).
func newRules(props *apiextensionsv1.JSONSchemaProps, perCallLimit uint64) (*celRules, error) {
	if !hasRules(props) {
		return nil, nil
	}
	s, err := toStructural(props)
	if err != nil {
		return nil, err
	}
	return &celRules{structural: s, validator: sync.OnceValue(func() *schemacel.Validator {
		return schemacel.NewValidator(s, true, perCallLimit)
	})}, nil
}

func toStructural(props *apiextensionsv1.JSONSchemaProps) (*structuralschema.Structural, error) {
	internal := &apiextensionsinternal.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(props, internal, nil); err != nil {
		return nil, err
	}
	return structuralschema.NewStructural(internal)
}

// ruleOptions say what a CRD update keeps from the old CRD.
type ruleOptions struct {
	// stored holds the rules and message expressions of the old CRD.
	// They compile in Kubernetes' environment for stored expressions
	// (which may know more libraries than the one for new expressions),
	// so that an update can keep what an older server accepted.
	stored *storedExpressions
	// unchanged names the versions whose schema is the old CRD's: the
	// estimated cost of their rules is not checked one by one (the total
	// still is).
	unchanged map[string]bool
}

// storedExpressions is a schemacel.EnvLoader: known expressions get the
// stored-expressions environment, others the new-expressions one.
type storedExpressions struct {
	rules, messages map[string]bool
}

func (e *storedExpressions) RuleEnv(set *environment.EnvSet, expr string) *celgo.Env {
	if e != nil && e.rules[expr] {
		return set.StoredExpressionsEnv()
	}
	return set.NewExpressionsEnv()
}

func (e *storedExpressions) MessageExpressionEnv(set *environment.EnvSet, expr string) *celgo.Env {
	if e != nil && e.messages[expr] {
		return set.StoredExpressionsEnv()
	}
	return set.NewExpressionsEnv()
}

// add records the expressions of p and the schemas under it.
func (e *storedExpressions) add(p *apiextensionsv1.JSONSchemaProps) {
	if p == nil {
		return
	}
	for _, r := range p.XValidations {
		e.rules[r.Rule] = true
		if r.MessageExpression != "" {
			e.messages[r.MessageExpression] = true
		}
	}
	for _, sub := range p.Properties {
		e.add(&sub)
	}
	if p.AdditionalProperties != nil {
		e.add(p.AdditionalProperties.Schema)
	}
	if p.Items != nil {
		e.add(p.Items.Schema)
	}
}

// checkRules checks the rules of a structural schema props (already
// checked by the compiler) whose path is path, as Kubernetes does when a
// CRD is written: the fields of each rule, its compilation, whether it may
// use oldSelf where it is, and its estimated cost, alone (unless
// skipRuleCost) and summed over the schema.
func checkRules(props *apiextensionsv1.JSONSchemaProps, path *field.Path, stored *storedExpressions, skipRuleCost bool) field.ErrorList {
	if !hasRules(props) {
		return nil
	}
	s, err := toStructural(props)
	if err != nil {
		return field.ErrorList{field.Invalid(path, "", err.Error())}
	}
	rc := ruleChecker{total: &ruleCosts{}, env: stored, skipRuleCost: skipRuleCost}
	one := uint64(1)
	rc.check(s, model.SchemaDeclType(s, true), path, &one, nil)
	if rc.total.sum > crdCostLimit {
		for _, e := range rc.total.top {
			rc.errs = append(rc.errs, field.Forbidden(e.path, "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"))
		}
		rc.errs = append(rc.errs, field.Forbidden(path, costMessage("x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema", rc.total.sum, crdCostLimit)))
	}
	return rc.errs
}

// ruleChecker walks a structural schema and collects the errors of its
// rules.
type ruleChecker struct {
	errs         field.ErrorList
	total        *ruleCosts
	env          *storedExpressions
	skipRuleCost bool
}

// check checks the rules of s and below. declType is s as CEL sees it (nil
// when CEL does not see s: rules there are not evaluated, as in
// Kubernetes); cardinality is how many times s can occur in an object (nil:
// unbounded); uncorrelatable is the path of the nearest ancestor below which
// old values cannot be matched with new ones (nil: none).
func (rc *ruleChecker) check(s *structuralschema.Structural, declType *apiservercel.DeclType, path *field.Path, cardinality *uint64, uncorrelatable *field.Path) {
	if len(s.XValidations) > 0 {
		rc.checkNode(s, declType, path, cardinality, uncorrelatable)
	}
	var elem *apiservercel.DeclType
	if declType != nil {
		elem = declType.ElemType
	}
	if len(s.Properties) > 0 {
		sub := uncorrelatable
		if sub == nil && !schemacel.MapIsCorrelatable(s.XMapType) {
			sub = path
		}
		for _, name := range sortedKeys(s.Properties) {
			p := s.Properties[name]
			var ft *apiservercel.DeclType
			if escaped, ok := apiservercel.Escape(name); !ok {
				ft = model.SchemaDeclType(&p, p.XEmbeddedResource)
			} else if declType != nil {
				if f, ok := declType.Fields[escaped]; ok {
					ft = f.Type
				}
			}
			rc.check(&p, ft, path.Child("properties").Key(name), childCardinality(s, cardinality), sub)
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Structural != nil {
		rc.check(s.AdditionalProperties.Structural, elem, path.Child("additionalProperties"), childCardinality(s, cardinality), uncorrelatable)
	}
	if s.Items != nil {
		sub := uncorrelatable
		if sub == nil && (s.XListType == nil || *s.XListType != "map") {
			sub = path
		}
		rc.check(s.Items, elem, path.Child("items"), childCardinality(s, cardinality), sub)
	}
}

// checkNode checks the x-kubernetes-validations of one node: the fields of
// each rule, then its compilation and estimated cost.
func (rc *ruleChecker) checkNode(s *structuralschema.Structural, declType *apiservercel.DeclType, path *field.Path, cardinality *uint64, uncorrelatable *field.Path) {
	vpath := path.Child("x-kubernetes-validations")
	n := len(rc.errs)
	for i, r := range s.XValidations {
		rp := vpath.Index(i)
		rule, msg, msgExpr := strings.TrimSpace(r.Rule), strings.TrimSpace(r.Message), strings.TrimSpace(r.MessageExpression)
		switch {
		case rule == "":
			rc.add(field.Required(rp.Child("rule"), "rule is not specified"))
		case r.Message != "" && msg == "":
			rc.add(field.Invalid(rp.Child("message"), r.Message, "must be non-empty if specified"))
		case newlines.MatchString(msg):
			rc.add(field.Invalid(rp.Child("message"), r.Message, "must not contain line breaks"))
		case newlines.MatchString(rule) && msg == "":
			rc.add(field.Required(rp.Child("message"), "message must be specified if rule contains line breaks"))
		}
		if r.MessageExpression != "" && msgExpr == "" {
			rc.add(field.Required(rp.Child("messageExpression"), "messageExpression must be non-empty if specified"))
		}
		if r.Reason != nil && !slices.Contains(ruleReasons, string(*r.Reason)) {
			rc.add(field.NotSupported(rp.Child("reason"), *r.Reason, ruleReasons))
		}
		if r.FieldPath != "" {
			switch {
			case strings.TrimSpace(r.FieldPath) == "":
				rc.add(field.Invalid(rp.Child("fieldPath"), r.FieldPath, "must be non-empty if specified"))
			case newlines.MatchString(r.FieldPath):
				rc.add(field.Invalid(rp.Child("fieldPath"), r.FieldPath, "must not contain line breaks"))
			default:
				if _, _, err := schemacel.ValidFieldPath(r.FieldPath, s); err != nil {
					rc.add(field.Invalid(rp.Child("fieldPath"), r.FieldPath, "must be a valid path"))
				}
			}
		}
	}
	if len(rc.errs) > n || declType == nil {
		// Rules with broken fields, or on a node CEL does not see, are
		// not compiled: their errors would not help.
		return
	}
	results, err := schemacel.Compile(s, declType, celconfig.PerCallLimit, baseEnvSet(), rc.env)
	if err != nil {
		rc.add(field.InternalError(vpath, err))
		return
	}
	for i, cr := range results {
		rp := vpath.Index(i)
		r := s.XValidations[i]
		// Kubernetes reports a rule that does not compile with its
		// internal form as the value.
		var value apiextensionsinternal.ValidationRule
		_ = apiextensionsv1.Convert_v1_ValidationRule_To_apiextensions_ValidationRule(&r, &value, nil)
		cost := ruleCost(cr.MaxCost, cardinality, cr.MaxCardinality)
		if !rc.skipRuleCost && cost > ruleCostLimit {
			rc.add(field.Forbidden(rp.Child("rule"), costMessage("estimated rule cost", cost, ruleCostLimit)))
		}
		rc.total.observe(rp.Child("rule"), cost)
		if cr.Error != nil {
			if cr.Error.Type == apiservercel.ErrorTypeRequired {
				rc.add(field.Required(rp.Child("rule"), cr.Error.Detail))
			} else {
				rc.add(field.Invalid(rp.Child("rule"), value, cr.Error.Detail))
			}
		}
		switch {
		case cr.MessageExpressionError != nil:
			rc.add(field.Invalid(rp.Child("messageExpression"), value, cr.MessageExpressionError.Detail))
		case cr.MessageExpression != nil:
			if !rc.skipRuleCost && cr.MessageExpressionMaxCost > ruleCostLimit {
				rc.add(field.Forbidden(rp.Child("messageExpression"), costMessage("estimated messageExpression cost", cr.MessageExpressionMaxCost, ruleCostLimit)))
			}
			rc.total.observe(rp.Child("messageExpression"), cr.MessageExpressionMaxCost)
		}
		switch {
		case cr.UsesOldSelf && uncorrelatable != nil:
			rc.add(field.Invalid(rp.Child("rule"), r.Rule, fmt.Sprintf("oldSelf cannot be used on the uncorrelatable portion of the schema within %v", uncorrelatable)))
		case !cr.UsesOldSelf && r.OptionalOldSelf != nil:
			rc.add(field.Invalid(rp.Child("optionalOldSelf"), *r.OptionalOldSelf, "may not be set if oldSelf is not used in rule"))
		}
	}
}

func (rc *ruleChecker) add(err *field.Error) { rc.errs = append(rc.errs, err) }

// baseEnvSet is Kubernetes' CEL environment for this build's Kubernetes
// version (cached by the library).
func baseEnvSet() *environment.EnvSet {
	return environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion())
}

// childCardinality is how many times a child of s can occur when s occurs
// at most cardinality times: maxItems or maxProperties bound lists and maps,
// an object's properties occur once per object.
func childCardinality(s *structuralschema.Structural, cardinality *uint64) *uint64 {
	if cardinality == nil {
		return nil
	}
	var limit *int64
	switch {
	case s.Type == "array":
		if s.ValueValidation == nil || s.ValueValidation.MaxItems == nil {
			return nil
		}
		limit = s.ValueValidation.MaxItems
	case s.Type == "object" && s.AdditionalProperties != nil:
		if s.ValueValidation == nil || s.ValueValidation.MaxProperties == nil {
			return nil
		}
		limit = s.ValueValidation.MaxProperties
	default:
		return cardinality
	}
	c := mulCapped(*cardinality, uint64(max(*limit, 0)))
	return &c
}

// ruleCost is a rule's estimated cost times the number of times it can
// run: cardinality when the schema bounds it, else the compiler's own bound
// from the sizes of the values.
func ruleCost(cost uint64, cardinality *uint64, compiled uint64) uint64 {
	if cardinality != nil {
		return mulCapped(cost, *cardinality)
	}
	return mulCapped(cost, compiled)
}

func mulCapped(a, b uint64) uint64 {
	if a == 0 || b == 0 {
		return 0
	}
	if math.MaxUint64/a < b {
		return math.MaxUint64
	}
	return a * b
}

// costMessage words an estimated cost over its limit as Kubernetes does.
func costMessage(what string, cost, limit uint64) string {
	f := float64(cost) / float64(limit)
	var factor string
	switch {
	case f > 100:
		factor = "more than 100x"
	case f < 1.5:
		factor = fmt.Sprintf("%fx", f)
	default:
		factor = fmt.Sprintf("%.1fx", f)
	}
	return fmt.Sprintf("%s exceeds budget by factor of %s (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)", what, factor)
}

// ruleCosts sums the estimated costs of a schema's rules and keeps the
// (at most four) most expensive ones that count for at least 1% of the
// limit, to name them when the sum is over it.
type ruleCosts struct {
	sum uint64
	top []ruleCostEntry
}

type ruleCostEntry struct {
	path *field.Path
	cost uint64
}

func (c *ruleCosts) observe(path *field.Path, cost uint64) {
	if math.MaxUint64-c.sum < cost {
		c.sum = math.MaxUint64
	} else {
		c.sum += cost
	}
	if cost < crdCostLimit/100 {
		return
	}
	c.top = append(c.top, ruleCostEntry{path, cost})
	slices.SortStableFunc(c.top, func(a, b ruleCostEntry) int {
		switch {
		case a.cost > b.cost:
			return -1
		case a.cost < b.cost:
			return 1
		}
		return 0
	})
	if len(c.top) > 4 {
		c.top = c.top[:4]
	}
}

// validate evaluates the rules on obj, with old the stored object on
// update (nil on create). Rules that use oldSelf run only when the old
// value exists, unless they set optionalOldSelf; on update, a rule that
// fails on a value that did not change is not reported (ratcheting). The
// runtime cost of one rule and of all of them is bounded as in Kubernetes.
func (r *celRules) validate(ctx context.Context, obj, old map[string]any) field.ErrorList {
	if r == nil {
		return nil
	}
	v := r.validator()
	if v == nil {
		return nil
	}
	var oldObj any
	var opts []schemacel.Option
	if old != nil {
		oldObj = old
		opts = append(opts, schemacel.WithRatcheting(common.NewCorrelatedObject(obj, old, &model.Structural{Structural: r.structural})))
	}
	errs, _ := v.Validate(ctx, nil, r.structural, obj, oldObj, celconfig.RuntimeCELCostBudget, opts...)
	return errs
}
