package cmd

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/controllers"
	"github.com/seedfleet/seedfleet/internal/envtestutil"
	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// checkInvite parses the invite printed on out's first line and checks it
// against the fleet's name and key.
func checkInvite(t *testing.T, out, fleetName string, key ed25519.PrivateKey, uses int, expires time.Duration) string {
	t.Helper()
	line, _, _ := strings.Cut(out, "\n")
	inv, err := ticket.ParseInviteTicket(line)
	if err != nil {
		t.Fatalf("the first line %q: %v", line, err)
	}
	if err := inv.Verify(fleetName, key.Public().(ed25519.PublicKey), time.Now().Add(expires-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if inv.Uses != uses || time.Until(inv.NotAfter) > expires {
		t.Fatalf("invite %+v, want %d uses for %s", inv, uses, expires)
	}
	return line
}

// TestFleetInviteThroughAdminAPI: a seed of an Invite fleet mints an invite
// through its admin API with the token, drawn as a QR code on request; the
// invite admits an agent; a bad token and bad bounds are refused.
func TestFleetInviteThroughAdminAPI(t *testing.T) {
	ctx := context.Background()
	_, podKey, _ := ed25519.GenerateKey(nil)
	_, fleetKey, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "pod.key")
	if err := identity.Save(keyFile, podKey); err != nil {
		t.Fatal(err)
	}
	port := p2ptest.FreePort(t)
	id, _ := identity.PeerID(podKey.Public().(ed25519.PublicKey))
	seed := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, id)
	info, err := p2p.ParsePeerAddr(seed)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{DataDir: filepath.Join(dir, "data"), IdentityFile: keyFile,
		Listen: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)}, AdminListen: "127.0.0.1:0", AdminToken: "tok",
		DHT: node.DHTConfig{Mode: config.DHTOff}, FleetKey: fleetKey,
		Fleet: &node.FleetConfig{Members: fleet.Members{Pods: []peer.AddrInfo{info}, Replicas: 1},
			Policy: hosting.Policy{Fleet: "acme/seeds", Admission: fleet.Invite, FleetKey: fleetKey.Public().(ed25519.PublicKey)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	tokenFile, wrongToken := filepath.Join(dir, "token"), filepath.Join(dir, "wrong")
	for f, tok := range map[string]string{tokenFile: "tok\n", wrongToken: "nope\n"} {
		if err := os.WriteFile(f, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	out, errOut, code := run(t, ctx, "fleet", "invite", "--admin", n.AdminURL(), "--token-file", tokenFile, "--uses", "2", "--expires", "48h", "--qr")
	if code != 0 || !strings.Contains(errOut, "invite to fleet acme/seeds: 2 admission(s)") || strings.Count(out, "\n") < 10 {
		t.Fatalf("fleet invite: %q %q (exit %d)", out, errOut, code)
	}
	invite := checkInvite(t, out, "acme/seeds", fleetKey, 2, 48*time.Hour)

	home := filepath.Join(t.TempDir(), "laptop")
	if _, errOut, code := run(t, ctx, "agent", "init", "--home", home, "--name", "laptop"); code != 0 {
		t.Fatalf("agent init: %s", errOut)
	}
	if out, errOut, code := run(t, ctx, "host", "request", "agent", "--fleet", seed, "--invite", invite, "--home", home); code != 0 ||
		!strings.Contains(out, "the fleet hosts 1 vault(s) for this agent") {
		t.Fatalf("host request with the minted invite: %q %q (exit %d)", out, errOut, code)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--token-file", wrongToken}, "refused the token in " + wrongToken},
		{[]string{"--token-file", tokenFile, "--expires", "10s"}, "must be 1m0s to"},
		{[]string{"--token-file", tokenFile, "--uses", "-3"}, "uses -3"},
	} {
		args := append([]string{"fleet", "invite", "--admin", n.AdminURL()}, tc.args...)
		if _, errOut, code := run(t, ctx, args...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: %q (exit %d), want an error saying %q", tc.args, errOut, code, tc.want)
		}
	}
}

// TestFleetInviteFromSeedNode: with --seednode the invite is signed with the
// fleet key Secret, read through the kubeconfig; a SeedNode that does not
// admit by invite is refused with what to change.
func TestFleetInviteFromSeedNode(t *testing.T) {
	ctx := context.Background()
	env := envtestutil.Start(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "foundation"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	_, fleetKey, _ := ed25519.GenerateKey(nil)
	pem, err := identity.EncodePEM(fleetKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, admission := range map[string]seedv1.Admission{"seeds": seedv1.AdmissionInvite, "open": seedv1.AdmissionOpen} {
		sn := &seedv1.SeedNode{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name},
			Spec: seedv1.SeedNodeSpec{Hosting: seedv1.HostingSpec{SelfService: &seedv1.SelfServiceSpec{Admission: admission}}}}
		if err := env.Client.Create(ctx, sn); err != nil {
			t.Fatal(err)
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: controllers.FleetKeySecretName(sn)},
			Data: map[string][]byte{controllers.KeyFleetKey: pem}}
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	out, errOut, code := run(t, ctx, "fleet", "invite", "--seednode", "foundation/seeds", "--kubeconfig", env.Kubeconfig, "--uses", "5", "--expires", "24h")
	if code != 0 || !strings.Contains(errOut, "invite to fleet foundation/seeds: 5 admission(s)") {
		t.Fatalf("fleet invite --seednode: %q %q (exit %d)", out, errOut, code)
	}
	checkInvite(t, out, "foundation/seeds", fleetKey, 5, 24*time.Hour)

	for _, tc := range []struct{ seednode, want string }{
		{"foundation/open", "admits Open, not by invite"},
		{"foundation/missing", `seednodes.seedfleet.io "missing" not found`},
		{"seeds", "want NAMESPACE/NAME"},
	} {
		if _, errOut, code := run(t, ctx, "fleet", "invite", "--seednode", tc.seednode, "--kubeconfig", env.Kubeconfig); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("--seednode %s: %q (exit %d), want an error saying %q", tc.seednode, errOut, code, tc.want)
		}
	}
}
