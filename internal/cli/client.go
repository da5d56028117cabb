package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// defaultServeKubeconfig is where "setpoint serve" with no flags writes its
// kubeconfig, relative to the working directory.
var defaultServeKubeconfig = filepath.Join(defaultDataDir, "kubeconfig")

// clientFlags are the connection flags every client verb takes.
type clientFlags struct {
	kubeconfig string
	namespace  string
	context    string
}

func (f *clientFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "",
		"path to the kubeconfig file (default: $KUBECONFIG, else "+defaultServeKubeconfig+" if it exists, else ~/.kube/config)")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace of namespaced resources (default: the kubeconfig context's, else \"default\")")
	fs.StringVar(&f.context, "context", "", "kubeconfig context to use (default: the current context)")
}

// clients are the connections to one API server a command works with.
type clients struct {
	config    *rest.Config
	dynamic   dynamic.Interface
	discovery discovery.CachedDiscoveryInterface
	// rest makes raw requests (Table output, watch streams).
	rest   rest.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	// namespace is the default namespace for namespaced objects.
	namespace string
	// namespaceForced is true when -n was given explicitly.
	namespaceForced bool
}

// loadingRules picks the kubeconfig files: the flag, then $KUBECONFIG, then
// the file "setpoint serve" writes by default, then ~/.kube/config.
func (f *clientFlags) loadingRules(getenv func(string) string) *clientcmd.ClientConfigLoadingRules {
	rules := &clientcmd.ClientConfigLoadingRules{}
	switch {
	case f.kubeconfig != "":
		rules.ExplicitPath = f.kubeconfig
	case getenv("KUBECONFIG") != "":
		rules.Precedence = filepath.SplitList(getenv("KUBECONFIG"))
	default:
		if _, err := os.Stat(defaultServeKubeconfig); err == nil {
			rules.ExplicitPath = defaultServeKubeconfig
		} else if home, err := os.UserHomeDir(); err == nil {
			rules.Precedence = []string{filepath.Join(home, ".kube", "config")}
		}
	}
	return rules
}

// newClients loads the kubeconfig and builds the dynamic and discovery
// clients and a REST mapper backed by cached discovery.
func (f *clientFlags) newClients(getenv func(string) string) (*clients, error) {
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.context}
	overrides.Context.Namespace = f.namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(f.loadingRules(getenv), overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	ns, forced, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig namespace: %w", err)
	}
	cfg.UserAgent = "setpoint-cli"
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build discovery client: %w", err)
	}
	cached := memory.NewMemCacheClient(dc)
	return &clients{
		config:          cfg,
		dynamic:         dyn,
		discovery:       cached,
		rest:            dc.RESTClient(),
		mapper:          restmapper.NewDeferredDiscoveryRESTMapper(cached),
		namespace:       ns,
		namespaceForced: forced || f.namespace != "",
	}, nil
}
