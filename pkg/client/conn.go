package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// Bounds on what the client reads. A single object is limited to a few
// MiB by the server; lists are paged (see ListAll).
const (
	// defaultMaxObjectBytes bounds the answer for one object.
	defaultMaxObjectBytes = 32 << 20
	// defaultMaxListBytes bounds one page of a list.
	defaultMaxListBytes = 512 << 20
	// maxErrorBytes bounds the body of a failed request.
	maxErrorBytes = 1 << 20
)

// conn sends requests to one API server: the transport, base URL and rate
// limiter of a rest.Config. It is safe for concurrent use.
type conn struct {
	http    *http.Client
	base    *url.URL
	limiter flowcontrol.RateLimiter
	// maxObjectBytes and maxListBytes bound answers; tests lower them.
	maxObjectBytes int64
	maxListBytes   int64
}

// newConn builds a conn from cfg. The rate limit follows client-go: the
// config's RateLimiter, else QPS and Burst (5 and 10 when zero); a
// negative QPS turns it off.
func newConn(cfg *rest.Config) (*conn, error) {
	if cfg == nil {
		return nil, fmt.Errorf("client: nil rest.Config")
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client: build HTTP client: %w", err)
	}
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client: server URL: %w", err)
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	limiter := cfg.RateLimiter
	if limiter == nil && cfg.QPS >= 0 {
		qps, burst := cfg.QPS, cfg.Burst
		if qps == 0 {
			qps = rest.DefaultQPS
		}
		if burst == 0 {
			burst = rest.DefaultBurst
		}
		limiter = flowcontrol.NewTokenBucketRateLimiter(qps, burst)
	}
	return &conn{http: hc, base: base, limiter: limiter, maxObjectBytes: defaultMaxObjectBytes, maxListBytes: defaultMaxListBytes}, nil
}

// request is one API call.
type request struct {
	method      string
	path        string
	query       url.Values
	contentType string
	body        []byte
	// accept is the Accept header; default application/json.
	accept string
	// verb, resource and name describe the call in errors built from
	// answers that carry no Status.
	verb     string
	resource schema.GroupResource
	name     string
}

// maxRetries is how many times a request is sent again when the server
// asks for it (429 or 5xx with Retry-After), as client-go does.
const maxRetries = 10

// send makes the request and returns the answer once its status says
// success. Answers of 429 or 5xx with Retry-After are sent again after
// the time the server asks for, up to maxRetries times. Other answers become
// *apierrors.StatusError. The caller closes the body.
func (c *conn) send(ctx context.Context, r request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.sendOnce(ctx, r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("client: %s %s: read error answer %d: %w", r.verb, r.resource, resp.StatusCode, err)
		}
		wait, retry := retryAfter(resp)
		if !retry || attempt == maxRetries {
			return nil, statusError(resp, data, r)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("client: %s %s: waiting to retry: %w", r.verb, r.resource, ctx.Err())
		}
	}
}

// retryAfter says whether resp asks to send the request again, and when:
// a 429 or 5xx answer with Retry-After in seconds, as client-go reads it.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
		return 0, false
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 0 {
		return 0, false
	}
	return time.Duration(secs) * time.Second, true
}

// sendOnce sends the request once.
func (c *conn) sendOnce(ctx context.Context, r request) (*http.Response, error) {
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, fmt.Errorf("client: %s %s: rate limiter: %w", r.verb, r.resource, err)
		}
	}
	u := *c.base
	u.Path += r.path
	u.RawPath = ""
	u.RawQuery = r.query.Encode()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.verb, r.resource, err)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.verb, r.resource, err)
	}
	return resp, nil
}

// do makes the request and returns the answer's body, at most limit bytes.
func (c *conn) do(ctx context.Context, r request, limit int64) ([]byte, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: %s %s answered %d bytes, the limit is %d", ErrResponseTooLarge, r.verb, r.resource, resp.ContentLength, limit)
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: read answer: %w", r.verb, r.resource, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: %s %s answered more than %d bytes", ErrResponseTooLarge, r.verb, r.resource, limit)
	}
	return buf.Bytes(), nil
}

// statusError turns a failed answer into a *apierrors.StatusError: the
// Status in its body, or one made from the HTTP code when there is none.
func statusError(resp *http.Response, body []byte, r request) error {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		if st.Code == 0 {
			st.Code = int32(resp.StatusCode)
		}
		return &apierrors.StatusError{ErrStatus: st}
	}
	retryAfter, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return apierrors.NewGenericServerResponse(resp.StatusCode, r.verb, r.resource, r.name, string(body), retryAfter, true)
}
