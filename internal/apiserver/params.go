package apiserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/setpoint/setpoint/internal/registry"
)

// queryBool reads a boolean query parameter as Kubernetes does: absent is
// false, "false" and "0" are false, any other value (even empty) is true.
func queryBool(q url.Values, key string) bool {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return false
	}
	switch strings.ToLower(v[0]) {
	case "false", "0":
		return false
	}
	return true
}

// queryInt reads an integer query parameter; absent is 0.
func queryInt(q url.Values, key string) (int64, bool, error) {
	v := q.Get(key)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, apierrors.NewBadRequest(fmt.Sprintf("invalid value for %s: %q is not an integer", key, v))
	}
	return n, true, nil
}

// timeoutFor returns how long a request that is not a watch may take: the
// timeout query parameter (a Go duration such as "30s") when it is shorter
// than Options.RequestTimeout, which caps it, as Kubernetes'
// --request-timeout does. A malformed parameter gives the cap and a 400
// error.
func (s *server) timeoutFor(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("timeout")
	if v == "" {
		return s.requestTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return s.requestTimeout, apierrors.NewBadRequest(fmt.Sprintf("invalid timeout value %q: must be a non-negative duration such as 30s", v))
	}
	if d > 0 && d < s.requestTimeout {
		return d, nil
	}
	return s.requestTimeout, nil
}

// maxListLimit caps the limit parameter: a larger one is served as
// this, with a continue token for the rest, which the API allows
// (a server may return fewer items than limit) and every client that
// sets limit follows, so no client breaks, while one page never costs
// more than this many objects. Without limit, a list stays whole, as
// clients that set none expect. A variable for tests.
var maxListLimit int64 = 10000

// Bounds of the list and watch parameters.
const (
	// maxSelectorBytes bounds labelSelector and fieldSelector.
	maxSelectorBytes = 16 << 10
	// maxSelectorTerms bounds the requirements of a label selector, and
	// maxSelectorValues the values of its set requirements (in, notin)
	// together: matching an object costs one check per value.
	maxSelectorTerms  = 100
	maxSelectorValues = 1000
)

// listOptions parses the list and watch query parameters; malformed or
// too large selectors and malformed numbers are 400.
func listOptions(q url.Values) (registry.ListOptions, error) {
	var opts registry.ListOptions
	var err error
	if opts.Labels, err = labelSelector(q.Get("labelSelector")); err != nil {
		return opts, err
	}
	fs := q.Get("fieldSelector")
	if len(fs) > maxSelectorBytes {
		return opts, apierrors.NewBadRequest(fmt.Sprintf("fieldSelector is %d bytes long; the limit is %d", len(fs), maxSelectorBytes))
	}
	if opts.Fields, err = fields.ParseSelector(fs); err != nil {
		return opts, apierrors.NewBadRequest(fmt.Sprintf("unable to parse fieldSelector: %v", err))
	}
	opts.ResourceVersion = q.Get("resourceVersion")
	opts.ResourceVersionMatch = metav1.ResourceVersionMatch(q.Get("resourceVersionMatch"))
	if opts.Limit, _, err = queryInt(q, "limit"); err != nil {
		return opts, err
	}
	opts.Limit = min(opts.Limit, maxListLimit)
	opts.Continue = q.Get("continue")
	opts.AllowWatchBookmarks = queryBool(q, "allowWatchBookmarks")
	if _, ok := q["sendInitialEvents"]; ok {
		v := queryBool(q, "sendInitialEvents")
		opts.SendInitialEvents = &v
	}
	return opts, nil
}

// labelSelector parses a labelSelector parameter, within the bounds on
// its length, requirements and values.
func labelSelector(s string) (labels.Selector, error) {
	if len(s) > maxSelectorBytes {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("labelSelector is %d bytes long; the limit is %d", len(s), maxSelectorBytes))
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unable to parse labelSelector: %v", err))
	}
	reqs, _ := sel.Requirements()
	values := 0
	for _, r := range reqs {
		values += len(r.ValuesUnsorted())
	}
	if len(reqs) > maxSelectorTerms || values > maxSelectorValues {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("labelSelector has %d requirements and %d values; the limits are %d and %d",
			len(reqs), values, maxSelectorTerms, maxSelectorValues))
	}
	return sel, nil
}

// writeOptions parses the create, update and patch query parameters and
// validates them as Kubernetes does: invalid values answer 422 for the
// options kind (CreateOptions, UpdateOptions, PatchOptions). pt is the
// patch type for patches. Without a fieldManager parameter the manager is
// derived from the User-Agent.
func writeOptions(r *http.Request, verb, sub string, pt types.PatchType) (registry.WriteOptions, error) {
	q := r.URL.Query()
	opts := registry.WriteOptions{
		DryRun:          len(q["dryRun"]) > 0,
		FieldValidation: q.Get("fieldValidation"),
		FieldManager:    q.Get("fieldManager"),
		Subresource:     sub,
	}
	var errs field.ErrorList
	var kind string
	switch verb {
	case "create":
		kind = "CreateOptions"
		errs = metavalidation.ValidateCreateOptions(&metav1.CreateOptions{DryRun: q["dryRun"], FieldManager: opts.FieldManager, FieldValidation: opts.FieldValidation})
	case "update":
		kind = "UpdateOptions"
		errs = metavalidation.ValidateUpdateOptions(&metav1.UpdateOptions{DryRun: q["dryRun"], FieldManager: opts.FieldManager, FieldValidation: opts.FieldValidation})
	default:
		kind = "PatchOptions"
		po := &metav1.PatchOptions{DryRun: q["dryRun"], FieldManager: opts.FieldManager, FieldValidation: opts.FieldValidation}
		if _, ok := q["force"]; ok {
			force := queryBool(q, "force")
			po.Force = &force
			opts.Force = force
		}
		errs = metavalidation.ValidatePatchOptions(po, pt)
	}
	if len(errs) > 0 {
		return opts, apierrors.NewInvalid(schema.GroupKind{Group: metaGroup, Kind: kind}, "", errs)
	}
	if opts.FieldManager == "" {
		opts.FieldManager = managerFromUserAgent(r.UserAgent())
	}
	return opts, nil
}

// managerFromUserAgent is the field manager Kubernetes derives from a
// User-Agent: what precedes the first "/", without unprintable
// characters, cut to the longest manager name allowed.
func managerFromUserAgent(userAgent string) string {
	prefix, _, _ := strings.Cut(userAgent, "/")
	var b strings.Builder
	for _, c := range prefix {
		if !unicode.IsPrint(c) {
			continue
		}
		if b.Len()+utf8.RuneLen(c) > metavalidation.FieldManagerMaxLength {
			break
		}
		b.WriteRune(c)
	}
	return b.String()
}

// wantsPretty reports whether to indent JSON: as the pretty parameter
// says, or without it, for command-line tools and browsers (as Kubernetes
// does) whose users read the answer.
func wantsPretty(r *http.Request) bool {
	if _, ok := r.URL.Query()["pretty"]; ok {
		return queryBool(r.URL.Query(), "pretty")
	}
	ua := r.UserAgent()
	return strings.HasPrefix(ua, "curl") || strings.HasPrefix(ua, "Wget") || strings.HasPrefix(ua, "Mozilla/")
}
