package apiserver

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/setpoint/setpoint/internal/apiserver/discovery"
)

// serveDiscovery serves /version, /api, /api/v1, /apis, /apis/<group>,
// /apis/<group>/<version> and /openapi from the discovery package. parts
// is the path split on "/". Discovery answers JSON whatever Accept says,
// except that /api and /apis answer aggregated discovery when asked.
func (s *server) serveDiscovery(w http.ResponseWriter, r *http.Request, parts []string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.writeError(w, r, output{}, errMethodNotAllowedPath(r))
		return
	}
	out := output{pretty: wantsPretty(r)}
	if parts[0] != "version" {
		// Discovery must list a CRD written through another replica once
		// its write was acknowledged: a consistent read of the registry,
		// on every request since a list cannot tell what it misses. It
		// costs one CurrentRevision read: server's BenchmarkDiscovery,
		// medians of 5, 0.70ms against 0.13ms without on PostgreSQL,
		// 0.12ms against 0.10ms on SQLite; discovery is not a hot path.
		if err := s.reg.Sync(r.Context()); err != nil {
			s.writeError(w, r, out, err)
			return
		}
	}
	var body any
	found := true
	switch {
	case len(parts) == 1 && parts[0] == "version":
		v := discovery.Version()
		body = &v
	case parts[0] == "openapi":
		s.serveOpenAPI(w, r, parts[1:])
		return
	case len(parts) == 1 && (parts[0] == "api" || parts[0] == "apis"):
		legacy := parts[0] == "api"
		switch {
		case discovery.AcceptsAggregated(r.Header.Get("Accept")):
			agg := discovery.Aggregated(s.reg, legacy)
			agg.Kind, agg.APIVersion = "APIGroupDiscoveryList", "apidiscovery.k8s.io/v2"
			out.contentType = discovery.AggregatedContentType
			body = agg
		case legacy:
			v := discovery.Legacy()
			v.Kind = "APIVersions"
			body = v
		default:
			g := discovery.Groups(s.reg)
			g.Kind, g.APIVersion = "APIGroupList", "v1"
			body = g
		}
	case len(parts) == 2 && parts[0] == "apis":
		g, ok := discovery.Group(s.reg, parts[1])
		if found = ok; ok {
			g.Kind, g.APIVersion = "APIGroup", "v1"
			body = g
		}
	case len(parts) == 2 && parts[0] == "api", len(parts) == 3 && parts[0] == "apis":
		group, version := "", parts[1]
		if parts[0] == "apis" {
			group, version = parts[1], parts[2]
		}
		list, ok := discovery.Resources(s.reg, group, version)
		if found = ok; ok {
			list.Kind, list.APIVersion = "APIResourceList", "v1"
			body = list
		}
	default:
		found = false
	}
	if !found {
		s.writeError(w, r, out, errNotFound())
		return
	}
	s.writeBody(w, out, http.StatusOK, body)
}

// serveOpenAPI serves /openapi/v3 (the index) and /openapi/v3/<path>.
//
// /openapi/v2 answers 404: the discovery package builds only OpenAPI v3.
// kubectl (explain, client-side validation) and client-go use v3 when the
// server lists it at /openapi/v3 and treat a missing v2 as "no schema".
func (s *server) serveOpenAPI(w http.ResponseWriter, r *http.Request, rest []string) {
	if len(rest) == 0 || rest[0] != "v3" {
		s.writeError(w, r, output{}, errNotFound())
		return
	}
	var doc []byte
	if len(rest) == 1 {
		doc = discovery.OpenAPIIndex(s.reg)
		w.Header().Set("Cache-Control", "no-cache, private")
	} else {
		path := strings.Join(rest[1:], "/")
		var ok bool
		if doc, ok = discovery.OpenAPI(s.reg, path); !ok {
			s.writeError(w, r, output{}, errNotFound())
			return
		}
		// A URL from the index carries the document's hash: a current one
		// may be cached for good, a stale one moves to the current URL.
		hash, _ := discovery.OpenAPIHash(s.reg, path)
		switch asked := r.URL.Query().Get("hash"); {
		case asked == "":
			w.Header().Set("Cache-Control", "no-cache, private")
		case asked == hash:
			w.Header().Set("Cache-Control", "public, immutable, max-age=31536000")
		default:
			u := *r.URL
			u.RawQuery = url.Values{"hash": {hash}}.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc)
}
