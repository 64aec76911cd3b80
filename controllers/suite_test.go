package controllers_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/controllers"
	"github.com/seedfleet/seedfleet/internal/envtestutil"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// One API server and one operator (the real manager) for the package; each
// test works in its own namespace.
var (
	env *envtestutil.Env
	k8s client.Client // direct client: assertions never read the operator's cache
)

const testPoll = 300 * time.Millisecond

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	var err error
	env, err = envtestutil.StartEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	k8s = env.Client
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions(),
		NewClient:              writes.newClient,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := controllers.Setup(ctx, mgr, controllers.Options{SeedImage: "seedfleet:test", PollInterval: testPoll}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
	}
	return code
}

// writes counts the operator's write requests by namespace.
var writes = &writeCounter{n: map[string]int{}}

// writeCounter counts every write the operator's client sends (create,
// update, patch, apply, delete, status), by the namespace written to: an
// idle operator sends none, whether or not the API server would have
// changed anything.
type writeCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (w *writeCounter) add(ns string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n[ns]++
}

func (w *writeCounter) in(ns string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[ns]
}

// newClient is the manager's client, counting writes.
func (w *writeCounter) newClient(cfg *rest.Config, opts client.Options) (client.Client, error) {
	c, err := client.NewWithWatch(cfg, opts)
	if err != nil {
		return nil, err
	}
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			w.add(obj.GetNamespace())
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			w.add(obj.GetNamespace())
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			w.add(obj.GetNamespace())
			return c.Patch(ctx, obj, patch, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			ns := ""
			if o, ok := obj.(interface{ GetNamespace() string }); ok {
				ns = o.GetNamespace()
			} else if o, ok := obj.(interface{ GetNamespace() *string }); ok && o.GetNamespace() != nil {
				ns = *o.GetNamespace()
			}
			w.add(ns)
			return c.Apply(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			w.add(obj.GetNamespace())
			return c.Delete(ctx, obj, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			w.add(obj.GetNamespace())
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			w.add(obj.GetNamespace())
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}), nil
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-") + fmt.Sprintf("-%d", time.Now().UnixNano()%100000)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return name
}

// eventually polls cond until it returns nil, failing with its last error
// after the deadline.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(t *testing.T, obj client.Object, ns, name string) error {
	t.Helper()
	return k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
}

func condition(conds []metav1.Condition, typ seedv1.ConditionType) *metav1.Condition {
	return meta.FindStatusCondition(conds, string(typ))
}

// wantCondition checks a condition's status and reason (any reason when
// empty), and that it says which generation it describes.
func wantCondition(conds []metav1.Condition, typ seedv1.ConditionType, status metav1.ConditionStatus, reason seedv1.ConditionReason) error {
	c := condition(conds, typ)
	switch {
	case c == nil:
		return fmt.Errorf("no %s condition", typ)
	case c.Status != status || (reason != "" && c.Reason != string(reason)):
		return fmt.Errorf("%s is %s/%s (%s), want %s/%s", typ, c.Status, c.Reason, c.Message, status, reason)
	case c.ObservedGeneration == 0:
		return fmt.Errorf("%s has no observedGeneration", typ)
	}
	return nil
}

func testDID(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return identity.DIDKey(pub)
}

func seedNode(ns, name string, replicas int32) *seedv1.SeedNode {
	return &seedv1.SeedNode{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       seedv1.SeedNodeSpec{Replicas: replicas},
	}
}

func agentVault(t *testing.T, ns, name, seedNodeName, vaultID string, replicas int32) *seedv1.AgentVault {
	return &seedv1.AgentVault{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: seedv1.AgentVaultSpec{AgentDID: testDID(t), NamespaceID: vaultID,
			SeedNodeRef: seedv1.SeedNodeReference{Name: seedNodeName}, Replicas: replicas},
	}
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
