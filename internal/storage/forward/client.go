package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/setpoint/setpoint/internal/storage/postgres"
)

// refusedStatus holds the statuses with which the writer refuses a
// request as a whole, having applied none of its ops (see
// peerServer.ServeHTTP). Any other answer but 200 leaves the outcome
// unknown.
var refusedStatus = map[int]bool{
	http.StatusNotFound:              true,
	http.StatusMethodNotAllowed:      true,
	http.StatusMisdirectedRequest:    true,
	http.StatusUnauthorized:          true,
	http.StatusRequestEntityTooLarge: true,
	http.StatusBadRequest:            true,
}

// peerClient sends batches to one term of one writer.
type peerClient struct {
	rec       postgres.WriterRecord
	url, auth string
	transport *http.Transport
	client    *http.Client
	// downUntil (Unix nanoseconds) is when to try the writer again after
	// a send failed before reaching it.
	downUntil atomic.Int64
}

// newPeerClient returns a client that trusts only the certificate in rec.
func newPeerClient(rec postgres.WriterRecord) (*peerClient, error) {
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return nil, fmt.Errorf("parse the writer's certificate: %w", err)
	}
	if _, _, err := net.SplitHostPort(rec.Address); err != nil {
		return nil, fmt.Errorf("writer address %q: %w", rec.Address, err)
	}
	// A self-signed certificate in the roots verifies as a chain of its
	// own, so the writer must present exactly this one.
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	t := &http.Transport{
		DialContext:     (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: peerServerName, MinVersion: tls.VersionTLS13},
		// HTTP/1.1 with keep-alive, a connection per sender: measured
		// against HTTP/2 it spent about 8% less CPU per forwarded write
		// (fewer hand-overs between goroutines), at the same rate.
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSHandshakeTimeout: 5 * time.Second,
		IdleConnTimeout:     5 * time.Minute,
		MaxIdleConnsPerHost: 8,
		// The writer's error messages are short.
		MaxResponseHeaderBytes: 16 << 10,
	}
	return &peerClient{
		rec:       rec,
		url:       "https://" + rec.Address + batchPath,
		auth:      "Bearer " + hex.EncodeToString(rec.Token),
		transport: t,
		client:    &http.Client{Transport: t},
	}, nil
}

// usable reports whether the writer may be tried now.
func (c *peerClient) usable() bool { return time.Now().UnixNano() >= c.downUntil.Load() }

// markDown makes the client unusable for d.
func (c *peerClient) markDown(d time.Duration) { c.downUntil.Store(time.Now().Add(d).UnixNano()) }

// close drops the client's idle connections.
func (c *peerClient) close() { c.transport.CloseIdleConnections() }

// do sends a request of ops of the given kinds and returns their results.
// On error, sent reports whether the writer may have applied any op:
// false if the request never left (no connection, the writer's
// certificate not the published one) or the writer refused it as a
// whole.
func (c *peerClient) do(ctx context.Context, body []byte, kinds []kind, maxBytes int64) (_ []result, sent bool, _ error) {
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, wrote.Load(), err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	switch {
	case refusedStatus[resp.StatusCode]:
		return nil, false, fmt.Errorf("the writer refused the request: %s: %.200q", resp.Status, data)
	case resp.StatusCode != http.StatusOK:
		return nil, true, fmt.Errorf("the writer answered %s", resp.Status)
	case err != nil:
		return nil, true, fmt.Errorf("read the answer: %w", err)
	case int64(len(data)) > maxBytes:
		return nil, true, fmt.Errorf("answer over %d bytes", maxBytes)
	}
	rs, err := decodeResponse(data, kinds)
	if err != nil {
		return nil, true, err
	}
	return rs, true, nil
}
