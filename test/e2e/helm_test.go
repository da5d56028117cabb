package e2e

import (
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// helmDriver is where Helm keeps its release records: Secrets, as the helm
// CLI does by default.
const helmDriver = "secret"

// Helm's markers on the objects of a release.
const (
	helmManagedBy        = "app.kubernetes.io/managed-by"
	helmReleaseName      = "meta.helm.sh/release-name"
	helmReleaseNamespace = "meta.helm.sh/release-namespace"
)

// The templates of the test chart. Each renders one custom resource from
// the chart's values.
var helmTemplates = map[string]string{
	"primary.yaml": `apiVersion: e2e.setpoint.dev/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-primary
  labels:
    app.kubernetes.io/instance: {{ .Release.Name }}
spec:
  size: {{ .Values.size }}
  color: {{ .Values.color | quote }}
`,
	"secondary.yaml": `apiVersion: e2e.setpoint.dev/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-secondary
  labels:
    app.kubernetes.io/instance: {{ .Release.Name }}
spec:
  size: {{ add .Values.size 1 }}
  color: blue
`,
	"gadget.yaml": `apiVersion: e2e.setpoint.dev/v1
kind: Gadget
metadata:
  name: {{ .Release.Name }}-gadget
spec:
  owner: {{ .Values.owner | quote }}
`,
}

// writeHelmChart writes a chart of custom resources into a new directory
// and loads it the way the helm CLI does: Chart.yaml at version, values.yaml,
// both test CRDs under crds/, and the named templates.
func writeHelmChart(t *testing.T, version string, templates ...string) *chart.Chart {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"Chart.yaml":  "apiVersion: v2\nname: widgets\ndescription: custom resources only\nversion: " + version + "\nappVersion: \"1.0\"\n",
		"values.yaml": "size: 3\ncolor: red\nowner: platform\n",
	}
	for name, crd := range map[string]runtime.Object{"crds/widgets.yaml": widgetCRD(), "crds/gadgets.yaml": gadgetCRD()} {
		b, err := yaml.Marshal(crd)
		if err != nil {
			t.Fatalf("marshal %s: %v", name, err)
		}
		files[name] = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n" + string(b)
	}
	for _, name := range templates {
		files["templates/"+name] = helmTemplates[name]
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := loader.Load(dir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

// newHelmConfig is Helm's action configuration for namespace ns of s, set
// up as the helm CLI sets it up from a kubeconfig.
func newHelmConfig(t *testing.T, s *server, ns string) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &s.kubeconfig
	flags.Namespace = &ns
	cacheDir := t.TempDir()
	flags.CacheDir = &cacheDir
	flags.WrapConfigFn = func(c *rest.Config) *rest.Config {
		c.QPS, c.Burst = s.config.QPS, s.config.Burst
		return c
	}
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, ns, helmDriver, t.Logf); err != nil {
		t.Fatalf("helm action configuration: %v", err)
	}
	return cfg
}

// TestHelmChartOfCustomResources installs, upgrades, rolls back and
// uninstalls a chart made only of custom resources with Helm's action
// package, and checks every step through client-go.
func TestHelmChartOfCustomResources(t *testing.T) {
	s := startServer(t)
	c := newClients(t, s)
	const ns, rel = "helm", "demo"
	createNamespace(t, c, ns)
	cfg := newHelmConfig(t, s, ns)
	ctx := testContext(t, 2*time.Minute)
	widgets, gadgets := c.widgets(ns), c.dynamic.Resource(gadgetsGVR)

	// helmOwned checks Helm's label and annotations on u.
	helmOwned := func(u *unstructured.Unstructured) {
		t.Helper()
		if got := u.GetLabels()[helmManagedBy]; got != "Helm" {
			t.Errorf("%s: label %s = %q, want Helm", u.GetName(), helmManagedBy, got)
		}
		a := u.GetAnnotations()
		if a[helmReleaseName] != rel || a[helmReleaseNamespace] != ns {
			t.Errorf("%s: annotations %v, want %s=%s and %s=%s", u.GetName(), a, helmReleaseName, rel, helmReleaseNamespace, ns)
		}
	}

	// Install, waiting for readiness: the CRDs of crds/ first, then the
	// templates.
	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace = rel, ns
	install.Wait, install.Timeout = true, time.Minute
	r1, err := install.Run(writeHelmChart(t, "0.1.0", "primary.yaml", "secondary.yaml", "gadget.yaml"), nil)
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	if r1.Info.Status != release.StatusDeployed || r1.Version != 1 {
		t.Fatalf("helm install: release %s version %d, want deployed version 1", r1.Info.Status, r1.Version)
	}
	wantReleaseSecrets(t, c, ns, rel, release.StatusDeployed)
	for _, name := range []string{widgetsCRD, gadgetsCRD} {
		crd, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil || !established(crd) {
			t.Fatalf("CRD %s from crds/: %v, established %v", name, err, err == nil && established(crd))
		}
	}
	primary := mustGet(t, ctx, widgets, rel+"-primary")
	helmOwned(primary)
	if got := nested[string](t, primary, "spec", "color"); got != "red" {
		t.Errorf("primary color %q after install, want red (values.yaml)", got)
	}
	if got := nested[int64](t, primary, "spec", "size"); got != 3 {
		t.Errorf("primary size %d after install, want 3", got)
	}
	secondary := mustGet(t, ctx, widgets, rel+"-secondary")
	helmOwned(secondary)
	if got := nested[int64](t, secondary, "spec", "size"); got != 4 {
		t.Errorf("secondary size %d, want 4 (size + 1)", got)
	}
	gadget := mustGet(t, ctx, gadgets, rel+"-gadget")
	helmOwned(gadget)
	if got := nested[string](t, gadget, "spec", "owner"); got != "platform" {
		t.Errorf("gadget owner %q, want platform", got)
	}

	// Upgrade to a chart version without the secondary template and with
	// a new color: the primary is patched, the secondary deleted, the
	// gadget left alone.
	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace = ns
	upgrade.Wait, upgrade.Timeout = true, time.Minute
	r2, err := upgrade.Run(rel, writeHelmChart(t, "0.2.0", "primary.yaml", "gadget.yaml"), map[string]any{"color": "green"})
	if err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	if r2.Info.Status != release.StatusDeployed || r2.Version != 2 {
		t.Fatalf("helm upgrade: release %s version %d, want deployed version 2", r2.Info.Status, r2.Version)
	}
	wantReleaseSecrets(t, c, ns, rel, release.StatusSuperseded, release.StatusDeployed)
	upgraded := mustGet(t, ctx, widgets, rel+"-primary")
	helmOwned(upgraded)
	if got := nested[string](t, upgraded, "spec", "color"); got != "green" {
		t.Errorf("primary color %q after upgrade, want green", got)
	}
	if upgraded.GetUID() != primary.GetUID() || upgraded.GetGeneration() != primary.GetGeneration()+1 {
		t.Errorf("primary after upgrade: uid %s generation %d, want the same object (uid %s) one generation on from %d",
			upgraded.GetUID(), upgraded.GetGeneration(), primary.GetUID(), primary.GetGeneration())
	}
	wantNotFound(t, ctx, widgets, rel+"-secondary")
	if g := mustGet(t, ctx, gadgets, rel+"-gadget"); g.GetResourceVersion() != gadget.GetResourceVersion() {
		t.Errorf("gadget changed by an upgrade that did not change it: resourceVersion %s -> %s", gadget.GetResourceVersion(), g.GetResourceVersion())
	}

	// Roll back to revision 1: the secondary comes back (a new object),
	// the primary is red again.
	rollback := action.NewRollback(cfg)
	rollback.Version = 1
	rollback.Wait, rollback.Timeout = true, time.Minute
	if err := rollback.Run(rel); err != nil {
		t.Fatalf("helm rollback: %v", err)
	}
	if got := nested[string](t, mustGet(t, ctx, widgets, rel+"-primary"), "spec", "color"); got != "red" {
		t.Errorf("primary color %q after rollback, want red", got)
	}
	restored := mustGet(t, ctx, widgets, rel+"-secondary")
	helmOwned(restored)
	if restored.GetUID() == secondary.GetUID() {
		t.Errorf("secondary after rollback has the uid %s of the deleted one", restored.GetUID())
	}

	wantReleaseSecrets(t, c, ns, rel, release.StatusSuperseded, release.StatusSuperseded, release.StatusDeployed)
	history, err := action.NewHistory(cfg).Run(rel)
	if err != nil {
		t.Fatalf("helm history: %v", err)
	}
	wantHistory := []release.Status{release.StatusSuperseded, release.StatusSuperseded, release.StatusDeployed}
	if len(history) != len(wantHistory) {
		t.Fatalf("helm history: %d revisions, want %d", len(history), len(wantHistory))
	}
	for i, h := range history {
		if h.Version != i+1 || h.Info.Status != wantHistory[i] {
			t.Errorf("helm history[%d]: version %d %s, want version %d %s", i, h.Version, h.Info.Status, i+1, wantHistory[i])
		}
	}

	// helm list and helm status, the latter with the release's objects
	// read back as Tables, as `helm status --show-resources` does.
	listed, err := action.NewList(cfg).Run()
	if err != nil {
		t.Fatalf("helm list: %v", err)
	}
	if len(listed) != 1 || listed[0].Name != rel || listed[0].Version != 3 || listed[0].Info.Status != release.StatusDeployed {
		t.Fatalf("helm list: %v, want %s at version 3, deployed", listed, rel)
	}
	status := action.NewStatus(cfg)
	status.ShowResources, status.ShowResourcesTable = true, true
	st, err := status.Run(rel)
	if err != nil {
		t.Fatalf("helm status: %v", err)
	}
	if st.Version != 3 || st.Info.Status != release.StatusDeployed {
		t.Errorf("helm status: version %d %s, want 3 deployed", st.Version, st.Info.Status)
	}
	wantRows := map[string][]string{
		"v1/Widget": {rel + "-primary", rel + "-secondary"},
		"v1/Gadget": {rel + "-gadget"},
	}
	for kind, want := range wantRows {
		got := tableNames(t, st.Info.Resources[kind])
		if !sameSet(got, want) {
			t.Errorf("helm status resources %s: %v, want tables of %v", kind, got, want)
		}
	}

	// Uninstall, waiting for the deletions: the objects and the release
	// records go; the CRDs stay, as Helm never deletes crds/.
	uninstall := action.NewUninstall(cfg)
	uninstall.Wait, uninstall.Timeout = true, time.Minute
	if _, err := uninstall.Run(rel); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	wantNotFound(t, ctx, widgets, rel+"-primary")
	wantNotFound(t, ctx, widgets, rel+"-secondary")
	wantNotFound(t, ctx, gadgets, rel+"-gadget")
	if _, err := c.apiext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, widgetsCRD, metav1.GetOptions{}); err != nil {
		t.Errorf("CRD %s after uninstall: %v, want it kept", widgetsCRD, err)
	}
	wantReleaseSecrets(t, c, ns, rel)
	if _, err := action.NewHistory(cfg).Run(rel); !errors.Is(err, driver.ErrReleaseNotFound) {
		t.Errorf("helm history after uninstall: %v, want %v", err, driver.ErrReleaseNotFound)
	}
	if listed, err := action.NewList(cfg).Run(); err != nil || len(listed) != 0 {
		t.Errorf("helm list after uninstall: %v, %v, want no releases", listed, err)
	}
}

// wantReleaseSecrets checks the Secrets in which Helm keeps release rel of
// namespace ns: one per revision, in order, named and labelled as Helm
// names and labels them, typed helm.sh/release.v1, with the statuses given.
func wantReleaseSecrets(t *testing.T, c *clients, ns, rel string, statuses ...release.Status) {
	t.Helper()
	list, err := c.core.CoreV1().Secrets(ns).List(testContext(t, 10*time.Second), metav1.ListOptions{
		LabelSelector: "owner=helm,name=" + rel,
	})
	if err != nil {
		t.Fatalf("list Helm's release Secrets: %v", err)
	}
	if len(list.Items) != len(statuses) {
		t.Fatalf("Helm's release Secrets: %d, want %d (one per revision)", len(list.Items), len(statuses))
	}
	version := func(s corev1.Secret) int {
		v, _ := strconv.Atoi(s.Labels["version"])
		return v
	}
	slices.SortFunc(list.Items, func(a, b corev1.Secret) int { return cmp.Compare(version(a), version(b)) })
	for i, sec := range list.Items {
		v := strconv.Itoa(i + 1)
		if want := "sh.helm.release.v1." + rel + ".v" + v; sec.Name != want || sec.Labels["version"] != v {
			t.Errorf("release Secret %d: %s version %s, want %s", i, sec.Name, sec.Labels["version"], want)
		}
		if sec.Type != "helm.sh/release.v1" {
			t.Errorf("release Secret %s: type %q, want helm.sh/release.v1", sec.Name, sec.Type)
		}
		if got := sec.Labels["status"]; got != statuses[i].String() {
			t.Errorf("release Secret %s: status label %q, want %q", sec.Name, got, statuses[i])
		}
		if len(sec.Data["release"]) == 0 {
			t.Errorf("release Secret %s: no release data", sec.Name)
		}
	}
}

// tableNames returns the names in the rows of the Tables Helm read for one
// kind, failing the test on anything but a Table.
func tableNames(t *testing.T, objs []runtime.Object) []string {
	t.Helper()
	var out []string
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok || u.GetKind() != "Table" {
			t.Fatalf("helm status resource %T %v, want a Table", o, o)
		}
		rows, _, _ := unstructured.NestedSlice(u.Object, "rows")
		for _, row := range rows {
			cells, _, _ := unstructured.NestedSlice(row.(map[string]any), "cells")
			if len(cells) == 0 {
				t.Fatalf("helm status: table row without cells: %v", row)
			}
			name, _ := cells[0].(string)
			out = append(out, name)
		}
	}
	return out
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s]--; seen[s] < 0 {
			return false
		}
	}
	return true
}

// TestHelmInstallRejectedBySchema installs a chart whose values break the
// CRD's schema: the install fails with the server's Invalid message and
// records a failed release, which an upgrade with good values then deploys.
func TestHelmInstallRejectedBySchema(t *testing.T) {
	s := startServer(t)
	c := newClients(t, s)
	const ns, rel = "helm", "bad"
	createNamespace(t, c, ns)
	cfg := newHelmConfig(t, s, ns)
	ctx := testContext(t, time.Minute)
	ch := writeHelmChart(t, "0.1.0", "primary.yaml")

	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace = rel, ns
	_, err := install.Run(ch, map[string]any{"color": "purple"})
	if err == nil || !strings.Contains(err.Error(), `spec.color: Unsupported value: "purple"`) {
		t.Fatalf("helm install with color purple: %v, want the server's Unsupported value error", err)
	}
	wantNotFound(t, ctx, c.widgets(ns), rel+"-primary")
	st, err := action.NewStatus(cfg).Run(rel)
	if err != nil {
		t.Fatalf("helm status: %v", err)
	}
	if st.Version != 1 || st.Info.Status != release.StatusFailed {
		t.Fatalf("helm status after the rejected install: version %d %s, want 1 failed", st.Version, st.Info.Status)
	}
	wantReleaseSecrets(t, c, ns, rel, release.StatusFailed)

	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace = ns
	r, err := upgrade.Run(rel, ch, map[string]any{"color": "blue"})
	if err != nil {
		t.Fatalf("helm upgrade with color blue: %v", err)
	}
	if r.Version != 2 || r.Info.Status != release.StatusDeployed {
		t.Fatalf("helm upgrade: version %d %s, want 2 deployed", r.Version, r.Info.Status)
	}
	wantReleaseSecrets(t, c, ns, rel, release.StatusSuperseded, release.StatusDeployed)
	if got := nested[string](t, mustGet(t, ctx, c.widgets(ns), rel+"-primary"), "spec", "color"); got != "blue" {
		t.Errorf("primary color %q after the upgrade, want blue", got)
	}
}
