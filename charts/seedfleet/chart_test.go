// Package seedfleet_test checks the Helm chart against a real API server
// (envtest: kube-apiserver and etcd, no kubelet, so pods never run): the
// chart lints, its values schema refuses bad values, its CRDs and RBAC rules
// match config/, it installs and upgrades, and the CRDs' validation refuses
// the invalid objects in controllers/testdata/invalid.
//
// The API server comes with the CRDs already installed from
// config/crd/bases, so the install uses --skip-crds; that the chart ships
// the same CRDs is checked byte for byte instead.
package seedfleet_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/internal/envtestutil"
)

const (
	chartDir     = "charts/seedfleet" // relative to the repository root, where Env.Run runs
	release      = "seedfleet"
	releaseNS    = "seedfleet-system"
	operatorName = "seedfleet-operator"        // Deployment, ServiceAccount, ClusterRole(Binding)
	electionName = "seedfleet-leader-election" // Role and RoleBinding
	metricsName  = "seedfleet-metrics"         // Service and ServiceMonitor
	readerName   = "seedfleet-metrics-reader"  // ClusterRole of who may scrape the operator
	seedsMonitor = "seedfleet-seeds"           // PodMonitor of the seed pods
	image        = "seedfleet:0.1.0"           // repository:appVersion
	syncHint     = "the chart is out of date with config/: run `make manifests` (it runs hack/sync-chart.sh)"
)

// env is one API server for every test in the package; tests use their own
// namespaces (and only TestInstall touches cluster-scoped objects), so they
// run in parallel.
var env *envtestutil.Env

func TestMain(m *testing.M) {
	e, err := envtestutil.StartEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func TestLint(t *testing.T) {
	t.Parallel()
	for _, values := range [][]string{
		nil, // the defaults
		{"--set", "replicaCount=2", "--set", "metrics.service.enabled=true", "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=operator"},
	} {
		args := append([]string{"lint", "--strict", chartDir}, values...)
		out, err := env.Run("helm", args...)
		if err != nil {
			t.Errorf("helm %q: %v\n%s", args, err, out)
			continue
		}
		for _, bad := range []string{"[WARNING]", "[ERROR]"} {
			if strings.Contains(out, bad) {
				t.Errorf("helm %q reports %s:\n%s", args, bad, out)
			}
		}
	}
}

func TestTemplateRefusesBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want []string // each must appear in helm's output
	}{
		{"unknown top-level key", []string{"--set", "replicas=2"}, []string{"additional properties 'replicas' not allowed"}},
		{"unknown nested key", []string{"--set", "image.name=x"}, []string{"/image", "additional properties 'name' not allowed"}},
		{"negative replicaCount", []string{"--set", "replicaCount=-1"}, []string{"/replicaCount", "minimum"}},
		{"replicaCount not a number", []string{"--set-string", "replicaCount=two"}, []string{"/replicaCount", "want integer"}},
		{"bad pullPolicy", []string{"--set", "image.pullPolicy=Sometimes"}, []string{"/image/pullPolicy", "IfNotPresent"}},
		{"metrics port out of range", []string{"--set", "metrics.service.port=70000"}, []string{"/metrics/service/port", "maximum"}},
		{"bad toleration effect", []string{"--set-json", `tolerations=[{"key":"a","effect":"Sometimes"}]`}, []string{"/tolerations/0/effect"}},
		{"pod label not a string", []string{"--set-json", `podLabels={"tier":1}`}, []string{"/podLabels/tier", "want string"}},
		{"ServiceMonitor without its API", []string{"--set", "metrics.serviceMonitor.enabled=true"}, []string{"monitoring.coreos.com/v1"}},
		{"PodMonitor without its API", []string{"--set", "metrics.podMonitor.enabled=true"}, []string{"monitoring.coreos.com/v1 PodMonitor"}},
		{"PodMonitor namespace not a name", []string{"--set", "metrics.podMonitor.namespaces[0]=Not_A_Name"}, []string{"/metrics/podMonitor/namespaces/0"}},
		{"pollInterval not a duration", []string{"--set", "pollInterval=soon"}, []string{"/pollInterval", "does not match pattern"}},
		{"existing ServiceAccount without a name", []string{"--set", "serviceAccount.create=false"}, []string{"serviceAccount.name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := env.Run("helm", append([]string{"template", release, chartDir}, tt.args...)...)
			if err == nil {
				t.Fatalf("helm template %v succeeded; want it refused", tt.args)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("helm template %v: output lacks %q:\n%s", tt.args, want, out)
				}
			}
		})
	}
}

func TestTemplateOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		args          []string
		leaderElect   bool
		image         string
		seedImage     string
		metricsSvc    bool
		monitor       bool
		podMonitor    bool
		pullSecret    string
		podAnnotation string
		pollInterval  string
	}{
		{name: "defaults", image: image, seedImage: image, pollInterval: "15s"},
		{name: "two replicas elect a leader", args: []string{"--set", "replicaCount=2"}, leaderElect: true, image: image, seedImage: image},
		{name: "leader election asked for", args: []string{"--set", "leaderElection.enabled=true"}, leaderElect: true, image: image, seedImage: image},
		{
			name:  "image tag, seed image, pull secret, pod annotation",
			args:  []string{"--set", "image.tag=v9", "--set", "seedImage=seeds:v8", "--set", "imagePullSecrets[0].name=regcred", "--set", "podAnnotations.team=p2p", "--set", "pollInterval=1m30s"},
			image: "seedfleet:v9", seedImage: "seeds:v8", pullSecret: "regcred", podAnnotation: "p2p", pollInterval: "1m30s",
		},
		{
			name:  "ServiceMonitor brings the metrics Service",
			args:  []string{"--set", "metrics.serviceMonitor.enabled=true", "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"},
			image: image, seedImage: image, metricsSvc: true, monitor: true,
		},
		{
			name:  "PodMonitor of the seed pods",
			args:  []string{"--set", "metrics.podMonitor.enabled=true", "--api-versions", "monitoring.coreos.com/v1/PodMonitor"},
			image: image, seedImage: image, podMonitor: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := render(t, tt.args...)
			var dep appsv1.Deployment
			objs.decode(t, "Deployment", operatorName, &dep)
			c := dep.Spec.Template.Spec.Containers[0]
			if c.Image != tt.image {
				t.Errorf("image %q, want %q", c.Image, tt.image)
			}
			if want := "--seed-image=" + tt.seedImage; !slices.Contains(c.Args, want) {
				t.Errorf("args %q lack %q", c.Args, want)
			}
			if tt.pollInterval != "" && !slices.Contains(c.Args, "--poll-interval="+tt.pollInterval) {
				t.Errorf("args %q lack --poll-interval=%s", c.Args, tt.pollInterval)
			}
			if got := slices.Contains(c.Args, "--leader-elect"); got != tt.leaderElect {
				t.Errorf("--leader-elect in args = %v, want %v (args %q)", got, tt.leaderElect, c.Args)
			}
			// Without leader election two operators must never run at once.
			wantStrategy := appsv1.RecreateDeploymentStrategyType
			if tt.leaderElect {
				wantStrategy = appsv1.RollingUpdateDeploymentStrategyType
			}
			if dep.Spec.Strategy.Type != wantStrategy {
				t.Errorf("strategy %q, want %q", dep.Spec.Strategy.Type, wantStrategy)
			}
			for _, kind := range []string{"Role", "RoleBinding"} {
				if got := objs.has(kind, electionName); got != tt.leaderElect {
					t.Errorf("%s %s rendered = %v, want %v (only with leader election)", kind, electionName, got, tt.leaderElect)
				}
			}
			if got := objs.has("Service", metricsName); got != tt.metricsSvc {
				t.Errorf("metrics Service rendered = %v, want %v", got, tt.metricsSvc)
			}
			if got := objs.has("ServiceMonitor", metricsName); got != tt.monitor {
				t.Errorf("ServiceMonitor rendered = %v, want %v", got, tt.monitor)
			}
			if tt.monitor {
				checkServiceMonitor(t, objs)
			}
			if got := objs.has("PodMonitor", seedsMonitor); got != tt.podMonitor {
				t.Errorf("PodMonitor rendered = %v, want %v", got, tt.podMonitor)
			}
			if !objs.has("ClusterRole", readerName) {
				t.Errorf("no ClusterRole %s: nobody could be allowed to scrape the operator", readerName)
			}
			var secrets []string
			for _, s := range dep.Spec.Template.Spec.ImagePullSecrets {
				secrets = append(secrets, s.Name)
			}
			var wantSecrets []string
			if tt.pullSecret != "" {
				wantSecrets = []string{tt.pullSecret}
			}
			if !slices.Equal(secrets, wantSecrets) {
				t.Errorf("imagePullSecrets %q, want %q", secrets, wantSecrets)
			}
			if got := dep.Spec.Template.Annotations["team"]; got != tt.podAnnotation {
				t.Errorf("pod annotation team=%q, want %q", got, tt.podAnnotation)
			}
		})
	}
}

// TestPodMonitor renders the seed pods' PodMonitor: it selects the pods the
// operator labels (exactly the labels seed pods carry) on their admin port,
// in every namespace or the ones listed.
func TestPodMonitor(t *testing.T) {
	t.Parallel()
	api := []string{"--set", "metrics.podMonitor.enabled=true", "--api-versions", "monitoring.coreos.com/v1/PodMonitor"}
	for _, tt := range []struct {
		name       string
		args       []string
		namespaces []string
	}{
		{name: "every namespace"},
		{name: "listed namespaces", args: []string{"--set", "metrics.podMonitor.namespaces={seeds,more-seeds}", "--set", "metrics.podMonitor.labels.release=prom"}, namespaces: []string{"seeds", "more-seeds"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var pm podMonitor
			render(t, append(api, tt.args...)...).decode(t, "PodMonitor", seedsMonitor, &pm)
			if pm.APIVersion != "monitoring.coreos.com/v1" || pm.Namespace != releaseNS {
				t.Errorf("PodMonitor %s in %q, want monitoring.coreos.com/v1 in %s", pm.APIVersion, pm.Namespace, releaseNS)
			}
			checkLabels(t, "PodMonitor", pm.Labels)
			// The labels the operator gives every seed pod (controllers' seedLabels).
			seedPod := labels.Set{"app.kubernetes.io/name": "seedfleet", "app.kubernetes.io/instance": "seeds",
				"app.kubernetes.io/managed-by": "seedfleet-operator", "app.kubernetes.io/component": "seed", "seedfleet.io/seednode": "seeds"}
			sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			if !sel.Matches(seedPod) {
				t.Errorf("selector %s does not select a seed pod (%v)", sel, seedPod)
			}
			operatorPod := labels.Set{"app.kubernetes.io/name": "seedfleet", "app.kubernetes.io/instance": release, "app.kubernetes.io/component": "operator"}
			if sel.Matches(operatorPod) {
				t.Errorf("selector %s selects the operator's pod", sel)
			}
			if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port != "admin" || pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" {
				t.Errorf("endpoints %+v, want /metrics on the admin port", pm.Spec.PodMetricsEndpoints)
			}
			ns := pm.Spec.NamespaceSelector
			if want := len(tt.namespaces) == 0; ns.Any != want || !slices.Equal(ns.MatchNames, tt.namespaces) {
				t.Errorf("namespaceSelector %+v, want any=%v, names %q", ns, want, tt.namespaces)
			}
			if len(tt.args) > 0 && pm.Labels["release"] != "prom" {
				t.Errorf("labels %v lack release=prom", pm.Labels)
			}
		})
	}
}

// podMonitor is the part of a monitoring.coreos.com/v1 PodMonitor the chart
// sets (the Prometheus Operator's types are not a dependency).
type podMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		PodMetricsEndpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// checkServiceMonitor: the operator's metrics are scraped over HTTPS with a
// token, as its metrics endpoint demands.
func checkServiceMonitor(t *testing.T, objs rendered) {
	t.Helper()
	var sm struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			Selector          metav1.LabelSelector `json:"selector"`
			NamespaceSelector struct {
				MatchNames []string `json:"matchNames"`
			} `json:"namespaceSelector"`
			Endpoints []struct {
				Port            string `json:"port"`
				Path            string `json:"path"`
				Scheme          string `json:"scheme"`
				BearerTokenFile string `json:"bearerTokenFile"`
				Interval        string `json:"interval,omitempty"`
				ScrapeTimeout   string `json:"scrapeTimeout,omitempty"`
				TLSConfig       struct {
					InsecureSkipVerify bool `json:"insecureSkipVerify"`
				} `json:"tlsConfig"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	objs.decode(t, "ServiceMonitor", metricsName, &sm)
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints %+v, want one", sm.Spec.Endpoints)
	}
	if e := sm.Spec.Endpoints[0]; e.Port != "metrics" || e.Scheme != "https" || e.BearerTokenFile == "" {
		t.Errorf("ServiceMonitor endpoint %+v, want https with a bearer token on the metrics port", e)
	}
}

// TestChartMatchesConfig guards against a chart that ships older CRDs or
// RBAC rules than the ones controller-gen last generated.
func TestChartMatchesConfig(t *testing.T) {
	t.Parallel()
	root := env.RepoRoot
	generated, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	shipped, err := filepath.Glob(filepath.Join(root, chartDir, "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := baseNames(shipped), baseNames(generated); !slices.Equal(got, want) {
		t.Fatalf("chart crds/ holds %q, config/crd/bases holds %q; %s", got, want, syncHint)
	}
	for _, path := range generated {
		name := filepath.Base(path)
		if !bytes.Equal(readFile(t, path), readFile(t, filepath.Join(root, chartDir, "crds", name))) {
			t.Errorf("%s/crds/%s differs from config/crd/bases/%s; %s", chartDir, name, name, syncHint)
		}
	}

	var chartRules []rbacv1.PolicyRule
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(root, chartDir, "files", "operator-rules.yaml")), &chartRules); err != nil {
		t.Fatalf("files/operator-rules.yaml: %v", err)
	}
	if want := configRules(t); !reflect.DeepEqual(chartRules, want) {
		t.Errorf("files/operator-rules.yaml rules differ from config/rbac/role.yaml's; %s\nchart:  %+v\nconfig: %+v", syncHint, chartRules, want)
	}
}

// TestInstall installs the chart with leader election and the metrics
// Service, checks what reached the API server, then upgrades to the defaults
// and checks that the leader-election RBAC went away.
func TestInstall(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := env.Client
	// --wait=hookOnly (Helm 4's spelling of --wait=false): there is no
	// kubelet, so the Deployment never becomes ready.
	out, err := env.Run("helm", "install", release, chartDir, "--namespace", releaseNS, "--create-namespace",
		"--skip-crds", "--wait=hookOnly", "--set", "replicaCount=2", "--set", "metrics.service.enabled=true")
	if err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	t.Cleanup(func() { // a failed run must not keep the next one (-count=N) from installing
		_, _ = env.Run("helm", "uninstall", release, "--namespace", releaseNS, "--ignore-not-found")
	})

	var dep appsv1.Deployment
	get(t, releaseNS, operatorName, &dep)
	checkLabels(t, "Deployment", dep.Labels)
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("Deployment replicas %v, want 2", dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	if pod.ServiceAccountName != operatorName {
		t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, operatorName)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	if ctr.Image != image || ctr.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %q (%s), want %q (IfNotPresent)", ctr.Image, ctr.ImagePullPolicy, image)
	}
	wantArgs := []string{"operator", "--metrics-bind-address=:8443", "--health-probe-bind-address=:8081", "--leader-elect", "--seed-image=" + image, "--poll-interval=15s"}
	if !slices.Equal(ctr.Args, wantArgs) {
		t.Errorf("args %q, want %q", ctr.Args, wantArgs)
	}
	if len(ctr.Env) != 1 || ctr.Env[0].Name != "POD_NAMESPACE" || ctr.Env[0].ValueFrom == nil ||
		ctr.Env[0].ValueFrom.FieldRef == nil || ctr.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("env %+v, want POD_NAMESPACE from metadata.namespace", ctr.Env)
	}
	for name, probe := range map[string]*corev1.Probe{"/healthz": ctr.LivenessProbe, "/readyz": ctr.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != name || probe.HTTPGet.Port.String() != "health" {
			t.Errorf("probe for %s: %+v, want an HTTP GET on the health port", name, probe)
		}
	}
	if !slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return p.Name == "health" && p.ContainerPort == 8081 }) ||
		!slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == 8443 }) {
		t.Errorf("ports %+v, want health 8081 and metrics 8443", ctr.Ports)
	}
	checkRestricted(t, pod.SecurityContext, ctr.SecurityContext)
	if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v, want the values' CPU request and memory limit", ctr.Resources)
	}

	var sa corev1.ServiceAccount
	get(t, releaseNS, operatorName, &sa)
	checkLabels(t, "ServiceAccount", sa.Labels)

	var cr rbacv1.ClusterRole
	get(t, "", operatorName, &cr)
	if want := configRules(t); !reflect.DeepEqual(cr.Rules, want) {
		t.Errorf("installed ClusterRole rules differ from config/rbac/role.yaml's:\ngot:  %+v\nwant: %+v", cr.Rules, want)
	}
	var crb rbacv1.ClusterRoleBinding
	get(t, "", operatorName, &crb)
	checkBinding(t, "ClusterRoleBinding", crb.RoleRef, crb.Subjects, "ClusterRole", operatorName)

	var role rbacv1.Role
	get(t, releaseNS, electionName, &role)
	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if !reflect.DeepEqual(role.Rules, wantRules) {
		t.Errorf("leader-election Role rules %+v, want %+v", role.Rules, wantRules)
	}
	var rb rbacv1.RoleBinding
	get(t, releaseNS, electionName, &rb)
	checkBinding(t, "RoleBinding", rb.RoleRef, rb.Subjects, "Role", electionName)

	var svc corev1.Service
	get(t, releaseNS, metricsName, &svc)
	if !reflect.DeepEqual(svc.Spec.Selector, dep.Spec.Selector.MatchLabels) {
		t.Errorf("metrics Service selects %v, the Deployment's pods carry %v", svc.Spec.Selector, dep.Spec.Selector.MatchLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8443 || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("metrics Service ports %+v, want 8443 to the metrics port", svc.Spec.Ports)
	}

	// Whoever is bound to the metrics-reader ClusterRole may scrape.
	var mr rbacv1.ClusterRole
	get(t, "", readerName, &mr)
	if want := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}; !reflect.DeepEqual(mr.Rules, want) {
		t.Errorf("ClusterRole %s rules %+v, want %+v", readerName, mr.Rules, want)
	}

	// Back to the defaults: one replica without leader election, so the
	// Deployment switches to Recreate and the leader-election RBAC goes.
	out, err = env.Run("helm", "upgrade", release, chartDir, "--namespace", releaseNS, "--reset-values", "--wait=hookOnly")
	if err != nil {
		t.Fatalf("helm upgrade to the defaults: %v\n%s", err, out)
	}
	get(t, releaseNS, operatorName, &dep)
	if dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || dep.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("after the upgrade: strategy %+v, want Recreate", dep.Spec.Strategy)
	}
	if args := dep.Spec.Template.Spec.Containers[0].Args; slices.Contains(args, "--leader-elect") {
		t.Errorf("after the upgrade: args %q still hold --leader-elect", args)
	}
	for _, obj := range []client.Object{&rbacv1.Role{}, &rbacv1.RoleBinding{}} {
		err := c.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: electionName}, obj)
		if !apierrors.IsNotFound(err) {
			t.Errorf("after the upgrade: %T %s: err %v, want NotFound", obj, electionName, err)
		}
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: metricsName}, &corev1.Service{}); !apierrors.IsNotFound(err) {
		t.Errorf("after the upgrade: metrics Service: err %v, want NotFound", err)
	}

	// Uninstalling leaves nothing behind, cluster-scoped RBAC included.
	if out, err := env.Run("helm", "uninstall", release, "--namespace", releaseNS); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}
	for _, o := range []struct {
		ns  string
		obj client.Object
	}{
		{releaseNS, &appsv1.Deployment{}}, {releaseNS, &corev1.ServiceAccount{}},
		{"", &rbacv1.ClusterRole{}}, {"", &rbacv1.ClusterRoleBinding{}},
	} {
		if err := c.Get(ctx, client.ObjectKey{Namespace: o.ns, Name: operatorName}, o.obj); !apierrors.IsNotFound(err) {
			t.Errorf("after helm uninstall: %T %s: err %v, want NotFound", o.obj, operatorName, err)
		}
	}
	if err := c.Get(ctx, client.ObjectKey{Name: readerName}, &rbacv1.ClusterRole{}); !apierrors.IsNotFound(err) {
		t.Errorf("after helm uninstall: ClusterRole %s: err %v, want NotFound", readerName, err)
	}
}

// sampleRuns numbers TestSamplesAndValidation's runs (-count=N).
var sampleRuns atomic.Int32

// TestSamplesAndValidation applies config/samples/ and checks that the CRDs'
// OpenAPI and CEL rules refuse each object in controllers/testdata/invalid
// and changes to immutable fields, with the rule's own message.
func TestSamplesAndValidation(t *testing.T) {
	t.Parallel()
	// A namespace of its own per run: envtest has no namespace controller,
	// so a deleted namespace never goes, and -count=N reuses the API server.
	ns := fmt.Sprintf("samples-%d", sampleRuns.Add(1))
	if out, err := env.Run("kubectl", "create", "namespace", ns); err != nil {
		t.Fatalf("kubectl create namespace: %v\n%s", err, out)
	}
	out, err := env.Run("kubectl", "apply", "--namespace", ns, "-f", "config/samples/")
	if err != nil {
		t.Fatalf("kubectl apply -f config/samples/: %v\n%s", err, out)
	}
	var seeds seedv1.SeedNode
	get(t, ns, "seeds", &seeds)
	vault := new(seedv1.AgentVault)
	get(t, ns, "laptop-agent", vault)
	if vault.Spec.SeedNodeRef.Name != seeds.Name {
		t.Errorf("sample AgentVault is on SeedNode %q, want the sample %q", vault.Spec.SeedNodeRef.Name, seeds.Name)
	}

	t.Run("invalid", func(t *testing.T) {
		// The message each file must be refused with; a file not listed
		// here must still be refused.
		messages := map[string]string{
			"bad-did.yaml":                   "agentDID must be an Ed25519 did:key",
			"bad-namespace.yaml":             "namespaceID must be 52 lowercase base32",
			"too-many-replicas.yaml":         "less than or equal to 32",
			"same-ports.yaml":                "ports.p2p and ports.admin must differ",
			"lowercase-modes.yaml":           `spec.dht.mode: Unsupported value: "server": supported values: "Server", "Client", "Off"`,
			"max-reservations-per-peer.yaml": `unknown field "spec.relay.limits.maxReservationsPerPeer"`,
			"self-service-replicas.yaml":     "spec.hosting.selfService.replicas must be at most spec.replicas",
			"self-service-idle-expiry.yaml":  "spec.hosting.selfService.idleExpiry must be 0s (off) or at least 1h",
			"self-service-admission.yaml":    `spec.hosting.selfService.admission: Unsupported value: "open"`,
			"self-service-quota.yaml":        "limits.defaultQuota.maxEntries must be at most limits.maxQuota.maxEntries",
		}
		dir := filepath.Join("controllers", "testdata", "invalid")
		entries, err := os.ReadDir(filepath.Join(env.RepoRoot, dir))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if e.IsDir() || filepath.Ext(e.Name()) != ".yaml" {
				continue
			}
			seen[e.Name()] = true
			file := filepath.Join(dir, e.Name())
			out, err := env.Run("kubectl", "apply", "--namespace", ns, "-f", file)
			if err == nil {
				t.Errorf("kubectl apply -f %s succeeded; want it refused:\n%s", file, out)
				continue
			}
			want, ok := messages[e.Name()]
			if !ok {
				want = "is invalid"
			}
			if !strings.Contains(out, want) {
				t.Errorf("kubectl apply -f %s: output lacks %q:\n%s", file, want, out)
			}
		}
		for name := range messages {
			if !seen[name] {
				t.Errorf("%s/%s is gone; update the table of expected messages", dir, name)
			}
		}
	})

	t.Run("immutable", func(t *testing.T) {
		sample := string(readFile(t, filepath.Join(env.RepoRoot, "config", "samples", "seedfleet_v1alpha1_agentvault.yaml")))
		tests := []struct {
			field, from, to string
		}{
			{"namespaceID", vault.Spec.NamespaceID, strings.Repeat("b", 52)},
			{"agentDID", vault.Spec.AgentDID, vault.Spec.AgentDID[:len(vault.Spec.AgentDID)-1] + "x"},
			{"seedNodeRef", "name: " + vault.Spec.SeedNodeRef.Name, "name: other-seeds"},
		}
		for _, tt := range tests {
			t.Run(tt.field, func(t *testing.T) {
				if tt.from == tt.to || !strings.Contains(sample, tt.from) {
					t.Fatalf("sample AgentVault has no %q to change to %q", tt.from, tt.to)
				}
				file := filepath.Join(t.TempDir(), "agentvault.yaml")
				if err := os.WriteFile(file, []byte(strings.Replace(sample, tt.from, tt.to, 1)), 0o600); err != nil {
					t.Fatal(err)
				}
				out, err := env.Run("kubectl", "apply", "--namespace", ns, "-f", file)
				if err == nil {
					t.Fatalf("kubectl apply of the AgentVault with another %s succeeded; want it refused:\n%s", tt.field, out)
				}
				if want := tt.field + " is immutable"; !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			})
		}
	})
}

// rendered is the output of helm template, by "Kind/name".
type rendered map[string][]byte

func render(t *testing.T, args ...string) rendered {
	t.Helper()
	out, err := env.Run("helm", append([]string{"template", release, chartDir, "--namespace", releaseNS}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	objs := rendered{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading helm template output: %v", err)
		}
		var meta struct {
			metav1.TypeMeta   `json:",inline"`
			metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("helm template output: %v\n%s", err, doc)
		}
		if meta.Kind == "" {
			continue // an empty document
		}
		key := meta.Kind + "/" + meta.Name
		if _, dup := objs[key]; dup {
			t.Fatalf("helm template renders %s twice", key)
		}
		objs[key] = doc
	}
	return objs
}

func (r rendered) has(kind, name string) bool {
	_, ok := r[kind+"/"+name]
	return ok
}

func (r rendered) decode(t *testing.T, kind, name string, into any) {
	t.Helper()
	doc, ok := r[kind+"/"+name]
	if !ok {
		t.Fatalf("helm template renders no %s %s", kind, name)
	}
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
}

// configRules are the rules of the ClusterRole controller-gen wrote.
func configRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(env.RepoRoot, "config", "rbac", "role.yaml")), &role); err != nil {
		t.Fatalf("config/rbac/role.yaml: %v", err)
	}
	if len(role.Rules) == 0 {
		t.Fatal("config/rbac/role.yaml has no rules")
	}
	return role.Rules
}

func get(t *testing.T, ns, name string, obj client.Object) {
	t.Helper()
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("get %T %s/%s: %v", obj, ns, name, err)
	}
}

func checkLabels(t *testing.T, what string, labels map[string]string) {
	t.Helper()
	want := map[string]string{
		"app.kubernetes.io/name":       "seedfleet",
		"app.kubernetes.io/instance":   release,
		"app.kubernetes.io/version":    "0.1.0",
		"app.kubernetes.io/managed-by": "Helm",
		"helm.sh/chart":                "seedfleet-0.1.0",
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("%s label %s=%q, want %q", what, k, labels[k], v)
		}
	}
}

func checkBinding(t *testing.T, what string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, kind, name string) {
	t.Helper()
	if ref.Kind != kind || ref.Name != name || ref.APIGroup != rbacv1.GroupName {
		t.Errorf("%s roleRef %+v, want %s %s", what, ref, kind, name)
	}
	want := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: operatorName, Namespace: releaseNS}}
	if !reflect.DeepEqual(subjects, want) {
		t.Errorf("%s subjects %+v, want %+v", what, subjects, want)
	}
}

// checkRestricted checks the pod meets the "restricted" Pod Security
// Standard as the chart promises: nonroot 65532, no privilege escalation, no
// capabilities, RuntimeDefault seccomp, read-only root filesystem.
func checkRestricted(t *testing.T, pod *corev1.PodSecurityContext, ctr *corev1.SecurityContext) {
	t.Helper()
	if pod == nil || ctr == nil {
		t.Fatalf("security contexts: pod %+v, container %+v; want both set", pod, ctr)
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	is65532 := func(id *int64) bool { return id != nil && *id == 65532 }
	if !isTrue(pod.RunAsNonRoot) || !is65532(pod.RunAsUser) || pod.SeccompProfile == nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v, want runAsNonRoot, runAsUser 65532, seccomp RuntimeDefault", pod)
	}
	if !isTrue(ctr.RunAsNonRoot) || !is65532(ctr.RunAsUser) || !isTrue(ctr.ReadOnlyRootFilesystem) ||
		ctr.AllowPrivilegeEscalation == nil || *ctr.AllowPrivilegeEscalation ||
		ctr.Capabilities == nil || !slices.Equal(ctr.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(ctr.Capabilities.Add) > 0 ||
		ctr.SeccompProfile == nil || ctr.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext %+v, want nonroot 65532, read-only root, no privilege escalation, drop ALL, seccomp RuntimeDefault", ctr)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func baseNames(paths []string) []string {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	slices.Sort(names)
	return names
}
