package main

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/blobs"
)

// runMany measures many small blobs: a collection of 2,000 members of
// 64 KiB fetched into the device's store (every member verified, written
// to its files and durable: the fetch returns only then), next to the same
// 125 MiB as one blob fetched the same way. Seed and device are separate
// processes, as for the large transfer; the two take turns, and the ratio
// of their medians is printed with each turn's ratio.
func runMany(root string) {
	members, memberSize := 2000, uint64(64<<10)
	runs := 5
	if *smoke {
		members, runs = 50, 1
	}
	if *runsArg > 0 {
		runs = *runsArg
	}
	total := uint64(members) * memberSize
	many := fmt.Sprintf("blob_%dx%dk", members, memberSize>>10)
	one := fmt.Sprintf("blob_%s_one", benchutil.Label(total))
	fmt.Printf("# many small blobs: %d run(s) of each figure, taking turns; target %s_ratio_vs_one_blob <= 1.5\n", runs, many)

	seedStore := filepath.Join(root, "seed-many")
	st, err := blobs.Open(seedStore)
	if err != nil {
		die("%v", err)
	}
	whole := make([]byte, 0, total)
	var c blobs.Collection
	for i := range members {
		data := randomBytes(memberSize, uint64(1000+i))
		whole = append(whole, data...)
		h, err := st.AddBytes(data)
		if err != nil {
			die("add member: %v", err)
		}
		c = append(c, blobs.CollectionEntry{Name: fmt.Sprintf("files/%04d.bin", i), Hash: h, Size: memberSize})
	}
	collHash, _, err := st.AddCollection(c)
	if err != nil {
		die("add collection: %v", err)
	}
	oneHash, err := st.AddBytes(whole)
	if err != nil {
		die("add one blob: %v", err)
	}
	if err := st.Close(); err != nil {
		die("%v", err)
	}

	type kind struct {
		name, mode string
		hash       [32]byte
	}
	kinds := []kind{{many, "collection", collHash}, {one, "blob", oneHash}}
	results := map[string][]deviceResult{}
	for range runs {
		for _, k := range kinds {
			setCache(*cold, seedStore)
			benchutil.Settle()
			r := transfer(k.mode, seedStore, "", filepath.Join(root, "device-"+k.mode), k.hash, total)
			if *verbose {
				fmt.Printf("# %s run: %.3f s, CPU-seconds device %.2f, seed %.2f\n", k.name, r.Seconds, r.DeviceCPU, r.SeedCPU)
			}
			results[k.name] = append(results[k.name], r)
		}
	}
	med := map[string]deviceResult{}
	for _, k := range kinds {
		rs := results[k.name]
		secs := make([]float64, len(rs))
		for i, r := range rs {
			secs[i] = r.Seconds
		}
		benchutil.RunsLine(k.name, secs, "s", 3)
		sorted := slices.Clone(rs)
		slices.SortFunc(sorted, func(a, b deviceResult) int { return cmp.Compare(a.Seconds, b.Seconds) })
		m := sorted[len(sorted)/2]
		med[k.name] = m
		fmt.Printf("# %s median run: CPU-seconds device %.2f, seed %.2f; device write syscalls %d\n", k.name, m.DeviceCPU, m.SeedCPU, m.WriteCalls)
		benchutil.Bench(k.name+"_seconds", benchutil.Round(m.Seconds, 3), "s")
		benchutil.Bench(k.name+"_cpu_seconds", benchutil.Round(m.DeviceCPU+m.SeedCPU, 2), "s")
		results[k.name] = append([]deviceResult{m}, rs...)
	}
	pairedRatios(one, results[one], many, results[many])
	benchutil.Bench(many+"_ratio_vs_one_blob", benchutil.Round(med[many].Seconds/med[one].Seconds, 3), "ratio")
	os.RemoveAll(seedStore)
}

// randomBytes returns n random bytes from a fixed seed.
func randomBytes(n, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	_, _ = r.Read(b)
	return b
}
