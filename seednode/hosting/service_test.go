package hosting

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/fleet"
)

// pod is one seed of a test fleet: a real host, Pebble and service.
type pod struct {
	host    host.Host
	records *Records
	svc     *Service
	view    atomic.Pointer[fleet.Members] // the membership the pod knows
}

// startFleet runs n pods with replicas R on loopback, all under policy p.
func startFleet(t *testing.T, n, r int, p Policy) []*pod {
	t.Helper()
	p.Fleet = testFleet
	pods := make([]*pod, n)
	members := fleet.Members{Replicas: r}
	for i := range pods {
		h := p2ptest.NewHost(t, true)
		pods[i] = &pod{host: h}
		members.Pods = append(members.Pods, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	}
	for i, pd := range pods {
		db := openDB(t, filepath.Join(t.TempDir(), "db"))
		t.Cleanup(func() { db.Close() })
		var err error
		if pd.records, err = OpenRecords(db, 'h'); err != nil {
			t.Fatal(err)
		}
		adm, err := NewAdmitter(p, pd.records, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := members
		m.Self = i
		pd.view.Store(&m)
		if pd.svc, err = New(pd.host, adm, WithMembers(func() fleet.Members { return *pd.view.Load() })); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pd.svc.Close() })
	}
	return pods
}

func signedRequest(a *agent, op Op, vaults ...VaultAsk) *Request {
	r := &Request{Op: op, Kind: SubjectAgent, Subject: a.root.Public().(ed25519.PublicKey), Fleet: testFleet,
		Time: time.Now(), Vaults: vaults, AgentDoc: a.signedDoc}
	_, _ = rand.Read(r.Nonce[:])
	r.Sign(a.device)
	return r
}

func ask(t *testing.T, device host.Host, seed *pod, req *Request) *Answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ans, err := Ask(ctx, device, peer.AddrInfo{ID: seed.host.ID(), Addrs: seed.host.Addrs()}, req)
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

// TestAnyPodAnswersForTheFleet: a request at any of 5 pods lands on the
// same 3 home pods (the subject's placement), every one of them records
// it, and no other pod does.
func TestAnyPodAnswersForTheFleet(t *testing.T) {
	pods := startFleet(t, 5, 3, Policy{Admission: fleet.Open})
	device := p2ptest.NewHost(t, false)
	for i := range 5 {
		a := newAgent(t, time.Now())
		ans := ask(t, device, pods[i], signedRequest(a, OpHost, vaultAsk(i, 0)))
		if !ans.OK() {
			t.Fatalf("pod %d: %v", i, ans.Err())
		}
		home := fleet.Top(PlacementKey(SubjectAgent, a.root.Public().(ed25519.PublicKey)), 5, 3)
		var want []peer.ID
		for _, o := range home {
			want = append(want, pods[o].host.ID())
		}
		var got []peer.ID
		for _, s := range ans.Seeds {
			got = append(got, s.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("request at pod %d: seeds %v, want the home pods %v", i, got, want)
		}
		// Every home pod holds the record (the others get it in the
		// background); the rest hold nothing.
		deadline := time.Now().Add(10 * time.Second)
		for o, pd := range pods {
			for {
				rec, err := pd.records.Get(a.root.Public().(ed25519.PublicKey))
				if err != nil {
					t.Fatal(err)
				}
				if slices.Contains(home, o) == (rec != nil) {
					break
				}
				if !slices.Contains(home, o) || time.Now().After(deadline) {
					t.Fatalf("pod %d (home %v) holds record %v", o, home, rec != nil)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		// Status from any pod reads the same record.
		st := ask(t, device, pods[(i+2)%5], signedRequest(a, OpStatus))
		if !st.OK() || len(st.Vaults) != 1 || st.Vaults[0].Namespace != vaultAsk(i, 0).Namespace {
			t.Fatalf("status through another pod: %+v %v", st, st.Err())
		}
	}
}

// TestJoiningPodForwards: a pod that joined the fleet forwards a request
// to a home pod that does not count it among the members yet (it has not
// applied the new membership): the device is told to try again shortly,
// with the home pod's reason, and is admitted once the home pod applied it.
func TestJoiningPodForwards(t *testing.T) {
	pods := startFleet(t, 3, 1, Policy{Admission: fleet.Open})
	device := p2ptest.NewHost(t, false)
	setView := func(m fleet.Members, n int) {
		m.Pods = m.Pods[:n]
		for i := range 2 {
			mi := m
			mi.Self = i
			pods[i].view.Store(&mi)
			pods[i].svc.MembersChanged()
		}
	}
	all := *pods[2].view.Load()
	setView(all, 2)
	// An agent whose home is the same pod in both memberships, not pod 2.
	homeOf := func(a *agent, n int) int {
		return fleet.Top(PlacementKey(SubjectAgent, a.root.Public().(ed25519.PublicKey)), n, 1)[0]
	}
	a := newAgent(t, time.Now())
	for homeOf(a, 3) == 2 || homeOf(a, 3) != homeOf(a, 2) {
		a = newAgent(t, time.Now())
	}
	ans := ask(t, device, pods[2], signedRequest(a, OpHost, vaultAsk(1, 0)))
	if ans.Reason != ReasonUnavailable || ans.RetryAfter <= 0 || !strings.Contains(ans.Message, "changing size") {
		t.Fatalf("a request through a pod its home does not know yet: %v %q (retry after %v)", ans.Reason, ans.Message, ans.RetryAfter)
	}
	setView(all, 3)
	if ans := ask(t, device, pods[2], signedRequest(a, OpHost, vaultAsk(1, 0))); !ans.OK() {
		t.Fatalf("once the home pod applied the membership: %v", ans.Err())
	}
}

func TestFleetInfo(t *testing.T) {
	pods := startFleet(t, 3, 2, Policy{Admission: fleet.Open})
	device := p2ptest.NewHost(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tk, err := FleetInfo(ctx, device, peer.AddrInfo{ID: pods[2].host.ID(), Addrs: pods[2].host.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Name != testFleet || tk.Admission != fleet.Open || tk.Replicas != 2 || tk.Pods != 3 || len(tk.Peers) != 3 || tk.Peers[0].ID != pods[0].host.ID() {
		t.Fatalf("fleet ticket %+v", tk)
	}
}

func TestServiceRefusals(t *testing.T) {
	pods := startFleet(t, 3, 2, Policy{Admission: fleet.Invite, FleetKey: make(ed25519.PublicKey, 32)})
	device := p2ptest.NewHost(t, false)
	a := newAgent(t, time.Now())
	ans := ask(t, device, pods[0], signedRequest(a, OpHost, vaultAsk(1, 0)))
	if ans.Reason != ReasonInviteNeeded || len(ans.Seeds) != 0 {
		t.Fatalf("no invite: %+v", ans)
	}
	// A device may not pose as a pod forwarding a request.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := signedRequest(a, OpHost, vaultAsk(2, 0))
	msg := append([]byte{kindForwarded, 0}, req.Marshal()...)
	for _, p := range pods {
		device.Peerstore().AddAddrs(p.host.ID(), p.host.Addrs(), time.Hour)
	}
	got, err := exchange(ctx, device, pods[1].host.ID(), msg)
	if err != nil {
		t.Fatal(err)
	}
	// It cannot be told from a pod that joined before this one applied the
	// new membership: it is told to retry, and nothing is admitted.
	if got.Reason != ReasonUnavailable || !strings.Contains(got.Message, "does not count the sender") {
		t.Fatalf("a forged forward got %v %q", got.Reason, got.Message)
	}
	if rec, err := pods[1].records.Get(a.root.Public().(ed25519.PublicKey)); err != nil || rec != nil {
		t.Fatalf("a forged forward left a record (%v)", err)
	}
	// Garbage gets a clear refusal, not a hang or a reset.
	got, err = exchange(ctx, device, pods[2].host.ID(), []byte{kindRequest, 1, 2, 3})
	if err != nil || got.Reason != ReasonMalformed {
		t.Fatalf("garbage: %v, %v", got, err)
	}
}
