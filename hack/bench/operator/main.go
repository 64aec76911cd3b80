// Command operator measures the operator at scale on a real API server
// (envtest): how long 1,000 AgentVaults across 3 SeedNodes take to reach
// Placed, against the baseline of merely creating them, and how many writes
// the operator makes to the API server during 30 s of idle afterwards.
//
//	go run ./hack/bench/operator [-vaults 1000] [-idle 30s] [-smoke]
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/controllers"
	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/internal/envtestutil"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

const namespace = "bench"

func main() {
	vaults := flag.Int("vaults", 1000, "AgentVaults to create")
	seedNodes := flag.Int("seednodes", 3, "SeedNodes to spread them over")
	idle := flag.Duration("idle", 30*time.Second, "idle period in which API writes are counted")
	smoke := flag.Bool("smoke", false, "tiny run: proves the driver works")
	flag.Parse()
	if *smoke {
		*vaults, *idle = 30, 3*time.Second
	}
	if err := run(*vaults, *seedNodes, *idle); err != nil {
		log.Fatal(err)
	}
}

func run(vaults, seedNodes int, idle time.Duration) error {
	env, err := envtestutil.StartEnv()
	if err != nil {
		return err
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	cfg := *env.Config
	cfg.QPS, cfg.Burst = controllers.DefaultKubeAPIQPS, controllers.DefaultKubeAPIBurst // as `seedfleet operator`
	mgr, err := ctrl.NewManager(&cfg, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Cache: controllers.CacheOptions()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := controllers.Setup(ctx, mgr, controllers.Options{SeedImage: "seedfleet:bench"}); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			log.Print(err)
		}
	}()
	c := env.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return err
	}
	for i := range seedNodes {
		sn := &seedv1.SeedNode{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("seeds-%d", i)},
			Spec: seedv1.SeedNodeSpec{Replicas: 3}}
		if err := c.Create(ctx, sn); err != nil {
			return err
		}
	}

	// Baseline: the time the API server takes to create the objects at all.
	objs := make([]*seedv1.AgentVault, vaults)
	for i := range objs {
		pub, _, _ := ed25519.GenerateKey(nil)
		ns, _, _ := ed25519.GenerateKey(nil)
		objs[i] = &seedv1.AgentVault{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("vault-%04d", i)},
			Spec: seedv1.AgentVaultSpec{AgentDID: identity.DIDKey(pub), NamespaceID: vault.NamespaceID(ns).String(),
				SeedNodeRef: seedv1.SeedNodeReference{Name: fmt.Sprintf("seeds-%d", i%seedNodes)}, Replicas: 2}}
	}
	start := time.Now()
	if err := createAll(ctx, c, objs); err != nil {
		return err
	}
	created := time.Since(start)
	fmt.Fprintf(os.Stderr, "created %d AgentVaults in %s; waiting for Placed\n", vaults, created.Round(time.Millisecond))
	for {
		n, err := placed(ctx, c)
		if err != nil {
			return err
		}
		if n == vaults {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("only %d of %d AgentVaults Placed after 10 minutes", n, vaults)
		}
		time.Sleep(200 * time.Millisecond)
	}
	placedIn := time.Since(start)

	// Idle: count the writes to the operator's kinds (everything but the API
	// server's own leases and the like).
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let in-flight reconciles finish
	before, err := writes(ctx, cs)
	if err != nil {
		return err
	}
	time.Sleep(idle)
	after, err := writes(ctx, cs)
	if err != nil {
		return err
	}
	tag := strconv.Itoa(vaults)
	benchutil.Bench("operator_create_"+tag+"_seconds", created.Seconds(), "s")
	benchutil.Bench("operator_placed_"+tag+"_seconds", placedIn.Seconds(), "s")
	benchutil.Bench("operator_placed_vs_create_ratio", placedIn.Seconds()/created.Seconds(), "x")
	benchutil.Bench(fmt.Sprintf("operator_idle_writes_%.0fs", idle.Seconds()), after-before, "writes")
	return nil
}

func createAll(ctx context.Context, c client.Client, objs []*seedv1.AgentVault) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(objs))
	work := make(chan *seedv1.AgentVault)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				if err := c.Create(ctx, o); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}

func placed(ctx context.Context, c client.Client) (int, error) {
	list := &seedv1.AgentVaultList{}
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return 0, err
	}
	n := 0
	for _, av := range list.Items {
		if meta.IsStatusConditionTrue(av.Status.Conditions, string(seedv1.ConditionPlaced)) {
			n++
		}
	}
	return n, nil
}

// operatorResources are the kinds the operator writes.
var operatorResources = map[string]bool{"seednodes": true, "agentvaults": true, "statefulsets": true, "services": true,
	"configmaps": true, "secrets": true, "poddisruptionbudgets": true, "events": true}

// writes sums the API server's count of mutating requests to those kinds.
func writes(ctx context.Context, cs *kubernetes.Clientset) (float64, error) {
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	total := 0.0
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels := line[strings.IndexByte(line, '{')+1 : strings.LastIndexByte(line, '}')]
		if !mutating(label(labels, "verb")) || !operatorResources[label(labels, "resource")] {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[strings.LastIndexByte(line, '}')+1:]), 64)
		if err == nil {
			total += v
		}
	}
	return total, sc.Err()
}

func mutating(verb string) bool {
	switch verb {
	case "POST", "PUT", "PATCH", "DELETE", "APPLY":
		return true
	}
	return false
}

func label(labels, name string) string {
	i := strings.Index(labels, name+`="`)
	if i < 0 {
		return ""
	}
	rest := labels[i+len(name)+2:]
	return rest[:strings.IndexByte(rest, '"')]
}
