// Package webhook calls the admission webhooks of ValidatingWebhookConfigurations
// and MutatingWebhookConfigurations (admissionregistration.k8s.io/v1) on the
// writes the registry serves, as Kubernetes' API server does: it matches
// each webhook's rules, namespace and object selectors against the request,
// sends an admission.k8s.io/v1 AdmissionReview over HTTPS (trusting the
// webhook's caBundle, or the system roots without one), and applies the
// answer: JSONPatch mutations from mutating webhooks, run one after the
// other in name order; verdicts from validating webhooks, run in parallel.
// A webhook that cannot be called or answers something malformed fails the
// request or is skipped, as its failurePolicy says.
//
// The Dispatcher implements registry.WebhookAdmission; the registry keeps
// its configurations current and calls it on every write.
package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/setpoint/setpoint/internal/registry"
)

// DefaultMaxResponseBytes bounds a webhook's response body by default.
const DefaultMaxResponseBytes = 3 << 20

// maxPatchCopyBytes bounds how much a JSON patch may grow a document
// through copy operations, as Kubernetes' --json-patch-max-copy-bytes
// default does; without it a short patch of repeated copies doubles a
// document until memory runs out.
const maxPatchCopyBytes = 3 << 20

// Options configures a Dispatcher.
type Options struct {
	// MaxResponseBytes bounds a webhook's response body: a larger one is a
	// failed call. Default DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Logger records webhooks that failed and were skipped (failurePolicy
	// Ignore). Default slog.Default().
	Logger *slog.Logger
}

// Dispatcher runs admission webhooks. Its zero value is not usable; build
// it with New. It is safe for concurrent use.
type Dispatcher struct {
	maxResponse int64
	log         *slog.Logger
	// hooks is the compiled configuration in force, replaced whole by
	// Configure.
	hooks atomic.Pointer[hookSet]
	// mu guards clients, which Configure alone uses.
	mu sync.Mutex
	// clients holds one HTTP client per distinct caBundle, kept across
	// Configure calls so connections are reused.
	clients map[string]*http.Client
}

var _ registry.WebhookAdmission = (*Dispatcher)(nil)

// New builds a Dispatcher with no webhooks. It also bounds the growth
// copy operations may cause in any JSON patch this process applies (a
// process-wide setting of the JSON patch library, as Kubernetes sets it),
// unless a lower bound is already set.
func New(opts Options) *Dispatcher {
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	for {
		cur := atomic.LoadInt64(&jsonpatch.AccumulatedCopySizeLimit)
		if (cur > 0 && cur <= maxPatchCopyBytes) || atomic.CompareAndSwapInt64(&jsonpatch.AccumulatedCopySizeLimit, cur, maxPatchCopyBytes) {
			break
		}
	}
	d := &Dispatcher{maxResponse: opts.MaxResponseBytes, log: opts.Logger, clients: map[string]*http.Client{}}
	d.hooks.Store(&hookSet{})
	return d
}

// hookSet is a compiled configuration: the mutating webhooks in the order
// they run, and the validating ones.
type hookSet struct {
	mutating, validating []*hook
}

// hook is one webhook, compiled.
type hook struct {
	name          string
	url           string
	client        *http.Client
	rules         []admissionregistrationv1.RuleWithOperations
	failOpen      bool // failurePolicy Ignore
	equivalent    bool // matchPolicy Equivalent
	sideEffects   admissionregistrationv1.SideEffectClass
	timeout       time.Duration
	reinvoke      bool // reinvocationPolicy IfNeeded
	namespaceSel  labels.Selector
	objectSel     labels.Selector
	configErr     error // a selector or caBundle that cannot be used: every call fails
	configuration string
}

// Configure implements registry.WebhookAdmission: it compiles the
// configurations and puts them in force for the requests that start
// after it returns.
func (d *Dispatcher) Configure(mutating []*admissionregistrationv1.MutatingWebhookConfiguration, validating []*admissionregistrationv1.ValidatingWebhookConfiguration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	used := map[string]*http.Client{}
	set := &hookSet{}
	for _, c := range mutating {
		for _, w := range c.Webhooks {
			h := d.compile(used, c.Name, w.Name, w.ClientConfig, w.Rules, w.FailurePolicy, w.MatchPolicy, w.SideEffects, w.TimeoutSeconds, w.NamespaceSelector, w.ObjectSelector)
			h.reinvoke = w.ReinvocationPolicy != nil && *w.ReinvocationPolicy == admissionregistrationv1.IfNeededReinvocationPolicy
			set.mutating = append(set.mutating, h)
		}
	}
	for _, c := range validating {
		for _, w := range c.Webhooks {
			set.validating = append(set.validating, d.compile(used, c.Name, w.Name, w.ClientConfig, w.Rules, w.FailurePolicy, w.MatchPolicy, w.SideEffects, w.TimeoutSeconds, w.NamespaceSelector, w.ObjectSelector))
		}
	}
	d.hooks.Store(set)
	for ca, c := range d.clients {
		if used[ca] == nil {
			c.CloseIdleConnections()
		}
	}
	d.clients = used
}

// defaultTimeout is a webhook's timeout when its configuration has none
// (the stored configurations always have one, defaulted).
const defaultTimeout = 10 * time.Second

// compile builds the hook of one webhook; used collects the clients in use
// by caBundle.
func (d *Dispatcher) compile(used map[string]*http.Client, configuration, name string, cc admissionregistrationv1.WebhookClientConfig,
	rules []admissionregistrationv1.RuleWithOperations, failure *admissionregistrationv1.FailurePolicyType, match *admissionregistrationv1.MatchPolicyType,
	sideEffects *admissionregistrationv1.SideEffectClass, timeout *int32, nsSel, objSel *metav1.LabelSelector) *hook {
	h := &hook{
		name: name, configuration: configuration, rules: rules,
		failOpen:   failure != nil && *failure == admissionregistrationv1.Ignore,
		equivalent: match == nil || *match == admissionregistrationv1.Equivalent,
		timeout:    defaultTimeout,
	}
	if sideEffects != nil {
		h.sideEffects = *sideEffects
	}
	if timeout != nil && *timeout > 0 {
		h.timeout = time.Duration(*timeout) * time.Second
	}
	var errs []error
	var err error
	if h.namespaceSel, err = selector(nsSel); err != nil {
		errs = append(errs, err)
	}
	if h.objectSel, err = selector(objSel); err != nil {
		errs = append(errs, err)
	}
	switch {
	case cc.URL == nil:
		errs = append(errs, errors.New("the webhook has no url"))
	default:
		h.url = *cc.URL
		if h.client, err = d.client(used, cc.CABundle); err != nil {
			errs = append(errs, err)
		}
	}
	h.configErr = errors.Join(errs...)
	return h
}

// selector compiles a label selector; nil selects everything.
func selector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(s)
}

// client returns the HTTP client that trusts caBundle (the system roots
// when empty), reusing the one already built for it.
func (d *Dispatcher) client(used map[string]*http.Client, caBundle []byte) (*http.Client, error) {
	key := string(caBundle)
	if c := used[key]; c != nil {
		return c, nil
	}
	c := d.clients[key]
	if c == nil {
		tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
		if len(caBundle) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(caBundle) {
				return nil, errors.New("the caBundle holds no PEM certificate")
			}
			tlsConfig.RootCAs = pool
		}
		c = &http.Client{
			Transport: &http.Transport{
				TLSClientConfig:     tlsConfig,
				ForceAttemptHTTP2:   true,
				MaxIdleConnsPerHost: 16,
				IdleConnTimeout:     90 * time.Second,
			},
			// A webhook answers; it does not send the server elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	used[key] = c
	return c, nil
}

// CloseIdleConnections closes the connections to webhooks that are not in
// use; the registry calls it when it closes.
func (d *Dispatcher) CloseIdleConnections() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.clients {
		c.CloseIdleConnections()
	}
}
