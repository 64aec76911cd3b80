package controllers_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/seedfleet/seedfleet/controllers"
)

// TestMetricsEndpointNeedsAnAuthorizedToken runs the operator's metrics
// server as the operator configures it, on loopback, against the test API
// server: a scrape without a token is refused, one with a service account's
// token that may not get /metrics is forbidden, and one bound to the
// metrics-reader rules reads the metrics.
func TestMetricsEndpointNeedsAnAuthorizedToken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := freeLoopbackAddr(t)
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                controllers.MetricsServerOptions(addr, true, ""),
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}()

	ns := newNamespace(t)
	token := func(name string) string {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		mustCreate(t, sa)
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}
		if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
			t.Fatalf("token of %s: %v", name, err)
		}
		return tr.Status.Token
	}
	stranger, scraper := token("stranger"), token("prometheus")
	reader := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	mustCreate(t, reader)
	mustCreate(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "prometheus"}}})

	// The certificate is self-signed: the scraper trusts it blindly, as
	// the chart's ServiceMonitor does.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a self-signed test server on loopback
	}}
	scrape := func(bearer string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		return resp.StatusCode, string(body), err
	}
	eventually(t, 20*time.Second, "metrics served", func() error {
		_, _, err := scrape("")
		return err
	})
	tests := []struct {
		name   string
		bearer string
		want   []int
	}{
		{"no token", "", []int{http.StatusUnauthorized}},
		// controller-runtime's filter answers a token the API server does
		// not know with 500 "Authentication failed"; refused either way.
		{"token of an unknown user", "not-a-token", []int{http.StatusUnauthorized, http.StatusInternalServerError}},
		{"token without the rule", stranger, []int{http.StatusForbidden}},
		{"token of the metrics reader", scraper, []int{http.StatusOK}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				code int
				body string
			)
			// RBAC bindings reach the authorizer's cache within moments.
			eventually(t, 10*time.Second, "status "+fmt.Sprint(tt.want), func() error {
				var err error
				if code, body, err = scrape(tt.bearer); err != nil {
					return err
				}
				if !slices.Contains(tt.want, code) {
					return fmt.Errorf("status %d, want %d: %.200s", code, tt.want, body)
				}
				return nil
			})
			if code == http.StatusOK && !strings.Contains(body, "controller_runtime_") {
				t.Errorf("metrics lack controller-runtime's: %.500s", body)
			}
			if code != http.StatusOK && strings.Contains(body, "controller_runtime_") {
				t.Errorf("a refused scrape got the metrics")
			}
		})
	}
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port that was free a
// moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
