package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/version"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// TestAdminAPIReflectsTheNode drives a seed through its admin API the way
// the operator will: status after a device synced, metrics, and a hosted
// list replaced without a restart.
func TestAdminAPIReflectsTheNode(t *testing.T) {
	laptop, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	ns, _ := laptop.CreateVault()
	n := startNode(t, Config{HostedVaults: []vault.NamespaceID{ns}, AdminToken: "s3cret"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 3 {
		if _, err := laptop.Put(ns, []byte{'k', byte('0' + i)}, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := laptop.Sync(ctx, ns, n.Addrs()[0].String(), client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}

	c := admin.NewClient(n.AdminURL(), admin.WithToken("s3cret"))
	if err := c.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("a standalone seed (no bootstrap peers) should be ready: %v", err)
	}
	// The seed records the sync as its side of the session ends, which may
	// be a moment after the laptop's Sync returned.
	var st admin.Status
	eventually(t, "the seed's status to show the laptop's sync", func() error {
		if st, err = c.Status(ctx); err != nil {
			return err
		}
		if len(st.Vaults) != 1 || st.Vaults[0].LastSync.IsZero() || st.Vaults[0].Peers != 1 {
			return fmt.Errorf("status vaults: %+v", st.Vaults)
		}
		return nil
	})
	if st.PeerID != n.Host().ID().String() || len(st.Addrs) == 0 || !strings.HasSuffix(st.Addrs[0], "/p2p/"+st.PeerID) {
		t.Fatalf("status identity: %+v", st)
	}
	if len(st.Vaults) != 1 || st.Vaults[0].Namespace != ns.String() || st.Vaults[0].Entries != 3 || st.Vaults[0].LastSync.IsZero() || st.Vaults[0].Peers != 1 {
		t.Fatalf("status vaults: %+v", st.Vaults)
	}
	if st.DHT.Mode != string(config.DHTServer) || st.Relay.Mode != string(config.RelayAgents) || st.Relay.AllowedPeers != 1 {
		t.Fatalf("status services: dht %+v relay %+v (the laptop's key should be allowed to reserve)", st.DHT, st.Relay)
	}
	if st.Version == "" || st.Version != version.String() {
		t.Fatalf("status version %q, want the build's %q", st.Version, version.String())
	}

	resp, err := http.Get(n.AdminURL() + admin.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`seedfleet_vault_entries{vault="` + ns.String() + `"} 3`,
		`seedfleet_hosted_vaults{placement="Placed"} 1`,
		`seedfleet_hosted_entries 3`,
		`seedfleet_vault_sync_sessions_total{result="ok"} 1`,
		`seedfleet_dht_reprovide_lag_seconds`,
		`libp2p_`, // the host's own metrics land on the same registry
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// The operator replaces the hosted list: the old vault is dropped.
	other, _ := laptop.CreateVault()
	if err := c.SetHostedVaults(ctx, admin.HostedVaults{Vaults: []string{other.String()}}); err != nil {
		t.Fatal(err)
	}
	if !n.Hosted().Has(other) || n.Hosted().Has(ns) {
		t.Fatal("hosted list not replaced")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := n.Store().Stats(ns)
		if s.Entries == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("unhosted vault not dropped after the hosted list changed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Without the token, the change is refused; the configured token is
	// the only one (nothing is generated beside it).
	if err := admin.NewClient(n.AdminURL()).SetHostedVaults(ctx, admin.HostedVaults{}); err == nil {
		t.Fatal("hosted list changed without the token")
	}
}

// TestSeedsBootstrapAndDevicesFindThem: a second seed bootstraps from the
// first; a device that knows only the first seed finds, through the DHT,
// the second seed as the one hosting its vault.
func TestSeedsBootstrapAndDevicesFindThem(t *testing.T) {
	var ns vault.NamespaceID
	copy(ns[:], "a vault hosted by the second seed")
	a := startNode(t, Config{})
	b := startNode(t, Config{HostedVaults: []vault.NamespaceID{ns},
		DHT: DHTConfig{BootstrapPeers: []peer.AddrInfo{{ID: a.Host().ID(), Addrs: a.Host().Addrs()}}}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for b.Ready() != nil {
		if ctx.Err() != nil {
			t.Fatalf("second seed never ready: %v", b.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for b.provider.LastProvided(discovery.VaultCID(ns)).IsZero() {
		if ctx.Err() != nil {
			t.Fatal("second seed never announced its vault")
		}
		time.Sleep(20 * time.Millisecond)
	}
	key, _ := identity.Generate()
	dev, err := p2p.NewHost(p2p.HostOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	seedA := peer.AddrInfo{ID: a.Host().ID(), Addrs: a.Host().Addrs()}
	d, err := discovery.NewDHT(dev, discovery.DHTOptions{BootstrapPeers: []peer.AddrInfo{seedA}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := dev.Connect(ctx, seedA); err != nil {
		t.Fatal(err)
	}
	_ = d.Bootstrap(ctx)
	for d.RoutingTable().Size() == 0 { // identify adds the seed asynchronously
		if ctx.Err() != nil {
			t.Fatal("the device's DHT never added the seed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	defer fcancel()
	found := discovery.FindProviders(fctx, d, discovery.VaultCID(ns), 1)
	if len(found) != 1 || found[0].ID != b.Host().ID() {
		t.Fatalf("device found %v, want the second seed %s", found, b.Host().ID())
	}
}

// adminClient is a client of n's admin API with the token n generated.
func adminClient(t *testing.T, n *Node) *admin.Client {
	t.Helper()
	token, err := admin.ReadToken(n.AdminTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	return admin.NewClient(n.AdminURL(), admin.WithToken(token))
}

// TestAdminTokenGenerated: a seed started without a token generates one
// into its data directory (0600) and keeps it across restarts; its admin API
// refuses changes without it. A configured token is used instead, and
// nothing is written.
func TestAdminTokenGenerated(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, Config{DataDir: dir})
	file := filepath.Join(dir, AdminTokenFile)
	if n.AdminTokenFile() != file {
		t.Fatalf("AdminTokenFile() = %q, want %q", n.AdminTokenFile(), file)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", file, fi.Mode().Perm())
	}
	token, err := admin.ReadToken(file)
	if err != nil || len(token) != 64 {
		t.Fatalf("token %q: %v", token, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ns vault.NamespaceID
	copy(ns[:], "a vault placed with the token")
	hv := admin.HostedVaults{Vaults: []string{ns.String()}}
	for _, c := range []*admin.Client{admin.NewClient(n.AdminURL()), admin.NewClient(n.AdminURL(), admin.WithToken("guess"))} {
		var herr *admin.HTTPError
		if err := c.SetHostedVaults(ctx, hv); !errors.As(err, &herr) || herr.StatusCode != http.StatusUnauthorized ||
			!strings.Contains(herr.Message, "admin.token") {
			t.Fatalf("change without the token: %v, want a 401 saying where the token is", err)
		}
	}
	if n.Hosted().Has(ns) {
		t.Fatal("hosted list changed without the token")
	}
	if err := admin.NewClient(n.AdminURL(), admin.WithToken(token)).SetHostedVaults(ctx, hv); err != nil || !n.Hosted().Has(ns) {
		t.Fatalf("change with the token: %v", err)
	}
	n.Close()

	again := startNode(t, Config{DataDir: dir})
	if got, _ := admin.ReadToken(again.AdminTokenFile()); got != token {
		t.Fatalf("the token changed across a restart: %q, want %q", got, token)
	}
	again.Close()

	other := t.TempDir()
	configured := startNode(t, Config{DataDir: other, AdminToken: "configured"})
	if configured.AdminTokenFile() != "" {
		t.Errorf("AdminTokenFile() = %q with a configured token", configured.AdminTokenFile())
	}
	if _, err := os.Stat(filepath.Join(other, AdminTokenFile)); err == nil {
		t.Error("a seed with a configured token generated one")
	}
}

// TestAdminTokenReadableByOthersRefused: a token file other users can read
// would let them change what the seed hosts; the seed refuses to start on it.
func TestAdminTokenReadableByOthersRefused(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, AdminTokenFile)
	if err := os.WriteFile(file, []byte("t0ken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(file, 0o644) // whatever the umask
	_, err := New(Config{DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "127.0.0.1:0", DHT: DHTConfig{Mode: config.DHTOff}})
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+file) {
		t.Fatalf("token readable by others: %v, want a refusal saying chmod 600", err)
	}
}
