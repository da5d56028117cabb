package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	sigsjson "sigs.k8s.io/json"

	"github.com/setpoint/setpoint/internal/registry"
)

// maxPatchOperations bounds the operations of a webhook's JSON patch, as
// for the patches clients send.
const maxPatchOperations = 10000

// Mutate implements registry.WebhookAdmission: the mutating webhooks that
// match run one after the other, each seeing what the ones before it
// made; then, when a webhook changed the object after a webhook with
// reinvocationPolicy IfNeeded ran, those webhooks run once more.
func (d *Dispatcher) Mutate(ctx context.Context, req *registry.AdmissionRequest) (map[string]any, []string, error) {
	hooks := d.hooks.Load().mutating
	obj := req.Object
	var warnings []string
	var reinvocable []*hook
	reinvoke := false
	for _, h := range hooks {
		out, o, w, err := d.mutateOnce(ctx, h, req, obj)
		warnings = append(warnings, w...)
		if err != nil {
			return nil, warnings, err
		}
		obj = out
		if o.called && h.reinvoke {
			reinvocable = append(reinvocable, h)
		}
		if o.changed && len(reinvocable) > 0 && (len(reinvocable) > 1 || reinvocable[0] != h) {
			reinvoke = true
		}
	}
	if reinvoke {
		for _, h := range reinvocable {
			out, _, w, err := d.mutateOnce(ctx, h, req, obj)
			warnings = append(warnings, w...)
			if err != nil {
				return nil, warnings, err
			}
			obj = out
		}
	}
	return obj, warnings, nil
}

// outcome tells whether a webhook was called and whether it changed the
// object.
type outcome struct{ called, changed bool }

// mutateOnce calls h, if it matches, on obj and returns the object it
// leaves (obj itself when unchanged).
func (d *Dispatcher) mutateOnce(ctx context.Context, h *hook, req *registry.AdmissionRequest, obj map[string]any) (map[string]any, outcome, []string, error) {
	inv, err := match(ctx, h, req, obj)
	if err != nil || inv == nil {
		return obj, outcome{}, nil, err
	}
	resp, err := d.call(ctx, inv, req, obj, req.OldObject, true)
	if err != nil {
		return obj, outcome{called: true}, nil, d.failed(ctx, h, err)
	}
	if !resp.Allowed {
		return obj, outcome{called: true}, resp.Warnings, denied(h.name, resp.Result)
	}
	if len(resp.Patch) == 0 {
		return obj, outcome{called: true}, resp.Warnings, nil
	}
	out, err := applyPatch(h.name, resp.Patch, asVersion(obj, inv), req.Operation)
	if err != nil {
		var ce *callError
		if errors.As(err, &ce) {
			err = d.failed(ctx, h, err)
		}
		return obj, outcome{called: true}, resp.Warnings, err
	}
	if out == nil {
		return obj, outcome{called: true}, resp.Warnings, nil
	}
	if av, ok := obj["apiVersion"]; ok {
		out["apiVersion"] = av // back from the invocation's version
	}
	return out, outcome{called: true, changed: !reflect.DeepEqual(out, obj)}, resp.Warnings, nil
}

// applyPatch applies a webhook's JSON patch to obj and decodes the result,
// integers as int64. It returns nil for an empty patch. A patch that does
// not decode is a *callError (the webhook's failure); one that cannot be
// applied, or one on a request without an object, an internal error, as
// Kubernetes answers.
func applyPatch(name string, patch []byte, obj map[string]any, op admissionv1.Operation) (map[string]any, error) {
	ops, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, &callError{name, fmt.Errorf("received undecodable patch in webhook response: %w", err)}
	}
	if len(ops) > maxPatchOperations {
		return nil, &callError{name, fmt.Errorf("the patch has %d operations, more than the %d allowed", len(ops), maxPatchOperations)}
	}
	if len(ops) == 0 {
		return nil, nil
	}
	if obj == nil || op == admissionv1.Delete {
		return nil, apierrors.NewInternalError(fmt.Errorf("admission webhook %q attempted to modify the object, which is not supported for this operation", name))
	}
	doc, err := json.Marshal(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	patched, err := ops.Apply(doc)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("admission webhook %q returned a patch that cannot be applied: %w", name, err))
	}
	var out map[string]any
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(patched, &out); err != nil || out == nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("admission webhook %q returned a patch whose result is not an object", name))
	}
	return out, nil
}

// failed decides what a failed call of h does to the request: err itself
// when it is not a call failure (a dry run the webhook cannot take), an
// internal error under failurePolicy Fail, nothing under Ignore, unless
// the request's own context ended, which ends the request.
func (d *Dispatcher) failed(ctx context.Context, h *hook, err error) error {
	var ce *callError
	if !errors.As(err, &ce) {
		return err
	}
	if !h.failOpen {
		return ce.failure()
	}
	if ctx.Err() != nil {
		return apierrors.NewTimeoutError("request did not complete within requested timeout", 0)
	}
	d.log.Warn("admission webhook failed; ignored as its failurePolicy says", "webhook", h.name, "configuration", h.configuration, "error", err)
	return nil
}

// Validate implements registry.WebhookAdmission: the validating webhooks
// that match run in parallel; the first rejection, in configuration order,
// is the answer.
func (d *Dispatcher) Validate(ctx context.Context, req *registry.AdmissionRequest) ([]string, error) {
	var invs []*invocation
	for _, h := range d.hooks.Load().validating {
		inv, err := match(ctx, h, req, req.Object)
		if err != nil {
			return nil, err
		}
		if inv != nil {
			invs = append(invs, inv)
		}
	}
	if len(invs) == 0 {
		return nil, nil
	}
	errs := make([]error, len(invs))
	warnings := make([][]string, len(invs))
	var wg sync.WaitGroup
	for i, inv := range invs {
		wg.Go(func() {
			resp, err := d.call(ctx, inv, req, req.Object, req.OldObject, false)
			switch {
			case err != nil:
				errs[i] = d.failed(ctx, inv.h, err)
			case !resp.Allowed:
				warnings[i] = resp.Warnings
				errs[i] = denied(inv.h.name, resp.Result)
			default:
				warnings[i] = resp.Warnings
			}
		})
	}
	wg.Wait()
	var all []string
	for _, w := range warnings {
		all = append(all, w...)
	}
	for _, err := range errs {
		if err != nil {
			return all, err
		}
	}
	return all, nil
}
