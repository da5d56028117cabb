package audit

import (
	"fmt"
	"os"
	"strings"

	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	k8saudit "k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/audit/policy"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// Policy decides at which level each request is audited. It reads the
// audit.k8s.io/v1 Policy format of kube-apiserver's --audit-policy-file and
// evaluates it with Kubernetes' own rule checker: the first rule that
// matches the request gives its level, and a request no rule matches is
// not audited.
//
// Whatever the rules say, requests on resources whose bodies hold
// credentials (see sensitive) are never audited above Metadata.
type Policy struct {
	eval k8saudit.PolicyRuleEvaluator
}

// decision is what a Policy says of one request.
type decision struct {
	level             auditinternal.Level
	omitStages        []auditinternal.Stage
	omitManagedFields bool
}

// omits reports whether stage is left out of the log.
func (d decision) omits(stage auditinternal.Stage) bool {
	for _, s := range d.omitStages {
		if s == stage {
			return true
		}
	}
	return false
}

// ParsePolicy reads an audit.k8s.io/v1 Policy (YAML or JSON). Unknown
// fields are tolerated with a warning, as kube-apiserver does; an unknown
// level or stage, a rule without level, or a policy without rules is an
// error.
func ParsePolicy(data []byte) (*Policy, error) {
	p, err := policy.LoadPolicyFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("audit: read policy: %w", err)
	}
	return &Policy{eval: policy.NewPolicyRuleEvaluator(p)}, nil
}

// LoadPolicy reads the policy file at path (see ParsePolicy); an empty
// path gives DefaultPolicy.
func LoadPolicy(path string) (*Policy, error) {
	if path == "" {
		return DefaultPolicy(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read policy: %w", err)
	}
	p, err := ParsePolicy(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return p, nil
}

// healthPaths are the probes of load balancers and supervisors, which the
// default policy leaves out of the log.
var healthPaths = []string{"/healthz", "/healthz/*", "/livez", "/livez/*", "/readyz", "/readyz/*"}

// DefaultPolicy audits every request at Metadata level, except the health
// and readiness probes, which it does not audit.
func DefaultPolicy() *Policy {
	return &Policy{eval: policy.NewPolicyRuleEvaluator(&auditinternal.Policy{
		Rules: []auditinternal.PolicyRule{
			{Level: auditinternal.LevelNone, NonResourceURLs: healthPaths},
			{Level: auditinternal.LevelMetadata},
		},
	})}
}

// decide evaluates the policy for attrs and caps the level of requests on
// sensitive resources at Metadata.
func (p *Policy) decide(attrs authorizer.Attributes) decision {
	c := p.eval.EvaluatePolicyRule(attrs)
	d := decision{level: c.Level, omitStages: c.OmitStages, omitManagedFields: c.OmitManagedFields}
	if sensitive(attrs) && d.level.GreaterOrEqual(auditinternal.LevelRequest) {
		d.level = auditinternal.LevelMetadata
	}
	return d
}

// sensitive reports whether the bodies of a request may carry credentials,
// so that they are never written to the audit log: Secrets (of any API
// group, custom resources named so included), TokenReviews and token
// requests (the token subresource). Requests that are not resource
// requests never have their bodies logged, so they need no check here.
func sensitive(attrs authorizer.Attributes) bool {
	if !attrs.IsResourceRequest() {
		return false
	}
	switch strings.ToLower(attrs.GetResource()) {
	case "secrets", "tokenreviews", "tokenrequests":
		return true
	}
	return strings.EqualFold(attrs.GetSubresource(), "token")
}
