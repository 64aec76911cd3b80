package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// seedProc is one `seedfleet seednode` process on loopback, hosting the
// vaults of a vaults file, with its admin API on loopback (readiness).
type seedProc struct {
	info    peer.AddrInfo
	dataDir string
	admin   string // host:port
	cmd     *exec.Cmd
}

// seedOpts configure startSeed; the zero value is a plain seed with the
// DHT in server mode and no peers, as a fleet pod starts.
type seedOpts struct {
	// extra is appended to the configuration file (YAML).
	extra string
}

// writeVaultsFile writes a hosted vaults file listing vaults.
func writeVaultsFile(path string, vaults []vault.NamespaceID) error {
	var b strings.Builder
	b.Grow(len(vaults) * 53)
	for _, ns := range vaults {
		b.WriteString(ns.String())
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// randomVaults returns n random namespace IDs (vaults nobody writes to).
func randomVaults(n int) []vault.NamespaceID {
	out := make([]vault.NamespaceID, n)
	for i := range out {
		_, _ = rand.Read(out[i][:])
	}
	return out
}

// startSeed runs a seed process named name in dir/name hosting the vaults
// listed in vaultsFile, and waits until its admin API says it is ready.
func startSeed(dir, bin, name, vaultsFile string, o seedOpts) (*seedProc, error) {
	_, key, _ := ed25519.GenerateKey(nil)
	keyFile := filepath.Join(dir, name+".key")
	if err := identity.Save(keyFile, key); err != nil {
		return nil, err
	}
	id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	info, err := p2p.ParsePeerAddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, id))
	if err != nil {
		return nil, err
	}
	s := &seedProc{info: info, dataDir: filepath.Join(dir, name), admin: fmt.Sprintf("127.0.0.1:%d", adminPort)}
	cfg := fmt.Sprintf(`dataDir: %s
identityFile: %s
listen: {tcp: [/ip4/127.0.0.1/tcp/%d], quic: [], webSocket: []}
admin: {listen: "%s"}
dht: {mode: Server}
hostedVaultsFile: %s
logLevel: Warn
%s`, s.dataDir, keyFile, port, s.admin, vaultsFile, o.extra)
	cfgFile := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "seednode", "--config", cfgFile)
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	if err := s.waitReady(2 * time.Minute); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *seedProc) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.admin+admin.PathReadyz, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		cancel()
		if s.cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("seed %s not ready after %s: %s", s.info.ID, within, last)
}

// saveProfile writes the seed's runtime profile name (heap, goroutine, ...)
// from its admin API to file, in pprof's format; "metrics" is the seed's
// Prometheus metrics instead.
func (s *seedProc) saveProfile(name, file string) error {
	token, err := os.ReadFile(filepath.Join(s.dataDir, "admin.token"))
	if err != nil {
		return err
	}
	c := admin.NewClient(s.admin, admin.WithToken(strings.TrimSpace(string(token))))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var data []byte
	if name == "metrics" {
		data, err = c.Metrics(ctx)
	} else {
		data, err = c.Profile(ctx, name)
	}
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o600)
}

func (s *seedProc) pid() int { return s.cmd.Process.Pid }

// rss is the seed's resident memory now (VmRSS).
func (s *seedProc) rss() int64 { return benchutil.ProcStatus(strconv.Itoa(s.pid()), "VmRSS") }

// cpu is the seed's user+sys CPU seconds so far.
func (s *seedProc) cpu() float64 { return benchutil.ProcCPU(s.pid()) }

// settledRSS samples the seed's RSS every second for d and returns the
// last sample: by then start-up garbage has been collected and returned.
func (s *seedProc) settledRSS(d time.Duration) int64 {
	end := time.Now().Add(d)
	r := s.rss()
	for time.Now().Before(end) {
		time.Sleep(time.Second)
		r = s.rss()
	}
	return r
}

// stop ends the seed (SIGTERM, then SIGKILL after 20 s) and waits for it.
func (s *seedProc) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// diskUsage is the space the files under dir take on disk (allocated
// blocks, as du counts them).
func diskUsage(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	return total
}
