package forward

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/setpoint/setpoint/internal/storage"
)

// batchPath is the one path of the peer protocol.
const batchPath = "/forward/v1/batch"

// peerServer serves other replicas' writes on the peer listener while
// this replica is the writer.
type peerServer struct {
	local    storage.Writer
	maxBytes int64
	log      *slog.Logger
	// leading is the term in effect, nil when this replica does not lead.
	leading atomic.Pointer[term]
	// offered is the term whose certificate the listener serves: the
	// leading one, or the candidate for the next election.
	offered atomic.Pointer[term]
	// mu serializes lead, stepDown and candidate.
	mu sync.Mutex
	// served counts the ops applied for peers.
	served atomic.Int64
}

func newPeerServer(local storage.Writer, maxBytes int64, log *slog.Logger) (*peerServer, error) {
	p := &peerServer{local: local, maxBytes: maxBytes, log: log}
	t, err := newTerm()
	if err != nil {
		return nil, err
	}
	p.offered.Store(t)
	return p, nil
}

// httpServer returns the server for the peer listener: TLS with the
// offered term's certificate, HTTP/1.1 (see newPeerClient), small headers.
func (p *peerServer) httpServer() *http.Server {
	return &http.Server{
		Handler:      p,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS13,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return &p.offered.Load().cert, nil
			},
		},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}

// candidate returns the term to publish if this replica wins the next
// election (the leading one while it leads).
func (p *peerServer) candidate() *term { return p.offered.Load() }

// lead starts term t and reports whether it is new.
func (p *peerServer) lead(t *term) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leading.Swap(t) != t
}

// stepDown ends the term, if any, so that peers' requests are refused,
// offers a new candidate, and reports whether a term ended.
func (p *peerServer) stepDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leading.Swap(nil) == nil {
		return false
	}
	if t, err := newTerm(); err == nil {
		p.offered.Store(t)
	} else {
		// The old term's token is no longer accepted, whatever the
		// certificate; the next term reuses it.
		p.log.Warn("forward: make the next term's certificate", "err", err)
	}
	return true
}

// refuse answers a request refused as a whole; nothing was applied.
func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

// ServeHTTP applies a batch of a peer's writes: it checks the path, that
// this replica leads, the token and the body (refusing with 404, 405, 421,
// 401, 413 or 400 and applying nothing), then hands every op to the local
// store at once, so they join one group commit, and answers their results.
func (p *peerServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path != batchPath:
		refuse(w, http.StatusNotFound, "not found")
		return
	case r.Method != http.MethodPost:
		refuse(w, http.StatusMethodNotAllowed, "only POST")
		return
	}
	t := p.leading.Load()
	if t == nil {
		refuse(w, http.StatusMisdirectedRequest, "not the storage writer")
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	got, err := hex.DecodeString(token)
	if !ok || err != nil || subtle.ConstantTimeCompare(got, t.token) != 1 {
		refuse(w, http.StatusUnauthorized, "wrong token")
		return
	}
	if r.ContentLength > p.maxBytes {
		refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", p.maxBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.maxBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", p.maxBytes))
		return
	case err != nil:
		refuse(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	ws, err := decodeRequest(body, maxOps)
	if err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	results := make([]result, len(ws))
	kinds := make([]kind, len(ws))
	var wg sync.WaitGroup
	for i, op := range ws {
		kinds[i] = op.kind
		wg.Go(func() {
			ctx := r.Context()
			if op.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, op.timeout)
				defer cancel()
			}
			obj, err := apply(ctx, p.local, op)
			results[i] = result{obj: obj, err: err}
		})
	}
	wg.Wait()
	p.served.Add(int64(len(ws)))
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(appendResponse(nil, kinds, results))
}
