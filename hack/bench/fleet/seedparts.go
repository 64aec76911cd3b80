package main

import (
	"flag"
	"time"
)

// The parts that measure one seed process's cost per vault, per sync and
// per live session (idle.go, syncs.go, live.go).
var (
	idleVaults  = flag.Int("idle-vaults", 100_000, "idle: empty vaults hosted")
	syncDevices = flag.Int("sync-devices", 1000, "syncs: devices, each syncing its own vault (and, the baseline, one shared vault)")
	syncEntries = flag.Int("sync-entries", 10, "syncs: new entries per device and sync")
	syncPar     = flag.Int("sync-par", 16, "syncs: devices syncing at once")
	syncRuns    = flag.Int("sync-runs", 3, "syncs: timed rounds of each kind, alternating (median reported)")
	liveDevices = flag.Int("live-devices", 5000, "live: devices holding live sessions")
	liveHot     = flag.Int("live-hot", 100, "live: of those, devices live on one vault that a writer changes")
	liveProfile = flag.String("live-profile", "", "live: with every session live, write the seed's heap and goroutine profiles and metrics to PREFIX.heap, PREFIX.goroutine and PREFIX.metrics")
	liveProbes  = flag.Int("live-probes", 30, "live: entries written to the shared vault (each reaching every hot device)")
)

// runSeedParts runs the idle, syncs and live parts that -only selects.
func runSeedParts() {
	quiet := 5 * time.Minute
	if *smoke {
		*idleVaults, *syncDevices, *syncRuns, *liveDevices, *liveHot, *liveProbes = 2000, 60, 1, 200, 10, 5
		quiet = time.Minute
	}
	if runs("idle") {
		idleBench(*idleVaults, quiet)
	}
	if runs("syncs") {
		syncsBench(*syncDevices, *syncEntries, *syncPar, *syncRuns)
	}
	if runs("live") {
		liveBench(*liveDevices, *liveHot, *liveProbes)
	}
}
