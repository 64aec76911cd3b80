package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// idleBench measures what a seed spends per hosted vault that nobody uses:
// a seed hosting n empty vaults (a vaults file) next to the same seed
// hosting none, each measured once it has gone quiet after start (its DHT
// announcements done). The figures are the differences over n.
func idleBench(n int, quietWithin time.Duration) {
	dir, err := os.MkdirTemp("", "bench-fleet-idle-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin, err := seedfleetBin()
	if err != nil {
		log.Fatal(err)
	}
	measure := func(name string, vaults []vault.NamespaceID) (rss, disk int64, took time.Duration) {
		file := filepath.Join(dir, name+".vaults")
		if err := writeVaultsFile(file, vaults); err != nil {
			log.Fatal(err)
		}
		start := time.Now()
		s, err := startSeed(dir, bin, name, file, seedOpts{})
		if err != nil {
			log.Fatal(err)
		}
		defer s.stop()
		took = time.Since(start)
		if err := checkHosting(dir, s, vaults); err != nil {
			s.stop()
			log.Fatal(err)
		}
		quiet := waitQuiet(s, quietWithin)
		rss, disk = s.settledRSS(3*time.Second), diskUsage(s.dataDir)
		log.Printf("idle: %d vaults hosted: ready in %s, quiet after %s; RSS %.1f MiB, disk %.1f MiB",
			len(vaults), took.Round(time.Millisecond), quiet.Round(time.Second), benchutil.MiB(rss), benchutil.MiB(disk))
		return rss, disk, took
	}
	rss0, disk0, _ := measure("idle-none", nil)
	rssN, diskN, took := measure(fmt.Sprintf("idle-%s", countLabel(n)), randomVaults(n))
	benchutil.Bench("fleet_idle_vault_rss_bytes", benchutil.Round(float64(rssN-rss0)/float64(n), 0), "B")
	benchutil.Bench("fleet_idle_vault_disk_bytes", benchutil.Round(float64(diskN-disk0)/float64(n), 0), "B")
	benchutil.Bench("fleet_idle_baseline_rss_mib", benchutil.Round(benchutil.MiB(rss0), 1), "MiB")
	benchutil.Bench("fleet_idle_baseline_disk_mib", benchutil.Round(benchutil.MiB(disk0), 1), "MiB")
	benchutil.Bench("fleet_idle_hosted_rss_mib", benchutil.Round(benchutil.MiB(rssN), 1), "MiB")
	benchutil.Bench("fleet_idle_hosted_disk_mib", benchutil.Round(benchutil.MiB(diskN), 1), "MiB")
	benchutil.Bench("fleet_idle_start_seconds", benchutil.Round(took.Seconds(), 2), "s")
}

// checkHosting makes sure the seed serves a hosted vault (an empty sync
// succeeds) and refuses one it does not host, so the figures are of a seed
// that really hosts the list.
func checkHosting(dir string, s *seedProc, vaults []vault.NamespaceID) error {
	st, err := vault.Open(filepath.Join(dir, "check-"+s.info.ID.String()), vault.StoreOptions{NoSync: true, CacheSize: 1 << 20})
	if err != nil {
		return err
	}
	defer st.Close()
	nsKey, ns := newVaultKey()
	d := newDevice(nsKey)
	h, svc, err := d.online(st, s.info)
	if err != nil {
		return err
	}
	defer h.Close()
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := svc.Sync(ctx, s.info.ID, ns, vault.SyncOptions{}); !errors.Is(err, vault.ErrNotHosted) {
		return fmt.Errorf("a vault the seed does not host: sync returned %v, want a refusal", err)
	}
	if len(vaults) > 0 {
		if _, err := svc.Sync(ctx, s.info.ID, vaults[len(vaults)/2], vault.SyncOptions{}); err != nil {
			return fmt.Errorf("a hosted vault: %w", err)
		}
	}
	return nil
}

// waitQuiet waits until the seed spends less than 2% of a CPU over 2 s (its
// start-up work, DHT announcements included, is done), or within passes;
// it returns how long that took.
func waitQuiet(s *seedProc, within time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < within {
		c0 := s.cpu()
		time.Sleep(2 * time.Second)
		if s.cpu()-c0 < 0.04 {
			break
		}
	}
	return time.Since(start)
}

// countLabel names a count: 100k, 1000, 200.
func countLabel(n int) string {
	if n >= 10000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
