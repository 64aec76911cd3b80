package client

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// TestRememberedFleets: the fleet recorded for a subject survives the home
// being opened again, subjects do not mix, and a damaged record is an error
// that says what to do rather than a fleet forgotten in silence.
func TestRememberedFleets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	h, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := h.RememberedFleet("agent"); ok || err != nil {
		t.Fatalf("a new home: %v %v", ok, err)
	}
	_, podKey, _ := ed25519.GenerateKey(nil)
	id, err := identity.PeerID(podKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	ft := ticket.FleetTicket{Name: "acme/seeds", Admission: fleet.Open, Pods: 3, Replicas: 3,
		Peers: []peer.AddrInfo{{ID: id, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")}}}}
	if err := h.RememberFleet("agent", ft); err != nil {
		t.Fatal(err)
	}
	h.Close()

	if h, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	got, ok, err := h.RememberedFleet("agent")
	if err != nil || !ok || got.String() != ft.String() {
		t.Fatalf("after reopening: %v %v %v", got, ok, err)
	}
	if _, ok, err := h.RememberedFleet("2d6urwjonekc3t3mxusukxytg7gj5tuoz7zzc4hw3njp7ph75kwa"); ok || err != nil {
		t.Fatalf("another subject: %v %v", ok, err)
	}

	if err := os.WriteFile(filepath.Join(dir, "fleets.json"), []byte("{\"agent\": 1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.RememberedFleet("agent"); err == nil || !strings.Contains(err.Error(), "pass --fleet") {
		t.Fatalf("a damaged record: %v", err)
	}
}
