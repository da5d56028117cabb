package apiserver

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// requestTimeout reads the timeout query parameter (a Go duration such as
// "30s") that clients send to bound a request; 0 when absent.
func requestTimeout(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("timeout")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid timeout value %q: must be a non-negative duration such as 30s", v))
	}
	return d, nil
}

// listOptions parses the list and watch query parameters; malformed
// selectors and numbers are 400.
func listOptions(q url.Values) (registry.ListOptions, error) {
	var opts registry.ListOptions
	var err error
	if opts.Labels, err = labels.Parse(q.Get("labelSelector")); err != nil {
		return opts, apierrors.NewBadRequest(fmt.Sprintf("unable to parse labelSelector: %v", err))
	}
	if opts.Fields, err = fields.ParseSelector(q.Get("fieldSelector")); err != nil {
		return opts, apierrors.NewBadRequest(fmt.Sprintf("unable to parse fieldSelector: %v", err))
	}
	opts.ResourceVersion = q.Get("resourceVersion")
	opts.ResourceVersionMatch = metav1.ResourceVersionMatch(q.Get("resourceVersionMatch"))
	if opts.Limit, _, err = queryInt(q, "limit"); err != nil {
		return opts, err
	}
	opts.Continue = q.Get("continue")
	opts.AllowWatchBookmarks = queryBool(q, "allowWatchBookmarks")
	if _, ok := q["sendInitialEvents"]; ok {
		v := queryBool(q, "sendInitialEvents")
		opts.SendInitialEvents = &v
	}
	return opts, nil
}

// fieldValidationValues are the accepted fieldValidation values.
var fieldValidationValues = []string{"Ignore", "Strict", "Warn"}

// maxFieldManagerLength is Kubernetes' bound on fieldManager.
const maxFieldManagerLength = 128

// writeOptions parses the create, update and patch query parameters.
// Invalid values answer 422 for the options kind (CreateOptions,
// UpdateOptions, PatchOptions), as Kubernetes validates them.
func writeOptions(q url.Values, optionsKind, sub string) (registry.WriteOptions, error) {
	opts := registry.WriteOptions{
		FieldValidation: q.Get("fieldValidation"),
		FieldManager:    q.Get("fieldManager"),
		Subresource:     sub,
	}
	var errs field.ErrorList
	dryRun, dryErrs := parseDryRun(q)
	opts.DryRun = dryRun
	errs = append(errs, dryErrs...)
	if v := opts.FieldValidation; v != "" && !slices.Contains(fieldValidationValues, v) {
		errs = append(errs, field.NotSupported(field.NewPath("fieldValidation"), v, fieldValidationValues))
	}
	if m := opts.FieldManager; len(m) > maxFieldManagerLength {
		errs = append(errs, field.TooLong(field.NewPath("fieldManager"), "", maxFieldManagerLength))
	} else if strings.IndexFunc(m, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		errs = append(errs, field.Invalid(field.NewPath("fieldManager"), m, "must only contain printable characters"))
	}
	if len(errs) > 0 {
		return opts, apierrors.NewInvalid(schema.GroupKind{Group: metaGroup, Kind: optionsKind}, "", errs)
	}
	return opts, nil
}

// parseDryRun reads dryRun: only "All" is supported.
func parseDryRun(q url.Values) (bool, field.ErrorList) {
	var errs field.ErrorList
	for _, v := range q["dryRun"] {
		if v != metav1.DryRunAll {
			errs = append(errs, field.NotSupported(field.NewPath("dryRun"), v, []string{metav1.DryRunAll}))
		}
	}
	return len(q["dryRun"]) > 0, errs
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
