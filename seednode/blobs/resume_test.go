package blobs

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// The resume test fetches in a child process (this test binary re-executed)
// so the receiver can be killed with SIGKILL mid-transfer.
const fetchChildEnv = "SEEDFLEET_BLOBS_TEST_FETCH"

func TestMain(m *testing.M) {
	if spec := os.Getenv(fetchChildEnv); spec != "" {
		os.Exit(runFetchChild(spec))
	}
	os.Exit(m.Run())
}

type childResult struct {
	Stats FetchStats
	Err   string
}

// runFetchChild fetches "dir|peer multiaddr|hash hex|size|killAt[|collection]"
// and prints a RESULT line, or SIGKILLs itself once killAt bytes (members
// of a collection) are verified: a crash at a known point, with no
// deferred cleanup.
func runFetchChild(spec string) int {
	parts := strings.Split(spec, "|")
	st, err := Open(parts[0])
	if err != nil {
		fmt.Println("RESULT", `{"Err":"open"}`)
		return 1
	}
	defer st.Close()
	h := testHost(&testing.T{})
	svc, err := NewService(h, st)
	if err != nil {
		fmt.Println("RESULT", `{"Err":"service"}`)
		return 1
	}
	m, _ := ma.NewMultiaddr(parts[1])
	info, _ := peer.AddrInfoFromP2pAddr(m)
	var hash [32]byte
	hb, _ := hex.DecodeString(parts[2])
	copy(hash[:], hb)
	var size, killAt uint64
	fmt.Sscan(parts[3], &size)
	fmt.Sscan(parts[4], &killAt)
	ctx := context.Background()
	if err := h.Connect(ctx, *info); err != nil {
		fmt.Println("RESULT", `{"Err":"connect"}`)
		return 1
	}
	var stats FetchStats
	if len(parts) > 5 && parts[5] == "collection" {
		// killAt counts members, size is the collection's.
		_, stats, err = svc.FetchCollection(ctx, info.ID, hash, FetchOptions{Size: &size, ProgressEvery: -1, Progress: func(p FetchProgress) {
			if killAt > 0 && p.MembersDone >= killAt {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}})
	} else {
		stats, err = svc.Fetch(ctx, info.ID, hash, FetchOptions{Size: &size, ProgressEvery: -1, Progress: func(p FetchProgress) {
			if killAt > 0 && p.VerifiedBytes >= killAt {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}})
	}
	res := childResult{Stats: stats}
	if err != nil {
		res.Err = err.Error()
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	return 0
}

// TestResumeAfterReceiverKilled: the receiving process is SIGKILLed during
// a transfer; a new process resumes, the groups the first one had made
// durable are not fetched again, and of those it had verified at most
// maxUnrecorded bytes were lost (the bound the README states).
func TestResumeAfterReceiverKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const size = 96 << 20 // many checkpoints (every 4 MiB)
	const killAt = 40 << 20
	server := testStore(t)
	path := t.TempDir() + "/blob"
	if err := os.WriteFile(path, randBytes(5, size), 0o600); err != nil {
		t.Fatal(err)
	}
	hash, _, err := server.AddFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	sh := testHost(t)
	svc := newTestService(t, sh, server)
	defer svc.Close()
	addr := fmt.Sprintf("%s/p2p/%s", sh.Addrs()[0], sh.ID())
	dir := t.TempDir()
	run := func(killAt uint64) (childResult, bool) {
		return runChild(t, fmt.Sprintf("%s|%s|%x|%d|%d", dir, addr, hash, size, killAt))
	}
	if r, killed := run(killAt); !killed {
		t.Fatalf("the receiving child was not killed mid-transfer: %+v", r)
	}
	// What survived: the store's bitmap after the kill.
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	status, err := st.Stat(hash)
	st.Close()
	if err != nil || status.State != Partial || status.VerifiedGroups == 0 {
		t.Fatalf("after the kill: %+v %v (want a partial blob with verified groups)", status, err)
	}
	if lost := killAt - int64(status.VerifiedGroups*GroupSize); lost > maxUnrecorded {
		t.Fatalf("killed after %d bytes were verified, %d were recorded: %d lost, more than the stated bound of %d",
			killAt, status.VerifiedGroups*GroupSize, lost, maxUnrecorded)
	}
	res, killed := run(0)
	if killed || res.Err != "" {
		t.Fatalf("resumed fetch: %+v", res)
	}
	total := NumGroups(size)
	if !res.Stats.Complete || res.Stats.GroupsSkipped != status.VerifiedGroups || res.Stats.GroupsFetched != total-status.VerifiedGroups {
		t.Fatalf("resume fetched %d and skipped %d of %d groups; %d were verified before", res.Stats.GroupsFetched, res.Stats.GroupsSkipped, total, status.VerifiedGroups)
	}
	t.Logf("killed with %d of %d groups durable; the resumed fetch skipped them and fetched %d", status.VerifiedGroups, total, res.Stats.GroupsFetched)
	st, _ = Open(dir)
	defer st.Close()
	if s, _ := st.Stat(hash); s.State != Complete {
		t.Fatal("blob not complete after resume")
	}
}

// runChild runs a fetch child (runFetchChild) with spec and returns its
// result, or whether it was SIGKILLed.
func runChild(t *testing.T, spec string) (childResult, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fetchChildEnv+"="+spec)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			var r childResult
			if err := json.Unmarshal([]byte(v), &r); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			return r, false
		}
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	return childResult{}, errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
}

// TestCollectionResumeAfterSIGKILL: the fetching process is SIGKILLed at
// random members of a collection of 3,000 small ones, several times, and a
// last process completes it. Every member ends byte-identical, and the
// server is never asked again for a member the store recorded complete
// after a kill (recorded means verified and durable).
func TestCollectionResumeAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	datas := memberData(5, 3000)
	server := testStore(t)
	c, ch, csize := addMembers(t, server, datas)
	sh := testHost(t)
	var counts requestCounter
	newTestService(t, sh, server, WithPolicy(counts.policy))
	addr := fmt.Sprintf("%s/p2p/%s", sh.Addrs()[0], sh.ID())
	dir := t.TempDir()
	countAtComplete := map[[32]byte]int{}
	complete := func() int {
		st, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		n := 0
		for _, e := range c {
			if s, err := st.Stat(e.Hash); err != nil {
				t.Fatal(err)
			} else if s.State == Complete {
				n++
				if _, ok := countAtComplete[e.Hash]; !ok {
					countAtComplete[e.Hash] = counts.get(e.Hash)
				}
			}
		}
		return n
	}
	for kill := 0; kill < 3; kill++ {
		before := complete()
		killAt := before + 1 + rng.IntN(len(c)-before-1)
		if r, killed := runChild(t, fmt.Sprintf("%s|%s|%x|%d|%d|collection", dir, addr, ch, csize, killAt)); !killed {
			t.Fatalf("the fetching child was not killed at member %d: %+v", killAt, r)
		}
		t.Logf("killed at member %d; %d were complete before, %d after", killAt, before, complete())
	}
	before := complete()
	res, killed := runChild(t, fmt.Sprintf("%s|%s|%x|%d|0|collection", dir, addr, ch, csize))
	if killed || res.Err != "" || !res.Stats.Complete {
		t.Fatalf("resumed fetch: %+v", res)
	}
	if res.Stats.MembersSkipped != uint64(before) || res.Stats.MembersFetched != uint64(len(c)-before) {
		t.Fatalf("resumed fetch skipped %d and fetched %d members; %d were complete before", res.Stats.MembersSkipped, res.Stats.MembersFetched, before)
	}
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkCollection(t, st, c, datas)
	for _, e := range c {
		if at, ok := countAtComplete[e.Hash]; ok && counts.get(e.Hash) != at {
			t.Errorf("member %s was requested %d times after it was complete", e.Name, counts.get(e.Hash)-at)
		}
	}
	// No pack of a batch the kills cut short is left behind.
	packs, _ := os.ReadDir(dir + "/packs")
	for _, p := range packs {
		raw, _ := hex.DecodeString(strings.TrimSuffix(p.Name(), ".pack"))
		if _, closer, err := st.db.Get(packKey(binary.BigEndian.Uint64(raw))); err != nil {
			t.Errorf("pack %s is on disk but not recorded: %v", p.Name(), err)
		} else {
			closer.Close()
		}
	}
}
