package cmd

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/controllers"
)

// operatorOptions are the flags of `seedfleet operator`.
type operatorOptions struct {
	kubeconfig             string
	metricsAddr, probeAddr string
	metricsSecure          bool
	metricsCertDir         string
	leaderElect            bool
	leaderElectionNS       string
	seedImage              string
	pollInterval           time.Duration
	qps                    float32
	burst                  int
}

func newOperatorCmd() *cobra.Command {
	o := operatorOptions{}
	c := &cobra.Command{
		Use:   "operator",
		Short: "Run the Kubernetes operator that reconciles SeedNodes and AgentVaults",
		Long: `Run the Seedfleet operator. It reads the kubeconfig from --kubeconfig, $KUBECONFIG, or the pod's
service account, and reconciles SeedNode objects into StatefulSets of seed pods and AgentVault objects
into vault placements on those pods. Seed pods run the image given by spec.image, or --seed-image.`,
		Example: `  seedfleet operator --seed-image registry.example.org/seedfleet:0.1.0
  seedfleet operator --leader-elect --metrics-bind-address :8443
  seedfleet operator --metrics-bind-address 127.0.0.1:8080 --metrics-secure=false   # a local run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runOperator(cmd, o) },
	}
	f := c.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then the pod's service account)")
	f.StringVar(&o.metricsAddr, "metrics-bind-address", controllers.DefaultMetricsBindAddress, "address of the Prometheus metrics endpoint; 0 turns it off")
	f.BoolVar(&o.metricsSecure, "metrics-secure", true, "serve metrics over HTTPS to clients the API server authenticates and authorizes (get on /metrics, as the metrics-reader ClusterRole grants); false serves plain HTTP to anyone")
	f.StringVar(&o.metricsCertDir, "metrics-cert-dir", "", "directory with tls.crt and tls.key for the metrics endpoint (default: a self-signed certificate)")
	f.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	f.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader, so that several operator replicas can run and only one acts")
	f.StringVar(&o.leaderElectionNS, "leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the leader election lease (default: $POD_NAMESPACE)")
	f.StringVar(&o.seedImage, "seed-image", os.Getenv("SEEDFLEET_SEED_IMAGE"), "image of seed pods whose SeedNode sets no spec.image (env SEEDFLEET_SEED_IMAGE)")
	f.DurationVar(&o.pollInterval, "poll-interval", controllers.DefaultPollInterval, "how often healthy seed pods' admin API is read")
	f.Float32Var(&o.qps, "kube-api-qps", controllers.DefaultKubeAPIQPS, "requests per second to the API server")
	f.IntVar(&o.burst, "kube-api-burst", controllers.DefaultKubeAPIBurst, "burst of requests to the API server")
	return c
}

func runOperator(cmd *cobra.Command, o operatorOptions) error {
	if o.pollInterval < time.Second || o.pollInterval > time.Hour {
		return fmt.Errorf("--poll-interval %s: want 1s to 1h (how often a healthy seed pod's admin API is read)", o.pollInterval)
	}
	ctrl.SetLogger(logr.FromSlogHandler(slog.Default().Handler()))
	applyMemoryLimit()
	cfg, err := kubeConfig(o.kubeconfig)
	if err != nil {
		return fmt.Errorf("no Kubernetes API server configured (use --kubeconfig or $KUBECONFIG outside a cluster): %w", err)
	}
	cfg.QPS, cfg.Burst = o.qps, o.burst
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := seedv1.AddToScheme(scheme); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       controllers.MetricsServerOptions(o.metricsAddr, o.metricsSecure, o.metricsCertDir),
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "seedfleet-operator.seedfleet.io",
		LeaderElectionNamespace:       o.leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controllers.CacheOptions(),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	if err := controllers.Setup(ctx, mgr, controllers.Options{SeedImage: o.seedImage, PollInterval: o.pollInterval}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "seedfleet operator starting")
	return mgr.Start(ctx)
}

// kubeConfig loads the API server's address and credentials.
func kubeConfig(path string) (*rest.Config, error) {
	if path != "" {
		return clientcmd.BuildConfigFromFlags("", path)
	}
	return ctrl.GetConfig()
}
