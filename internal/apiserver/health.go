package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// serveHealth answers /healthz, /livez and /readyz with "ok", or 500 with
// the reason when check fails. With ?verbose it lists the checks run.
func (s *server) serveHealth(w http.ResponseWriter, r *http.Request, check func(context.Context) error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.writeError(w, r, output{}, errMethodNotAllowedPath(r))
		return
	}
	var err error
	if check != nil {
		err = check(r.Context())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, verbose := r.URL.Query()["verbose"]
	var b strings.Builder
	name := strings.TrimPrefix(r.URL.Path, "/")
	if verbose {
		if err != nil {
			fmt.Fprintf(&b, "[-]ready failed: %v\n", err)
		} else {
			b.WriteString("[+]ping ok\n")
			if check != nil {
				b.WriteString("[+]ready ok\n")
			}
		}
	}
	if err != nil {
		if !verbose {
			fmt.Fprintf(&b, "[-]ready failed: %v\n", err)
		}
		fmt.Fprintf(&b, "%s check failed\n", name)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(b.String()))
		return
	}
	if verbose {
		fmt.Fprintf(&b, "%s check passed\n", name)
	} else {
		b.WriteString("ok")
	}
	_, _ = w.Write([]byte(b.String()))
}
