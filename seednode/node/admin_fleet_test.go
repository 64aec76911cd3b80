package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

const testAdminToken = "fleet-admin-token"

// startAdminFleetPod runs a one-pod fleet with its admin API on loopback,
// as FromConfig would build it from a fleet section with a keyFile.
func startAdminFleetPod(t *testing.T, admission fleet.Admission, fleetKey ed25519.PrivateKey) (*Node, peer.AddrInfo) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "pod.key")
	if err := identity.Save(keyFile, key); err != nil {
		t.Fatal(err)
	}
	id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2ptest.FreePort(t))
	info, err := p2p.ParsePeerAddr(addr + "/p2p/" + id.String())
	if err != nil {
		t.Fatal(err)
	}
	p := hosting.Policy{Fleet: testFleetName, Admission: admission}
	if fleetKey != nil {
		p.FleetKey = fleetKey.Public().(ed25519.PublicKey)
	}
	n, err := New(Config{DataDir: filepath.Join(dir, "data"), IdentityFile: keyFile, Listen: []string{addr},
		AdminListen: "127.0.0.1:0", AdminToken: testAdminToken, DHT: DHTConfig{Mode: config.DHTOff},
		Fleet:    &FleetConfig{Members: fleet.Members{Pods: []peer.AddrInfo{info}, Replicas: 1}, Policy: p},
		FleetKey: fleetKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, info
}

// TestAdminFleetInvitesAndFigures: the admin API of a pod of an Invite
// fleet mints invites signed by the fleet key (with the token only); a
// device admitted with one is counted in GET /v1/fleet, a device without
// one is refused and its refusal counted by reason; the ticket there is
// the one the pod gives devices.
func TestAdminFleetInvitesAndFigures(t *testing.T) {
	_, fleetKey, _ := ed25519.GenerateKey(nil)
	n, info := startAdminFleetPod(t, fleet.Invite, fleetKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := admin.NewClient(n.AdminURL(), admin.WithToken(testAdminToken))

	st, err := c.Fleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := n.FleetTicket()
	got, err := ticket.ParseFleetTicket(st.Ticket)
	if err != nil {
		t.Fatalf("the status's ticket %q: %v", st.Ticket, err)
	}
	if !got.Equal(want) || st.Name != testFleetName || st.Admission != "Invite" || st.Pods != 1 || st.Replicas != 1 || !st.Invites {
		t.Fatalf("fleet status %+v, ticket %+v; want ticket %+v", st, got, want)
	}
	if st.Agents != 0 || st.Admissions != 0 {
		t.Fatalf("an empty fleet counts %+v", st)
	}

	// Writes need the token.
	anon := admin.NewClient(n.AdminURL())
	var he *admin.HTTPError
	if _, err := anon.MintInvite(ctx, admin.InviteRequest{Uses: 1, ExpiresIn: "1h"}); !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an invite without the token: %v", err)
	}
	for _, bad := range []admin.InviteRequest{{Uses: 1}, {Uses: -1, ExpiresIn: "1h"}, {Uses: 1, ExpiresIn: "1s"}, {Uses: 1, ExpiresIn: "soon"}} {
		if _, err := c.MintInvite(ctx, bad); !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
			t.Fatalf("invite request %+v: %v", bad, err)
		}
	}

	inv, err := c.MintInvite(ctx, admin.InviteRequest{Uses: 2, ExpiresIn: "72h"})
	if err != nil {
		t.Fatal(err)
	}
	it, err := ticket.ParseInviteTicket(inv.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	if err := it.Verify(testFleetName, fleetKey.Public().(ed25519.PublicKey), time.Now().Add(71*time.Hour)); err != nil {
		t.Fatalf("the minted invite does not verify with the fleet key: %v", err)
	}
	if it.Uses != 2 || inv.Uses != 2 || !it.NotAfter.Equal(inv.NotAfter) || time.Until(it.NotAfter) < 71*time.Hour {
		t.Fatalf("invite %+v, answered %+v", it, inv)
	}

	invited, uninvited := newDevice(t), newDevice(t)
	for _, d := range []*device{invited, uninvited} {
		if _, err := d.InitAgent("laptop"); err != nil {
			t.Fatal(err)
		}
	}
	ask := func(d *device, invite string) *hosting.Answer {
		req, err := d.HostingRequest(client.HostingAsk{Op: hosting.OpHost, Fleet: testFleetName, Invite: invite})
		if err != nil {
			t.Fatal(err)
		}
		ans, err := d.AskFleet(ctx, []peer.AddrInfo{info}, req)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	if ans := ask(invited, inv.Ticket); !ans.OK() {
		t.Fatalf("the invited agent was refused: %v %s", ans.Reason, ans.Message)
	}
	if ans := ask(uninvited, ""); ans.Reason != hosting.ReasonInviteNeeded {
		t.Fatalf("an agent without an invite: %v %s", ans.Reason, ans.Message)
	}
	n.fleetStats.mu.Lock()
	n.fleetStats.at = time.Time{} // the counts are cached for a few seconds
	n.fleetStats.mu.Unlock()
	st, err = c.Fleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Agents != 1 || st.Vaults < 1 || st.Admissions != 1 || st.HostedVaults != st.Vaults || st.Refusals["InviteNeeded"] != 1 {
		t.Fatalf("after one admission and one refusal: %+v", st)
	}
}

// TestAdminFleetRefusesInvites: a fleet that does not admit by invite, or
// has no key, mints none (409, saying why); a seed outside a fleet answers
// 404 on both endpoints.
func TestAdminFleetRefusesInvites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, fleetKey, _ := ed25519.GenerateKey(nil)
	var he *admin.HTTPError
	for _, tc := range []struct {
		name      string
		admission fleet.Admission
		key       ed25519.PrivateKey
		want      string
	}{
		{"open", fleet.Open, fleetKey, "its admission is Open, not Invite"},
		{"closed without key", fleet.Closed, nil, "its admission is Closed, not Invite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, _ := startAdminFleetPod(t, tc.admission, tc.key)
			c := admin.NewClient(n.AdminURL(), admin.WithToken(testAdminToken))
			_, err := c.MintInvite(ctx, admin.InviteRequest{Uses: 1, ExpiresIn: "1h"})
			if !errors.As(err, &he) || he.StatusCode != http.StatusConflict || !strings.Contains(he.Message, tc.want) {
				t.Fatalf("got %v, want 409 saying %q", err, tc.want)
			}
			if st, err := c.Fleet(ctx); err != nil || st.Invites {
				t.Fatalf("fleet status %+v, %v: invites should be off", st, err)
			}
		})
	}
	n := startNode(t, Config{AdminToken: testAdminToken})
	c := admin.NewClient(n.AdminURL(), admin.WithToken(testAdminToken))
	if _, err := c.Fleet(ctx); !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /v1/fleet outside a fleet: %v", err)
	}
	if _, err := c.MintInvite(ctx, admin.InviteRequest{Uses: 1, ExpiresIn: "1h"}); !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /v1/fleet/invites outside a fleet: %v", err)
	}
}

// TestAdminFleetMembers: PUT /v1/fleet/members applies a membership at
// once (with the token only), and GET /v1/fleet and the ticket follow it;
// a membership that is another pod's, lists this pod twice, has R out of
// range or an address that does not parse is refused with 400 and changes
// nothing.
func TestAdminFleetMembers(t *testing.T) {
	n, info := startAdminFleetPod(t, fleet.Open, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := admin.NewClient(n.AdminURL(), admin.WithToken(testAdminToken))
	self := info.Addrs[0].String() + "/p2p/" + info.ID.String()
	other := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", p2ptest.FreePort(t), p2ptest.NewHost(t, false).ID())

	var he *admin.HTTPError
	if _, err := admin.NewClient(n.AdminURL()).SetFleetMembers(ctx, admin.FleetMembers{Members: []string{self, other}, Replicas: 1}); !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
		t.Fatalf("members without the token: %v", err)
	}
	before := n.fleetMembers().Version()
	for what, bad := range map[string]admin.FleetMembers{
		"another pod's":     {Self: 1, Members: []string{self, other}, Replicas: 1},
		"listed twice":      {Self: 0, Members: []string{self, self}, Replicas: 1},
		"R above the pods":  {Self: 0, Members: []string{self, other}, Replicas: 3},
		"all leaving":       {Self: 0, Members: []string{self, other}, Replicas: 1, Leaving: 2},
		"not an address":    {Self: 0, Members: []string{self, "/ip4/127.0.0.1/tcp/1"}, Replicas: 1},
		"no members at all": {Self: 0, Replicas: 1},
	} {
		if _, err := c.SetFleetMembers(ctx, bad); !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %v", what, err)
		}
	}
	if got := n.fleetMembers().Version(); got != before {
		t.Fatalf("a refused membership changed the pod's: %s, was %s", got, before)
	}

	version, err := c.SetFleetMembers(ctx, admin.FleetMembers{Self: 0, Members: []string{self, other}, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Fleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := n.FleetTicket()
	if version == before || st.Members != version || st.Pods != 2 || st.Replicas != 2 || tk.Pods != 2 || tk.Replicas != 2 {
		t.Fatalf("after the push: version %s (was %s), status %+v, ticket %+v", version, before, st, tk)
	}
}
