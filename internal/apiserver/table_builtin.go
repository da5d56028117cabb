package apiserver

import (
	"cmp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/internal/registry"
)

// builtinColumns are the columns Kubernetes prints for the core types
// served here (ConfigMaps, Secrets, Leases, Events of both APIs, the RBAC
// types, the webhook configurations), in its order; ok is false for other
// resources.
func (b *tableBuilder) builtinColumns(res *registry.Resource) (cols []column, ok bool) {
	name := column{
		def:  metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: nameDescription},
		cell: func(obj map[string]any) any { return metaField(obj, "name") },
	}
	age := column{
		def:  metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: ageDescription},
		cell: func(obj map[string]any) any { return b.age(metaField(obj, "creationTimestamp")) },
	}
	switch res.Group + "/" + res.Resource {
	case "/configmaps":
		return []column{name, {
			def: metav1.TableColumnDefinition{Name: "Data", Type: "integer", Description: "Number of keys in data and binaryData."},
			cell: func(obj map[string]any) any {
				return int64(len(mapField(obj, "data")) + len(mapField(obj, "binaryData")))
			},
		}, age}, true
	case "/secrets":
		return []column{name, {
			def:  metav1.TableColumnDefinition{Name: "Type", Type: "string", Description: "The type of the secret."},
			cell: func(obj map[string]any) any { return stringField(obj, "type") },
		}, {
			def:  metav1.TableColumnDefinition{Name: "Data", Type: "integer", Description: "Number of keys in data."},
			cell: func(obj map[string]any) any { return int64(len(mapField(obj, "data"))) },
		}, age}, true
	case "coordination.k8s.io/leases":
		return []column{name, {
			def:  metav1.TableColumnDefinition{Name: "Holder", Type: "string", Description: "The identity of the lease's holder."},
			cell: func(obj map[string]any) any { return stringField(mapField(obj, "spec"), "holderIdentity") },
		}, age}, true
	case "/events":
		return b.eventColumns(name, coreEventFields), true
	case "events.k8s.io/events":
		return b.eventColumns(name, eventsV1Fields), true
	case "admissionregistration.k8s.io/validatingwebhookconfigurations", "admissionregistration.k8s.io/mutatingwebhookconfigurations":
		return []column{name, {
			def: metav1.TableColumnDefinition{Name: "Webhooks", Type: "integer", Description: "Number of webhooks in the configuration."},
			cell: func(obj map[string]any) any {
				hooks, _ := obj["webhooks"].([]any)
				return int64(len(hooks))
			},
		}, age}, true
	case "rbac.authorization.k8s.io/roles", "rbac.authorization.k8s.io/clusterroles":
		return []column{name, {
			def:  metav1.TableColumnDefinition{Name: "Created At", Type: "date", Description: "When the role was created."},
			cell: func(obj map[string]any) any { return metaField(obj, "creationTimestamp") },
		}}, true
	case "rbac.authorization.k8s.io/rolebindings", "rbac.authorization.k8s.io/clusterrolebindings":
		return bindingColumns(name, age), true
	}
	return nil, false
}

// bindingColumns are the columns kubectl shows for RoleBindings and
// ClusterRoleBindings: the role as Kind/name, and with -o wide the
// subjects of each kind (service accounts as namespace/name).
func bindingColumns(name, age column) []column {
	subjects := func(kind, desc string) column {
		return column{
			def: metav1.TableColumnDefinition{Name: kind + "s", Type: "string", Description: desc, Priority: 1},
			cell: func(obj map[string]any) any {
				list, _ := obj["subjects"].([]any)
				var names []string
				for _, s := range list {
					m, _ := s.(map[string]any)
					if stringField(m, "kind") != kind {
						continue
					}
					n := stringField(m, "name")
					if ns := stringField(m, "namespace"); kind == "ServiceAccount" {
						n = ns + "/" + n
					}
					names = append(names, n)
				}
				return strings.Join(names, ", ")
			},
		}
	}
	return []column{name, {
		def: metav1.TableColumnDefinition{Name: "Role", Type: "string", Description: "The role granted, as Kind/name."},
		cell: func(obj map[string]any) any {
			ref := mapField(obj, "roleRef")
			return stringField(ref, "kind") + "/" + stringField(ref, "name")
		},
	}, age,
		subjects("User", "The users granted the role."),
		subjects("Group", "The groups granted the role."),
		subjects("ServiceAccount", "The service accounts granted the role."),
	}
}

// eventFields names the Event fields that differ between core v1 and
// events.k8s.io/v1.
type eventFields struct {
	regarding, note, count, source, first, last, controller string
}

var (
	coreEventFields = eventFields{"involvedObject", "message", "count", "source", "firstTimestamp", "lastTimestamp", "reportingComponent"}
	eventsV1Fields  = eventFields{"regarding", "note", "deprecatedCount", "deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp", "reportingController"}
)

// eventColumns are the columns of Events, computed as kubectl shows them:
// times from the legacy timestamps or eventTime and series, the object
// as kind/name, the source from the legacy source or the reporting
// controller and instance.
func (b *tableBuilder) eventColumns(name column, f eventFields) []column {
	name.def.Priority = 1
	col := func(n, desc string, priority int32, cell func(map[string]any) any) column {
		return column{def: metav1.TableColumnDefinition{Name: n, Type: "string", Description: desc, Priority: priority}, cell: cell}
	}
	first := func(obj map[string]any) string {
		if t := stringField(obj, f.first); t != "" {
			return b.age(t)
		}
		return b.age(stringField(obj, "eventTime"))
	}
	return []column{
		col("Last Seen", "When the event was last observed.", 0, func(obj map[string]any) any {
			if series := mapField(obj, "series"); series != nil {
				return b.age(stringField(series, "lastObservedTime"))
			}
			if t := stringField(obj, f.last); t != "" {
				return b.age(t)
			}
			return first(obj)
		}),
		col("Type", "Type of the event (Normal or Warning).", 0, func(obj map[string]any) any { return stringField(obj, "type") }),
		col("Reason", "Why the action was taken, in a short machine-readable form.", 0, func(obj map[string]any) any { return stringField(obj, "reason") }),
		col("Object", "The object the event is about, as kind/name.", 0, func(obj map[string]any) any {
			ref := mapField(obj, f.regarding)
			kind := strings.ToLower(stringField(ref, "kind"))
			if n := stringField(ref, "name"); n != "" {
				return kind + "/" + n
			}
			return kind
		}),
		col("Subobject", "The part of the object the event is about.", 1, func(obj map[string]any) any {
			return stringField(mapField(obj, f.regarding), "fieldPath")
		}),
		col("Source", "The component (and host or instance) that reported the event.", 1, func(obj map[string]any) any {
			src := mapField(obj, f.source)
			component := cmp.Or(stringField(src, "component"), stringField(obj, f.controller))
			instance := cmp.Or(stringField(src, "host"), stringField(obj, "reportingInstance"))
			if instance == "" {
				return component
			}
			return component + ", " + instance
		}),
		col("Message", "A human-readable description of the event.", 0, func(obj map[string]any) any {
			return strings.TrimSpace(stringField(obj, f.note))
		}),
		col("First Seen", "When the event was first observed.", 1, func(obj map[string]any) any { return first(obj) }),
		{def: metav1.TableColumnDefinition{Name: "Count", Type: "integer", Description: "How many times the event occurred.", Priority: 1},
			cell: func(obj map[string]any) any {
				if n, ok := mapField(obj, "series")["count"].(int64); ok {
					return n
				}
				if n, _ := obj[f.count].(int64); n > 0 {
					return n
				}
				return int64(1)
			}},
		name,
	}
}

// mapField returns obj[key] as an object, or nil.
func mapField(obj map[string]any, key string) map[string]any {
	m, _ := obj[key].(map[string]any)
	return m
}

// stringField returns obj[key] as a string, or "".
func stringField(obj map[string]any, key string) string {
	s, _ := obj[key].(string)
	return s
}
