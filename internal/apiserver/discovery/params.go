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
	namespaceParam = param("path", "namespace", "string", "The namespace the objects live in.")
	prettyParam    = param("query", "pretty", "string", "Indent the JSON response when \"true\".")

	allowWatchBookmarks = param("query", "allowWatchBookmarks", "boolean",
		"With watch=true, lets the server send BOOKMARK events that only advance the resource version; when and whether it does is up to the server.")
	continueParam = param("query", "continue", "string",
		"Token from the metadata of the previous page of a paginated list, to get the next page of the same snapshot. 410 Gone when it has expired.")
	dryRun = param("query", "dryRun", "string",
		"\"All\" runs the request through every stage without storing the result.")
	fieldManager = param("query", "fieldManager", "string",
		"Name of the client making the change (printable characters, up to 128).")
	fieldSelector = param("query", "fieldSelector", "string",
		"Restricts the objects by field values (metadata.name, metadata.namespace). Empty selects every object.")
	// fieldValidation on PATCH is how kubectl detects server-side field
	// validation: k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go
	// looks for a parameter of this name among the PATCH operation's own
	// parameters (references are not followed) and, without it, validates
	// client-side using /openapi/v2, which this server does not serve.
	fieldValidation = param("query", "fieldValidation", "string",
		"How to treat fields of the body the schema does not know and duplicated fields: "+
			"Ignore drops them silently, Warn (the default) drops them and answers with a warning per field, "+
			"Strict rejects the request with a BadRequest error listing them.")
	force = param("query", "force", "boolean",
		"For apply requests: take over fields other managers own instead of failing with a conflict.")
	gracePeriodSeconds = param("query", "gracePeriodSeconds", "integer",
		"Seconds to wait before deleting; 0 deletes at once.")
	labelSelector = param("query", "labelSelector", "string",
		"Restricts the objects by labels (=, ==, !=, in, notin, exists, !exists). Empty selects every object.")
	limit = param("query", "limit", "integer",
		"Largest number of objects to return; when more remain, the list metadata carries a continue token.")
	orphanDependents = param("query", "orphanDependents", "boolean",
		"Superseded by propagationPolicy: true orphans the objects this one owns.")
	propagationPolicy = param("query", "propagationPolicy", "string",
		"What happens to the objects this one owns: Orphan, Background or Foreground deletion.")
	resourceVersion = param("query", "resourceVersion", "string",
		"Which revision the answer may come from; empty means the latest, \"0\" any.")
	resourceVersionMatch = param("query", "resourceVersionMatch", "string",
		"How resourceVersion applies to a list: NotOlderThan or Exact.")
	sendInitialEvents = param("query", "sendInitialEvents", "boolean",
		"With watch=true, first sends every existing object as an ADDED event, then a BOOKMARK annotated k8s.io/initial-events-end.")
	timeoutSeconds = param("query", "timeoutSeconds", "integer",
		"Ends the list or watch after this many seconds, whatever happens meanwhile.")
	watch = param("query", "watch", "boolean",
		"Streams the changes to the selected objects as ADDED, MODIFIED and DELETED events instead of listing them.")

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
	return param("path", "name", "string", "The "+kind+"'s name.")
}
