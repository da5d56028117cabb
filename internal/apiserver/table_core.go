package apiserver

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/internal/registry"
)

// coreColumns are the columns of the built-in types that Kubernetes prints
// with more than their name and age: ConfigMaps and Secrets with their
// number of keys, Leases with their holder, and Events (of both APIs) as
// kubectl get events shows them, with the name last and only in wide
// output. It returns nil for other types.
func (b *tableBuilder) coreColumns(res *registry.Resource) []column {
	age := column{
		def:  metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: ageDescription},
		cell: func(obj map[string]any) any { return b.age(metaField(obj, "creationTimestamp")) },
	}
	switch {
	case res.Group == "" && res.Resource == "configmaps":
		return []column{nameColumn(0), {
			def:  metav1.TableColumnDefinition{Name: "Data", Type: "string", Description: "Number of keys in data and binaryData."},
			cell: func(obj map[string]any) any { return int64(mapLen(obj, "data") + mapLen(obj, "binaryData")) },
		}, age}
	case res.Group == "" && res.Resource == "secrets":
		return []column{nameColumn(0), {
			def:  metav1.TableColumnDefinition{Name: "Type", Type: "string", Description: "Type of the secret, such as Opaque."},
			cell: func(obj map[string]any) any { return stringAt(obj, "type") },
		}, {
			def:  metav1.TableColumnDefinition{Name: "Data", Type: "string", Description: "Number of keys in data."},
			cell: func(obj map[string]any) any { return int64(mapLen(obj, "data")) },
		}, age}
	case res.Group == "coordination.k8s.io" && res.Resource == "leases":
		return []column{nameColumn(0), {
			def:  metav1.TableColumnDefinition{Name: "Holder", Type: "string", Description: "Identity of the lease's current holder."},
			cell: func(obj map[string]any) any { return stringAt(obj, "spec", "holderIdentity") },
		}, age}
	case res.Resource == "events" && (res.Group == "" || res.Group == "events.k8s.io"):
		return b.eventColumns(res.Group == "events.k8s.io")
	}
	return nil
}

// eventNames are the fields of an Event under the names of one API.
type eventNames struct {
	regarding, note, count, source, first, last, controller string
}

// eventColumns are the columns of Events; v1 says the objects use the
// events.k8s.io/v1 field names. Times show as ages: the last one seen
// (from the series, the last timestamp, else the first), the first one
// (the first timestamp, else eventTime).
func (b *tableBuilder) eventColumns(v1 bool) []column {
	n := eventNames{"involvedObject", "message", "count", "source", "firstTimestamp", "lastTimestamp", "reportingComponent"}
	if v1 {
		n = eventNames{"regarding", "note", "deprecatedCount", "deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp", "reportingController"}
	}
	first := func(obj map[string]any) string {
		if ts := stringAt(obj, n.first); ts != "" {
			return b.age(ts)
		}
		return b.age(stringAt(obj, "eventTime"))
	}
	col := func(name string, priority int32, desc string, cell func(map[string]any) any) column {
		return column{def: metav1.TableColumnDefinition{Name: name, Type: "string", Priority: priority, Description: desc}, cell: cell}
	}
	return []column{
		col("Last Seen", 0, "Time since the event was last observed.", func(obj map[string]any) any {
			if _, ok := obj["series"].(map[string]any); ok {
				return b.age(stringAt(obj, "series", "lastObservedTime"))
			}
			if ts := stringAt(obj, n.last); ts != "" {
				return b.age(ts)
			}
			return first(obj)
		}),
		col("Type", 0, "Type of the event: Normal or Warning.", func(obj map[string]any) any { return stringAt(obj, "type") }),
		col("Reason", 0, "Short, machine-readable cause of the event.", func(obj map[string]any) any { return stringAt(obj, "reason") }),
		col("Object", 0, "The object the event is about, as kind/name.", func(obj map[string]any) any {
			kind := strings.ToLower(stringAt(obj, n.regarding, "kind"))
			if name := stringAt(obj, n.regarding, "name"); name != "" {
				return kind + "/" + name
			}
			return kind
		}),
		col("Subobject", 1, "The part of the object the event is about (fieldPath).", func(obj map[string]any) any {
			return stringAt(obj, n.regarding, "fieldPath")
		}),
		col("Source", 1, "The component, and the host or instance, that reported the event.", func(obj map[string]any) any {
			component := firstNonEmpty(stringAt(obj, n.source, "component"), stringAt(obj, n.controller))
			instance := firstNonEmpty(stringAt(obj, n.source, "host"), stringAt(obj, "reportingInstance"))
			if instance == "" {
				return component
			}
			return component + ", " + instance
		}),
		col("Message", 0, "Human-readable description of the event.", func(obj map[string]any) any {
			return strings.TrimSpace(stringAt(obj, n.note))
		}),
		col("First Seen", 1, "Time since the event was first observed.", func(obj map[string]any) any { return first(obj) }),
		col("Count", 1, "How many times the event was observed.", func(obj map[string]any) any {
			if series, ok := obj["series"].(map[string]any); ok {
				return intValue(series["count"])
			}
			if c := intValue(obj[n.count]); c != 0 {
				return c
			}
			return int64(1)
		}),
		nameColumn(1),
	}
}

// stringAt returns the string at path in obj, or "".
func stringAt(obj map[string]any, path ...string) string {
	var v any = obj
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// mapLen is the number of keys of the object obj[key].
func mapLen(obj map[string]any, key string) int {
	m, _ := obj[key].(map[string]any)
	return len(m)
}

// intValue converts a JSON number to int64; anything else is 0.
func intValue(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

// firstNonEmpty returns a unless it is empty, else b.
func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
