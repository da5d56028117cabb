package audit

import (
	"testing"

	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

func TestPolicyRules(t *testing.T) {
	p, err := ParsePolicy([]byte(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: [system:setpoint-controllers]
- level: None
  userGroups: [quiet]
  verbs: [get, list, watch]
- level: RequestResponse
  resources:
  - group: ""
    resources: [secrets, configmaps]
    resourceNames: [loud]
- level: Request
  namespaces: [prod]
  omitStages: [ResponseStarted]
- level: Metadata
  nonResourceURLs: [/version, /apis*]
- level: RequestResponse
  resources: [{group: ""}]
`))
	if err != nil {
		t.Fatal(err)
	}
	bob := &user.DefaultInfo{Name: "bob", Groups: []string{"quiet"}}
	tests := []struct {
		name  string
		attrs authorizer.AttributesRecord
		want  auditinternal.Level
	}{
		{"controllers", authorizer.AttributesRecord{User: &user.DefaultInfo{Name: "system:setpoint-controllers"}, Verb: "create", ResourceRequest: true, Resource: "configmaps"}, auditinternal.LevelNone},
		{"quiet-read", authorizer.AttributesRecord{User: bob, Verb: "list", ResourceRequest: true, Resource: "configmaps"}, auditinternal.LevelNone},
		{"quiet-write", authorizer.AttributesRecord{User: bob, Verb: "update", ResourceRequest: true, Resource: "configmaps", Name: "loud"}, auditinternal.LevelRequestResponse},
		{"secret-capped", authorizer.AttributesRecord{User: bob, Verb: "update", ResourceRequest: true, Resource: "secrets", Name: "loud"}, auditinternal.LevelMetadata},
		{"namespace", authorizer.AttributesRecord{Verb: "create", ResourceRequest: true, APIGroup: "example.com", Resource: "widgets", Namespace: "prod"}, auditinternal.LevelRequest},
		{"secret-in-namespace", authorizer.AttributesRecord{Verb: "create", ResourceRequest: true, Resource: "secrets", Namespace: "prod"}, auditinternal.LevelMetadata},
		{"non-resource", authorizer.AttributesRecord{Verb: "get", Path: "/apis/example.com"}, auditinternal.LevelMetadata},
		{"core-group", authorizer.AttributesRecord{Verb: "get", ResourceRequest: true, Resource: "namespaces"}, auditinternal.LevelRequestResponse},
		{"unmatched", authorizer.AttributesRecord{Verb: "get", Path: "/metrics"}, auditinternal.LevelNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.decide(tt.attrs).level; got != tt.want {
				t.Errorf("level %s, want %s", got, tt.want)
			}
		})
	}
	d := p.decide(authorizer.AttributesRecord{Verb: "create", ResourceRequest: true, Resource: "widgets", Namespace: "prod"})
	if !d.omits(auditinternal.StageResponseStarted) || !d.omits(auditinternal.StageRequestReceived) || d.omits(auditinternal.StageResponseComplete) {
		t.Errorf("omitted stages %v: want the rule's and the policy's", d.omitStages)
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	for path, want := range map[string]auditinternal.Level{
		"/healthz": auditinternal.LevelNone, "/livez/ping": auditinternal.LevelNone, "/readyz": auditinternal.LevelNone,
		"/metrics": auditinternal.LevelMetadata, "/version": auditinternal.LevelMetadata, "/healthzz": auditinternal.LevelMetadata,
	} {
		if got := p.decide(authorizer.AttributesRecord{Verb: "get", Path: path}).level; got != want {
			t.Errorf("%s: level %s, want %s", path, got, want)
		}
	}
	if got := p.decide(authorizer.AttributesRecord{Verb: "create", ResourceRequest: true, Resource: "secrets"}).level; got != auditinternal.LevelMetadata {
		t.Errorf("secret at %s", got)
	}
}

func TestBadPolicies(t *testing.T) {
	for name, doc := range map[string]string{
		"no-rules":      "apiVersion: audit.k8s.io/v1\nkind: Policy\n",
		"bad-level":     "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Everything}]\n",
		"bad-stage":     "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, omitStages: [Never]}]\n",
		"no-version":    "kind: Policy\nrules: [{level: None}]\n",
		"other-version": "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: None}]\n",
		"not-yaml":      "rules: [",
		"mixed-rule":    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, resources: [{resources: [pods]}], nonResourceURLs: [/x]}]\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePolicy([]byte(doc)); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := LoadPolicy("/nonexistent/policy.yaml"); err == nil {
		t.Error("a missing policy file was accepted")
	}
}

// FuzzParsePolicy checks that any policy file is accepted or refused with
// an error, never a panic, and that an accepted one decides every request.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(allRequestResponse))
	f.Add([]byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, nonResourceURLs: ['/a*']}, {level: Request, resources: [{group: '', resources: ['*/status']}]}]\n"))
	f.Add([]byte(`{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[{"level":"Metadata","users":["a"]}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := ParsePolicy(doc)
		if err != nil {
			return
		}
		for _, attrs := range []authorizer.AttributesRecord{
			{Verb: "get", Path: "/a/b"},
			{User: &user.DefaultInfo{Name: "a", Groups: []string{"g"}}, Verb: "update", ResourceRequest: true, Resource: "secrets", Subresource: "status", Namespace: "n", Name: "x"},
		} {
			d := p.decide(attrs)
			if attrs.Resource == "secrets" && d.level.GreaterOrEqual(auditinternal.LevelRequest) {
				t.Fatalf("secret at %s", d.level)
			}
		}
	})
}
