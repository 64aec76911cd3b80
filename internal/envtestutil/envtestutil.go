// Package envtestutil starts a real kube-apiserver and etcd (envtest) for
// tests, with the Seedfleet CRDs installed. The binaries are built from the
// Go module proxy by hack/envtest-assets.sh and cached by version; a test
// run on a fresh machine builds them once (several minutes), later runs
// reuse them.
package envtestutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	kruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
)

// Env is a running API server for one test (or one test package).
type Env struct {
	// Config reaches the API server as an admin.
	Config *rest.Config
	// Client is a direct (uncached) client with the Seedfleet scheme.
	Client client.Client
	// Scheme knows the built-in kinds and the Seedfleet kinds.
	Scheme *kruntime.Scheme
	// Kubeconfig is a file kubectl and helm can use (system:masters).
	Kubeconfig string
	// Assets is the directory with kube-apiserver, etcd, kubectl and helm.
	Assets string
	// RepoRoot is the repository's top directory.
	RepoRoot string

	env *envtest.Environment
}

// Scheme returns a scheme with the built-in kinds and the Seedfleet kinds.
func Scheme() *kruntime.Scheme {
	s := kruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := seedv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// RepoRoot is the directory holding go.mod, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Assets returns the directory with the envtest binaries: KUBEBUILDER_ASSETS
// when set, otherwise what hack/envtest-assets.sh prints (building the
// binaries on first use).
func Assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	cmd := exec.Command("bash", filepath.Join(RepoRoot(), "hack", "envtest-assets.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("building the envtest binaries with hack/envtest-assets.sh failed (run it by hand to see why, then set KUBEBUILDER_ASSETS to the directory it prints): %w\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// Start runs an API server with the CRDs from config/crd/bases and stops it
// when t ends. It fails the test (never skips) when the binaries cannot be
// built.
func Start(t testing.TB) *Env {
	t.Helper()
	e, err := StartEnv()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return e
}

// StartEnv is Start for TestMain and benchmarks: the caller stops it.
func StartEnv() (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	root := RepoRoot()
	s := Scheme()
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                s,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	e := &Env{Config: cfg, Scheme: s, Assets: assets, RepoRoot: root, env: env}
	fail := func(err error) (*Env, error) {
		_ = env.Stop()
		return nil, err
	}
	if e.Client, err = client.New(cfg, client.Options{Scheme: s}); err != nil {
		return fail(fmt.Errorf("client: %w", err))
	}
	user, err := env.AddUser(envtest.User{Name: "seedfleet-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fail(fmt.Errorf("adding a kubeconfig user: %w", err))
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fail(fmt.Errorf("kubeconfig: %w", err))
	}
	dir, err := os.MkdirTemp("", "seedfleet-envtest-")
	if err != nil {
		return fail(err)
	}
	e.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, kc, 0o600); err != nil {
		return fail(err)
	}
	return e, nil
}

// Stop stops the API server and etcd and removes the kubeconfig.
func (e *Env) Stop() error {
	if e.Kubeconfig != "" {
		_ = os.RemoveAll(filepath.Dir(e.Kubeconfig))
	}
	return e.env.Stop()
}

// Tool returns the path of kubectl or helm from the assets directory.
func (e *Env) Tool(name string) string { return filepath.Join(e.Assets, name) }

// Run runs kubectl or helm against the API server from the repository root
// and returns its combined output.
func (e *Env) Run(name string, args ...string) (string, error) {
	cmd := exec.Command(e.Tool(name), args...)
	cmd.Dir = e.RepoRoot
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.Kubeconfig, "HELM_CACHE_HOME="+filepath.Join(filepath.Dir(e.Kubeconfig), "helm-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(filepath.Dir(e.Kubeconfig), "helm-config"), "HELM_DATA_HOME="+filepath.Join(filepath.Dir(e.Kubeconfig), "helm-data"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}
