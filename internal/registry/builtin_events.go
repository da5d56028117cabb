package registry

import (
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Events are one stored resource served by two APIs, as in Kubernetes:
// core v1 Events are the stored form, events.k8s.io/v1 Events a converted
// view of them, so an event written through either API is seen through
// both.

// eventsStorageKey is where Events of both APIs are stored.
const eventsStorageKey = "/events"

// eventRenames pairs each core v1 Event field with its events.k8s.io/v1
// name; the other fields have the same name in both.
var eventRenames = [][2]string{
	{"involvedObject", "regarding"},
	{"message", "note"},
	{"count", "deprecatedCount"},
	{"source", "deprecatedSource"},
	{"firstTimestamp", "deprecatedFirstTimestamp"},
	{"lastTimestamp", "deprecatedLastTimestamp"},
	{"reportingComponent", "reportingController"},
}

// renameFields moves obj[from] to obj[to] for each pair (from index i, to
// index 1-i), dropping what stood under a target name the other form does
// not have.
func renameFields(obj map[string]any, from int) {
	moved := map[string]any{}
	for _, p := range eventRenames {
		if v, ok := obj[p[from]]; ok {
			moved[p[1-from]] = v
			delete(obj, p[from])
		}
	}
	for _, p := range eventRenames {
		delete(obj, p[1-from])
	}
	for k, v := range moved {
		obj[k] = v
	}
}

// eventsConversion converts events.k8s.io/v1 Events to core v1 Events and
// back.
var eventsConversion = &conversion{
	storedAPIVersion: "v1",
	toStored:         func(obj map[string]any) { renameFields(obj, 1) },
	toServed:         func(obj map[string]any) { renameFields(obj, 0) },
}

// eventBuiltin serves core v1 Events.
var eventBuiltin = typed[corev1.Event](&builtin{
	Resource: Resource{
		Version: "v1", Resource: "events", SingularName: "event",
		Kind: "Event", ListKind: "EventList", Namespaced: true, ShortNames: []string{"ev"},
		Verbs: standardVerbs, StorageKey: eventsStorageKey,
		SelectableFields: append(objectRefFields("involvedObject"), "reason", "reportingComponent", "source", "type"),
		fieldGetters:     map[string]func(map[string]any) string{"source": eventSource},
	},
	prepare:       dropGenerationOnCreate,
	prepareUpdate: dropGenerationOnUpdate,
	validate: func(obj, _ map[string]any) field.ErrorList {
		return validateEvent(obj, "involvedObject", "message", "reportingComponent")
	},
})

// eventsV1Builtin serves events.k8s.io/v1 Events.
var eventsV1Builtin = typed[eventsv1.Event](&builtin{
	Resource: Resource{
		Group: "events.k8s.io", Version: "v1", Resource: "events", SingularName: "event",
		Kind: "Event", ListKind: "EventList", Namespaced: true, ShortNames: []string{"ev"},
		Verbs: standardVerbs, StorageKey: eventsStorageKey, conv: eventsConversion,
		SelectableFields: append(objectRefFields("regarding"), "reason", "reportingController", "type"),
		fieldGetters:     eventsV1FieldGetters(),
	},
	prepare:       dropGenerationOnCreate,
	prepareUpdate: dropGenerationOnUpdate,
	validate:      validateEventsV1,
})

// objectRefFields are the selectable fields of the ObjectReference under
// name, as Kubernetes lists them for Events.
func objectRefFields(name string) []string {
	var out []string
	for _, f := range []string{"kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"} {
		out = append(out, name+"."+f)
	}
	return out
}

// eventSource is the value of the core Event field selector "source": the
// source component, or the reporting controller of events that have none.
func eventSource(stored map[string]any) string {
	if c := fieldValue(stored, []string{"source", "component"}); c != "" {
		return c
	}
	return fieldValue(stored, []string{"reportingComponent"})
}

// eventsV1FieldGetters read the events.k8s.io/v1 selectable fields whose
// stored (core) name differs: regarding.* and reportingController.
func eventsV1FieldGetters() map[string]func(map[string]any) string {
	getters := map[string]func(map[string]any) string{}
	for _, f := range objectRefFields("regarding") {
		path := []string{"involvedObject", strings.TrimPrefix(f, "regarding.")}
		getters[f] = func(stored map[string]any) string { return fieldValue(stored, path) }
	}
	getters["reportingController"] = func(stored map[string]any) string {
		return fieldValue(stored, []string{"reportingComponent"})
	}
	return getters
}

// Length limits of Event fields, as Kubernetes sets them.
const (
	eventReportingInstanceLimit = 128
	eventActionLimit            = 128
	eventReasonLimit            = 128
	eventNoteLimit              = 1024
)

// validateEvent is Kubernetes' validation of every Event, with the field
// names of the API it was written through (regarding, note and
// reportingController for events.k8s.io/v1). An Event without eventTime
// (the core v1 recorders' kind) only needs its involved object's namespace
// to match its own; one with eventTime also needs the reporting controller
// and instance, action and reason.
func validateEvent(obj map[string]any, regardingName, noteName, controllerName string) field.ErrorList {
	var errs field.ErrorList
	ns := metaString(obj, "namespace")
	regarding, _ := obj[regardingName].(map[string]any)
	regardingNS, _ := regarding["namespace"].(string)
	nsPath := field.NewPath(regardingName, "namespace")
	if eventTime, _ := obj["eventTime"].(string); eventTime == "" {
		if regardingNS == "" && ns != "" && ns != "default" || regardingNS != "" && regardingNS != ns {
			errs = append(errs, field.Invalid(nsPath, regardingNS, "does not match event.namespace"))
		}
	} else {
		if regardingNS == "" && ns != "default" && ns != "kube-system" {
			errs = append(errs, field.Invalid(nsPath, regardingNS, "does not match event.namespace"))
		}
		controller, _ := obj[controllerName].(string)
		cp := field.NewPath(controllerName)
		if controller == "" {
			errs = append(errs, field.Required(cp, ""))
		}
		for _, msg := range validation.IsQualifiedName(controller) {
			errs = append(errs, field.Invalid(cp, controller, msg))
		}
		errs = append(errs, requiredLimited(obj, "reportingInstance", eventReportingInstanceLimit)...)
		errs = append(errs, requiredLimited(obj, "action", eventActionLimit)...)
		errs = append(errs, requiredLimited(obj, "reason", eventReasonLimit)...)
		if note, _ := obj[noteName].(string); len(note) > eventNoteLimit {
			errs = append(errs, field.Invalid(field.NewPath(noteName), "", fmt.Sprintf("can have at most %v characters", eventNoteLimit)))
		}
	}
	return errs
}

// requiredLimited requires obj[name] to be a string of 1 to limit bytes.
func requiredLimited(obj map[string]any, name string, limit int) field.ErrorList {
	s, _ := obj[name].(string)
	switch {
	case s == "":
		return field.ErrorList{field.Required(field.NewPath(name), "")}
	case len(s) > limit:
		return field.ErrorList{field.Invalid(field.NewPath(name), "", fmt.Sprintf("can have at most %v characters", limit))}
	}
	return nil
}

// eventsV1Immutable are the fields an update through events.k8s.io/v1
// may not change: all but series (and metadata).
var eventsV1Immutable = []string{
	"regarding", "reason", "note", "deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp",
	"deprecatedCount", "type", "eventTime", "action", "related", "reportingController", "reportingInstance",
}

// validateEventsV1 adds to validateEvent what Kubernetes requires of
// Events written through events.k8s.io/v1: on create eventTime, a Normal
// or Warning type, a valid series, and none of the deprecated fields; on
// update a valid series if it changed, and no change to the other fields.
func validateEventsV1(obj, old map[string]any) field.ErrorList {
	errs := validateEvent(obj, "regarding", "note", "reportingController")
	if series, ok := obj["series"].(map[string]any); ok && (old == nil || !reflect.DeepEqual(series, old["series"])) {
		p := field.NewPath("series")
		if n, _ := series["count"].(int64); n < 2 {
			errs = append(errs, field.Invalid(p.Child("count"), "", "should be at least 2"))
		}
		if t, _ := series["lastObservedTime"].(string); t == "" {
			errs = append(errs, field.Required(p.Child("lastObservedTime"), ""))
		}
	}
	if old != nil {
		for _, f := range eventsV1Immutable {
			if !reflect.DeepEqual(emptyToNil(obj[f]), emptyToNil(old[f])) {
				errs = append(errs, field.Invalid(field.NewPath(f), obj[f], "field is immutable"))
			}
		}
		return errs
	}
	if t, _ := obj["eventTime"].(string); t == "" {
		errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
	}
	if t, _ := obj["type"].(string); t != corev1.EventTypeNormal && t != corev1.EventTypeWarning {
		errs = append(errs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", t)))
	}
	for _, f := range []string{"deprecatedFirstTimestamp", "deprecatedLastTimestamp"} {
		if t, _ := obj[f].(string); t != "" {
			errs = append(errs, field.Invalid(field.NewPath(f), "", "needs to be unset"))
		}
	}
	if n, _ := obj["deprecatedCount"].(int64); n != 0 {
		errs = append(errs, field.Invalid(field.NewPath("deprecatedCount"), "", "needs to be unset"))
	}
	if src, _ := obj["deprecatedSource"].(map[string]any); src["component"] != nil && src["component"] != "" || src["host"] != nil && src["host"] != "" {
		errs = append(errs, field.Invalid(field.NewPath("deprecatedSource"), "", "needs to be unset"))
	}
	return errs
}
