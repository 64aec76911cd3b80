package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zeebo/blake3"

	"github.com/seedfleet/seedfleet/seednode/blobs"
)

// listed is one entry as `seedfleet list` prints it.
type listed struct {
	size  int64
	value string // the inline value, or "" for a blob
	hash  string // a blob's short hash
}

// list reads a device's entries of the vault.
func (c *cluster) list(home string) (map[string]listed, error) {
	out, err := cli("list", "--home", home, c.ns, "crash/")
	if err != nil {
		return nil, err
	}
	got := map[string]listed{}
	for _, line := range strings.Split(out, "\n")[1:] {
		// KEY AUTHOR DATE TIME SIZE VALUE
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		size, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list: %q: %w", line, err)
		}
		l := listed{size: size}
		if f[5] == "(blob" && len(f) > 6 {
			l.hash = strings.TrimSuffix(f[6], ",")
		} else {
			l.value = strings.Join(f[5:], " ")
		}
		got[f[0]] = l
	}
	return got, nil
}

// check compares an entry with what a device listed; "" if they agree.
func (e *entry) check(got map[string]listed) string {
	l, ok := got[e.key]
	switch {
	case !ok:
		return "missing"
	case l.size != e.size:
		return fmt.Sprintf("size %d, want %d", l.size, e.size)
	case e.file == "" && l.value != e.value:
		return fmt.Sprintf("value %q, want %q", l.value, e.value)
	case e.file != "" && l.hash != e.hash:
		return fmt.Sprintf("blob %s, want %s", l.hash, e.hash)
	}
	return ""
}

// describe says where an entry came from, for a lost-entry report.
func (e *entry) describe() string {
	kind := "inline"
	if e.file != "" {
		kind = "blob " + e.hash
	}
	ack := "acknowledged by the device"
	if e.seedAcked {
		ack = "acknowledged by the seed"
	}
	return fmt.Sprintf("%s (%s, written by %s in round %d, %s)", e.key, kind, e.device, e.round, ack)
}

// fetchBlob gets an entry's blob on home (from the seed if from is set) and
// compares it with the file it was written from.
func (c *cluster) fetchBlob(home string, e *entry, from bool) error {
	out := filepath.Join(c.root, "fetched.bin")
	defer os.Remove(out)
	args := []string{"get", "--home", home, c.ns, e.key, "--out", out}
	if from {
		args = append(args, "--from", c.seed.Addr())
	}
	if _, err := run(time.Minute, "get", nil, args...); err != nil {
		return err
	}
	got, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	want, err := os.ReadFile(e.file)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("the blob differs from the file written (%d bytes, want %d)", len(got), len(want))
	}
	return nil
}

// localBlob checks that a device's own store holds an entry's blob,
// byte-identical: through `get --out` if it can, else by reading the
// stopped device's blob store directly.
func (c *cluster) localBlob(home string, e *entry) error {
	cliErr := c.fetchBlob(home, e, false)
	if cliErr == nil {
		return nil
	}
	if err := storeBlob(home, e); err != nil {
		return err
	}
	cliGetOnce.Do(func() {
		st.finding("`get --out FILE` without --from does not export a blob complete on the device (%s); the store holds it", firstLine(cliErr.Error()))
	})
	return nil
}

var cliGetOnce sync.Once

// storeBlob reads an entry's blob from a stopped device's blob store and
// compares it with the file it was written from.
func storeBlob(home string, e *entry) error {
	want, err := os.ReadFile(e.file)
	if err != nil {
		return err
	}
	bs, err := blobs.Open(filepath.Join(home, "blobs"))
	if err != nil {
		return err
	}
	defer bs.Close()
	var got bytes.Buffer
	if err := bs.Export(blake3.Sum256(want), &got, 0, 0); err != nil {
		return err
	}
	if !bytes.Equal(got.Bytes(), want) {
		return fmt.Errorf("the blob differs from the file written (%d bytes, want %d)", got.Len(), len(want))
	}
	return nil
}

// freshDevice makes an empty device home and syncs it from the seed: what
// it then holds is what the seed holds.
func (c *cluster) freshDevice() string {
	c.fresh++
	home := filepath.Join(c.root, fmt.Sprintf("fresh-%d", c.fresh))
	if _, err := cli("key", "create", "--home", home); err != nil { // sync refuses a home with no key
		die("a fresh device: %v", err)
	}
	var err error
	for range 5 {
		if _, err = cli("sync", "--home", home, c.ns, c.seed.Addr(), "-q", "--no-dht", "--no-rendezvous"); err == nil {
			return home
		}
		time.Sleep(time.Second)
	}
	die("a fresh device cannot sync from the seed: %v", err)
	return ""
}

// verify restarts everything after a round and checks the ledger.
func (c *cluster) verify(r int) {
	if err := c.seed.start(time.Minute); err != nil {
		die("round %d: the seed does not start after the kills: %v", r, err)
	}
	devices := []*device{c.laptop, c.phone, c.tablet}

	// 1. Each device, before it syncs: what it wrote and what it held.
	for _, d := range devices {
		got, err := c.list(d.home)
		if err != nil {
			die("round %d: %s: %v", r, d.name, err)
		}
		for _, e := range c.ledger.pick(func(e *entry) bool { return e.device == d.name || d.known[e.key] }) {
			if why := e.check(got); why != "" {
				st.lose("%s on device %s after the kills: %s", e.describe(), d.name, why)
			}
		}
		for _, e := range c.ledger.pick(func(e *entry) bool { return e.device == d.name && e.round == r && e.file != "" }) {
			if err := c.localBlob(d.home, e); err != nil {
				st.lose("%s: the blob on device %s after the kills: %v", e.describe(), d.name, err)
			}
		}
	}

	// 2. The seed, before any device pushes: a fresh device gets every
	// entry the seed acknowledged.
	fresh := c.freshDevice()
	got, err := c.list(fresh)
	if err != nil {
		die("round %d: %v", r, err)
	}
	acked := c.ledger.pick(func(e *entry) bool { return e.seedAcked })
	for _, e := range acked {
		if why := e.check(got); why != "" {
			st.lose("%s on the seed after the kills: %s", e.describe(), why)
		}
	}
	var unserved []*entry
	for _, e := range acked {
		if e.file == "" || e.blobChecked {
			continue
		}
		if err := c.fetchBlob(fresh, e, true); err != nil {
			vlog("round %d: %s: the seed does not serve the blob yet: %v", r, e.key, firstLine(err.Error()))
			unserved = append(unserved, e)
			continue
		}
		e.blobChecked = true
	}
	os.RemoveAll(fresh)

	// 3. Recovery: the devices sync; what the seed lacked comes back.
	bg := context.Background()
	for _, d := range devices {
		ok := false
		var sent int
		for range 5 {
			if sent, ok = c.sync(bg, d); ok {
				break
			}
			time.Sleep(time.Second)
		}
		if !ok {
			die("round %d: %s cannot sync with the seed after the kills", r, d.name)
		}
		if sent > 0 {
			vlog("round %d: %s sent the seed %d entries it lacked", r, d.name, sent)
			st.repair(sent)
		}
	}

	// 4. Now the seed holds every acknowledged entry and its blob.
	fresh = c.freshDevice()
	defer os.RemoveAll(fresh)
	got, err = c.list(fresh)
	if err != nil {
		die("round %d: %v", r, err)
	}
	for _, e := range c.ledger.pick(func(*entry) bool { return true }) {
		if why := e.check(got); why != "" {
			st.lose("%s on the seed after the devices synced: %s", e.describe(), why)
		}
	}
	for _, e := range c.ledger.pick(func(e *entry) bool { return e.file != "" && !e.blobChecked }) {
		if e.unserved {
			// Reported already: count it repaired if the seed got it since.
			if c.fetchBlob(fresh, e, true) == nil {
				vlog("round %d: %s: the seed serves the blob now", r, e.key)
				e.blobChecked = true
				st.repair(1)
			}
			continue
		}
		if err := c.blobFromSeed(fresh, e); err != nil {
			// Not lost while its writer holds it (checked above), but no
			// other device can get it.
			e.unserved = true
			what := "acknowledged by the device only"
			if e.seedAcked {
				what = "a one-shot sync to the seed exited 0 after the put"
			}
			st.finding("%s: the seed holds the entry but not its blob after the devices synced (%s; its writer holds the blob, "+
				"and stayed in live sync for 20 s): %v", e.describe(), what, firstLine(err.Error()))
			continue
		}
		if slices.Contains(unserved, e) {
			st.repair(1)
		}
		e.blobChecked = true
	}

	// 5. The devices pull everything; what each holds now must survive
	// the next round's kills.
	for _, d := range devices {
		if _, ok := c.sync(bg, d); !ok {
			die("round %d: %s cannot sync with the seed", r, d.name)
		}
		got, err := c.list(d.home)
		if err != nil {
			die("round %d: %s: %v", r, d.name, err)
		}
		for _, e := range c.ledger.pick(func(*entry) bool { return true }) {
			if e.check(got) == "" {
				d.known[e.key] = true
			} else {
				st.finding("%s: not on device %s after it synced with a seed that has it", e.describe(), d.name)
			}
		}
	}
}

// blobFromSeed fetches an entry's blob from the seed, giving the seed up to
// 20 s to fetch it from its writer (which keeps a live sync open meanwhile,
// serving its blobs).
func (c *cluster) blobFromSeed(home string, e *entry) error {
	err := c.fetchBlob(home, e, true)
	if err == nil {
		return nil
	}
	var writer *device
	for _, d := range []*device{c.laptop, c.phone} {
		if d.name == e.device {
			writer = d
		}
	}
	p, serr := start(writer.name+" sync --live", nil, "sync", "--home", writer.home, c.ns, c.seed.Addr(), "--live", "-q")
	if serr != nil {
		return serr
	}
	defer p.interrupt(5 * time.Second)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		if err = c.fetchBlob(home, e, true); err == nil {
			st.finding("%s: the seed served the blob only after its writer stayed connected (live) for a while", e.describe())
			return nil
		}
	}
	return err
}
