package apiserver

import (
	"mime"
	"strings"
)

// target is the shape of a response body beyond the object itself.
type target int

const (
	// targetObject sends objects and lists as they are.
	targetObject target = iota
	// targetTable sends a meta.k8s.io Table.
	targetTable
	// targetPartial sends PartialObjectMetadata (get, watch and writes).
	targetPartial
	// targetPartialList sends PartialObjectMetadataList (list).
	targetPartialList
)

// output is the negotiated response format.
type output struct {
	yaml   bool
	target target
	// metaVersion is the meta.k8s.io version asked for with a Table or
	// PartialObjectMetadata target ("v1" or "v1beta1").
	metaVersion string
	pretty      bool
	// contentType overrides the JSON Content-Type (aggregated discovery).
	contentType string
}

// metaGroup is the group of Table and PartialObjectMetadata.
const metaGroup = "meta.k8s.io"

// mediaRange is one entry of an Accept header.
type mediaRange struct {
	typ    string
	params map[string]string
}

// parseAccept splits an Accept header into its entries in order, skipping
// malformed ones and those with q=0.
func parseAccept(header string) []mediaRange {
	var out []mediaRange
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		typ, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok && strings.Trim(q, "0.") == "" {
			continue
		}
		out = append(out, mediaRange{typ: typ, params: params})
	}
	return out
}

// isJSON reports whether typ accepts JSON.
func isJSON(typ string) bool {
	return typ == "application/json" || typ == "*/*" || typ == "application/*"
}

// isYAML reports whether typ names YAML.
func isYAML(typ string) bool {
	return typ == "application/yaml"
}

// negotiate picks the response format for verb from the Accept header:
// the first entry the server can produce wins. An empty header means JSON.
// Table and PartialObjectMetadata are offered for the verbs Kubernetes
// transforms; YAML is not offered for watch streams. It fails with 406.
func negotiate(header, verb string, pretty bool) (output, error) {
	if strings.TrimSpace(header) == "" {
		return output{pretty: pretty}, nil
	}
	for _, m := range parseAccept(header) {
		yaml := isYAML(m.typ)
		if !yaml && !isJSON(m.typ) {
			continue
		}
		if yaml && verb == "watch" {
			continue
		}
		out := output{yaml: yaml, pretty: pretty}
		as, ok := m.params["as"]
		if !ok {
			return out, nil
		}
		if m.params["g"] != metaGroup || (m.params["v"] != "v1" && m.params["v"] != "v1beta1") {
			continue
		}
		out.metaVersion = m.params["v"]
		switch {
		case as == "Table":
			out.target = targetTable
		case as == "PartialObjectMetadata" && verb != "list" && verb != "deletecollection":
			out.target = targetPartial
		case as == "PartialObjectMetadataList" && (verb == "list" || verb == "deletecollection"):
			out.target = targetPartialList
		default:
			continue
		}
		return out, nil
	}
	return output{pretty: pretty}, errNotAcceptable()
}
