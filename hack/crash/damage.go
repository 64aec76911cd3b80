package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/seedfleet/seedfleet/seednode/admin"
)

// outcome is what a damaged seed must do.
type outcome int

const (
	// refuse: exit at start with an error that names what is damaged.
	refuse outcome = iota
	// heal: start, serve, report the damaged vault (admin /status
	// damage), and rebuild it from the other replica to the same
	// fingerprint with no step by hand.
	heal
)

// damageCase damages a stopped seed's data directory.
type damageCase struct {
	name string
	// damage changes the data directory of a stopped seed.
	damage func(dataDir string) error
	want   outcome
	// mention: for refuse, words the error must contain (case-insensitive).
	mention []string
	// pending: the behaviour is being built. A seed that does not do it
	// yet is a finding, not a failure; drop the flag once it works. (A new
	// case whose fix is under way starts pending.)
	pending bool
}

// damageCases is the table to extend: each case gets a copy of a seed's
// data directory (the crash rounds' seed, its vault replicated to a second
// seed that stays up and healthy), damaged by its function.
var damageCases = []damageCase{
	{
		name:    "identity.key deleted",
		damage:  removeGlob("identity.key"),
		want:    refuse,
		mention: []string{"identity.key"},
	},
	{
		// Pebble without its manifest marker starts afresh from the last
		// WAL: a different, emptier store.
		name:    "vault store's marker.manifest.* deleted",
		damage:  removeGlob("vaults/marker.manifest.*"),
		want:    refuse,
		mention: []string{"vault store"},
	},
	{
		name:   "a byte flipped in the middle of the vault store's largest table",
		damage: flipLargest("vaults/*.sst"),
		want:   heal,
	},
}

// removeGlob deletes the files matching pattern (at least one must).
func removeGlob(pattern string) func(string) error {
	return func(dir string) error {
		ms, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			return fmt.Errorf("nothing matches %s", pattern)
		}
		for _, m := range ms {
			if err := os.Remove(m); err != nil {
				return err
			}
		}
		return nil
	}
}

// flipLargest inverts one byte in the middle of the largest file matching
// pattern.
func flipLargest(pattern string) func(string) error {
	return func(dir string) error {
		ms, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		var path string
		var size int64
		for _, m := range ms {
			if fi, err := os.Stat(m); err == nil && fi.Size() > size {
				path, size = m, fi.Size()
			}
		}
		if path == "" {
			return fmt.Errorf("nothing matches %s", pattern)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, size/2); err != nil {
			return err
		}
		b[0] ^= 0xff
		_, err = f.WriteAt(b, size/2)
		return err
	}
}

// damageCases runs the table against copies of the crash seed's data.
func (c *cluster) damageCases() {
	s1 := c.seed
	if p := s1.proc(); p == nil || !p.running() {
		if err := s1.start(time.Minute); err != nil {
			die("damage: %v", err)
		}
	}
	s2, err := newSeed("replica", c.root)
	if err != nil {
		die("%v", err)
	}
	if err := s2.start(time.Minute); err != nil {
		die("damage: %v", err)
	}
	defer s2.kill()
	// Each seed lists the other as the vault's replica peer.
	if err := os.WriteFile(s2.vaultsFile, []byte(c.ns+" "+s1.Addr()+"\n"), 0o644); err != nil {
		die("%v", err)
	}
	if err := os.WriteFile(s1.vaultsFile, []byte(c.ns+" "+s2.Addr()+"\n"), 0o644); err != nil {
		die("%v", err)
	}
	if err := c.converged(s1, s2, 2*time.Minute, nil); err != nil {
		die("damage: the replica never caught up with the seed: %v", err)
	}
	s1.kill() // a crash, not a clean stop: the store as a kill leaves it
	fixture := filepath.Join(c.root, "damage-fixture")
	if err := copyDir(s1.data, fixture); err != nil {
		die("%v", err)
	}
	for _, dc := range damageCases {
		c.damageCase(dc, s1, s2, fixture)
		s1.kill()
	}
	// The suite's seed gets its own data back.
	if err := os.RemoveAll(s1.data); err != nil {
		die("%v", err)
	}
	if err := copyDir(fixture, s1.data); err != nil {
		die("%v", err)
	}
}

func (c *cluster) damageCase(dc damageCase, s1, s2 *seed, fixture string) {
	miss := func(format string, args ...any) {
		msg := fmt.Sprintf("damage case %q: ", dc.name) + fmt.Sprintf(format, args...)
		if dc.pending {
			st.finding("%s (behaviour being built: not a failure yet)", msg)
			return
		}
		st.fail("%s", msg)
	}
	if err := os.RemoveAll(s1.data); err != nil {
		die("%v", err)
	}
	if err := copyDir(fixture, s1.data); err != nil {
		die("%v", err)
	}
	if err := dc.damage(s1.data); err != nil {
		die("damage case %q: %v", dc.name, err)
	}
	err := s1.start(time.Minute)
	var ref *errRefused
	refused := errors.As(err, &ref)
	if err != nil && !refused {
		die("damage case %q: %v", dc.name, err)
	}
	switch dc.want {
	case refuse:
		if !refused {
			miss("the seed started; want a refusal naming %s", strings.Join(dc.mention, ", "))
			return
		}
		msg := errorLine(ref.output)
		for _, m := range dc.mention {
			if !strings.Contains(strings.ToLower(msg), strings.ToLower(m)) {
				miss("refused, but the error does not name %q: %s", m, msg)
				return
			}
		}
		fmt.Printf("# damage case %q: refused as it should: %s\n", dc.name, msg)
	case heal:
		if refused {
			miss("the seed refused to start; want it to serve and heal: %s", errorLine(ref.output))
			return
		}
		var seen *admin.VaultDamage
		err := c.converged(s1, s2, 2*time.Minute, func(v admin.VaultStatus) {
			if v.Damage != nil && seen == nil {
				seen = v.Damage
			}
		})
		switch {
		case err != nil:
			miss("not healed: %v", err)
		case seen == nil:
			miss("the seed reported no damage (the flipped byte went unnoticed, or was never read)")
		default:
			st.repair(1)
			fmt.Printf("# damage case %q: reported (%s: %s) and healed from the replica\n", dc.name, seen.State, firstLine(seen.Reason))
		}
	}
}

// errorLine is the "error:" line of a seed's output, or its last line.
func errorLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "error:") {
			return l
		}
	}
	return lines[len(lines)-1]
}

// converged waits until both seeds report the vault with the same
// fingerprint and entry count and no damage. watch sees every status of a's
// vault read meanwhile. a must keep running: a crash is an error.
func (c *cluster) converged(a, b *seed, within time.Duration, watch func(admin.VaultStatus)) error {
	var last string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if p := a.proc(); !p.running() {
			return fmt.Errorf("%s exited: %s", a.name, p.out.String())
		}
		va, errA := c.vaultStatus(a)
		vb, errB := c.vaultStatus(b)
		if err := errors.Join(errA, errB); err != nil {
			last = err.Error()
			continue
		}
		if watch != nil {
			watch(va)
		}
		if va.Damage == nil && vb.Damage == nil && va.Fingerprint == vb.Fingerprint && va.Entries == vb.Entries && va.Entries > 0 {
			return nil
		}
		last = fmt.Sprintf("%s: %d entries, fingerprint %.12s, damage %v; %s: %d entries, fingerprint %.12s",
			a.name, va.Entries, va.Fingerprint, va.Damage, b.name, vb.Entries, vb.Fingerprint)
	}
	return fmt.Errorf("not within %s: %s", within, last)
}

// vaultStatus reads the vault's status from a seed's admin API.
func (c *cluster) vaultStatus(s *seed) (admin.VaultStatus, error) {
	s.mu.Lock()
	url := s.admin + admin.PathStatus
	s.mu.Unlock()
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return admin.VaultStatus{}, err
	}
	defer resp.Body.Close()
	var status admin.Status
	if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
		return admin.VaultStatus{}, fmt.Errorf("%s: %w", url, err)
	}
	for _, v := range status.Vaults {
		if v.Namespace == c.ns {
			return v, nil
		}
	}
	return admin.VaultStatus{}, fmt.Errorf("%s does not list vault %s", s.name, c.ns)
}

// copyDir copies a directory tree of regular files.
func copyDir(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
