package discovery

import (
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// param is a parameter of type typ ("string", "integer" or "boolean").
func param(in, name, typ, description string) *spec3.Parameter {
	return &spec3.Parameter{ParameterProps: spec3.ParameterProps{
		Name: name, In: in, Description: description, Required: in == "path",
		Schema: &spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{typ}}},
	}}
}

// Path and query parameters, shared by every document (documents are only
// encoded, never changed).
var (
	namespaceParam = param("path", "namespace", "string", "object name and auth scope, such as for teams and projects")
	prettyParam    = param("query", "pretty", "string", "If 'true', then the output is pretty printed.")

	allowWatchBookmarks = param("query", "allowWatchBookmarks", "boolean",
		"allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers may send them at their discretion; clients must not assume when.")
	continueParam = param("query", "continue", "string",
		"The continue token returned by a previous paginated list call, to retrieve the next page of the same consistent snapshot. An expired token answers 410 Gone.")
	dryRun = param("query", "dryRun", "string",
		"When present, modifications are not persisted. Valid value: All (process every dry run stage).")
	fieldManager = param("query", "fieldManager", "string",
		"fieldManager is the name of the actor making the change, at most 128 printable characters.")
	fieldSelector = param("query", "fieldSelector", "string",
		"A selector restricting the returned objects by their fields (metadata.name and metadata.namespace). Defaults to everything.")
	// fieldValidation on PATCH is how kubectl detects server-side field
	// validation: k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go
	// looks for a parameter of this name among the PATCH operation's own
	// parameters (references are not followed) and, without it, validates
	// client-side using /openapi/v2, which this server does not serve.
	fieldValidation = param("query", "fieldValidation", "string",
		"fieldValidation tells the server how to handle unknown or duplicate fields in the request body: "+
			"Ignore drops them silently, Warn (the default) drops them and answers with a warning per field, "+
			"Strict rejects the request with a BadRequest error listing them.")
	force = param("query", "force", "boolean",
		"Force applies the request even when it conflicts with changes made by others (apply requests only).")
	gracePeriodSeconds = param("query", "gracePeriodSeconds", "integer",
		"The duration in seconds before the object is deleted; zero means delete immediately.")
	labelSelector = param("query", "labelSelector", "string",
		"A selector restricting the returned objects by their labels. Defaults to everything.")
	limit = param("query", "limit", "integer",
		"The maximum number of objects to return; when more exist the list metadata carries a continue token for the next page.")
	orphanDependents = param("query", "orphanDependents", "boolean",
		"Deprecated: use propagationPolicy. Whether dependent objects are orphaned.")
	propagationPolicy = param("query", "propagationPolicy", "string",
		"Whether and how garbage collection is performed: Orphan, Background or Foreground.")
	resourceVersion = param("query", "resourceVersion", "string",
		"Constrains which resource versions the request may be served from. Unset means the most recent.")
	resourceVersionMatch = param("query", "resourceVersionMatch", "string",
		"Determines how resourceVersion is applied to list calls: NotOlderThan or Exact.")
	sendInitialEvents = param("query", "sendInitialEvents", "boolean",
		"With watch=true, starts the watch stream with synthetic ADDED events for every existing object, followed by a BOOKMARK annotated k8s.io/initial-events-end.")
	timeoutSeconds = param("query", "timeoutSeconds", "integer",
		"Timeout for the list or watch call, regardless of activity.")
	watch = param("query", "watch", "boolean",
		"Watch for changes to the described resources and return them as a stream of add, update and remove notifications.")

	listParams = []*spec3.Parameter{allowWatchBookmarks, continueParam, fieldSelector, labelSelector, limit,
		resourceVersion, resourceVersionMatch, sendInitialEvents, timeoutSeconds, watch}
	writeParams            = []*spec3.Parameter{dryRun, fieldManager, fieldValidation}
	patchParams            = []*spec3.Parameter{dryRun, fieldManager, fieldValidation, force}
	getParams              = []*spec3.Parameter{resourceVersion}
	deleteParams           = []*spec3.Parameter{dryRun, gracePeriodSeconds, orphanDependents, propagationPolicy}
	deleteCollectionParams = []*spec3.Parameter{continueParam, dryRun, fieldSelector, gracePeriodSeconds, labelSelector, limit,
		orphanDependents, propagationPolicy, resourceVersion, resourceVersionMatch, sendInitialEvents, timeoutSeconds}
)

// nameParam is the path parameter naming an object of kind.
func nameParam(kind string) *spec3.Parameter {
	return param("path", "name", "string", "name of the "+kind)
}
