package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/relay"
)

// runRelaySeed runs relay.New in public mode with circuits of ≥ 1 GiB and
// 10 min, prints its address and answers STAT.
func runRelaySeed() {
	defer benchutil.StartProfile(*profile, "relay-seed")()
	h := newHost(true, seedResourceManager())
	defer h.Close()
	reg := prometheus.NewRegistry()
	limits := relay.Limits{
		MaxReservations:      *maxRsvp,
		MaxReservationsPerIP: *maxRsvp,
		CircuitBytes:         1 << 30,
		CircuitDuration:      10 * time.Minute,
	}
	if *bufArg > 0 {
		// Diagnostic: what relay.New would do with a larger copy buffer.
		rc := relayv2.DefaultResources()
		rc.Limit = &relayv2.RelayLimit{Duration: limits.CircuitDuration, Data: limits.CircuitBytes}
		rc.BufferSize = *bufArg
		r, err := relayv2.New(h, relayv2.WithResources(rc), relayv2.WithACL(relay.NewACL(config.RelayPublic)),
			relayv2.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true }))
		if err != nil {
			log.Fatal(err)
		}
		defer r.Close()
	} else {
		svc, err := relay.New(h, relay.NewACL(config.RelayPublic), relay.WithLimits(limits), relay.WithRegisterer(reg),
			relay.WithAdvertisePrivateAddrs())
		if err != nil {
			log.Fatal(err)
		}
		defer svc.Close()
	}
	fmt.Printf("ADDR %s\n", p2p.FullAddrs(h)[0])
	commands(func(cmd string, _ []string) {
		switch cmd {
		case "STAT":
			s := selfStat()
			s.Conns = len(h.Network().Conns())
			s.Reservations = int(counterValue(reg, "libp2p_relaysvc_reservations_total", map[string]string{"type": "opened"}) -
				counterValue(reg, "libp2p_relaysvc_reservations_total", map[string]string{"type": "closed"}))
			reply("STAT", s)
		default:
			log.Fatalf("unknown command %q", cmd)
		}
	})
}

// runSink serves protoSink: it reads a stream to its end, discards the
// bytes and answers with their count. With -seed it reserves a slot on the
// seed's relay and prints its circuit address; with -listen its own.
func runSink() {
	defer benchutil.StartProfile(*profile, "sink")()
	h := newHost(*listen, nil)
	defer h.Close()
	h.SetStreamHandler(protoSink, func(s network.Stream) {
		n, err := drain(s)
		if err != nil {
			log.Printf("sink: read after %d bytes: %v", n, err)
			s.Reset()
			return
		}
		if err := binary.Write(s, binary.BigEndian, n); err != nil {
			log.Printf("sink: answer: %v", err)
		}
		s.Close()
	})
	if *seedArg != "" {
		seed, err := p2p.ParsePeerAddr(*seedArg)
		if err != nil {
			log.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, err := relay.Reserve(ctx, h, seed); err != nil {
			log.Fatal(err)
		}
		cancel()
		circuit, err := relay.CircuitAddr(seed)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("ADDR %s/p2p/%s\n", circuit, h.ID())
	} else {
		fmt.Printf("ADDR %s\n", p2p.FullAddrs(h)[0])
	}
	commands(func(string, []string) {})
}

// drain reads r to its end in copyBuf reads and discards the bytes.
func drain(r io.Reader) (int64, error) {
	buf := make([]byte, copyBuf)
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

type sendResult struct {
	Seconds    float64
	Bytes      int64
	Limited    bool    // the stream's connection is relayed (limited)
	Remote     string  // its remote multiaddr
	SenderCPU  float64 // CPU seconds of each process during the transfer
	SeedCPU    float64
	SinkCPU    float64
	MachineCPU float64 // user+system CPU seconds of the whole machine
	SeedIdle   int64   // the seed's VmRSS before the transfer, VmHWM after
	SeedPeak   int64
}

// runSender connects to the sink (through the relay or directly), opens a
// stream that may use a limited connection and sends -size bytes; the time
// runs from the first byte written to the sink's answer that it read them all.
func runSender() {
	exitWithParent()
	defer benchutil.StartProfile(*profile, "sender")()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	info, err := p2p.ParsePeerAddr(*peerArg)
	if err != nil {
		log.Fatal(err)
	}
	var seedPID, sinkPID int
	if _, err := fmt.Sscanf(*pidsArg, "%d,%d", &seedPID, &sinkPID); err != nil {
		log.Fatalf("-pids %q: %v", *pidsArg, err)
	}
	h := newHost(false, nil)
	defer h.Close()
	if err := h.Connect(ctx, info); err != nil {
		log.Fatalf("connect to the sink at %s: %v", *peerArg, err)
	}
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "bench"), info.ID, protoSink)
	if err != nil {
		log.Fatalf("open a stream to the sink: %v", err)
	}
	res := sendResult{Limited: s.Conn().Stat().Limited, Remote: s.Conn().RemoteMultiaddr().String()}
	if res.Limited != *relayed {
		log.Fatalf("the stream's connection is limited=%v (%s), want limited=%v", res.Limited, res.Remote, *relayed)
	}
	buf := make([]byte, copyBuf)
	r := rand.NewChaCha8([32]byte{7})
	_, _ = r.Read(buf)
	seed := strconv.Itoa(seedPID)
	if seedPID != 0 {
		res.SeedIdle = benchutil.ProcStatus(seed, "VmRSS")
	}
	machine, seedCPU, sinkCPU, cpu := benchutil.MachineCPU(), benchutil.ProcCPU(seedPID), benchutil.ProcCPU(sinkPID), benchutil.SelfCPU()
	start := time.Now()
	for left := *sizeArg; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := s.Write(buf[:n]); err != nil {
			log.Fatalf("write after %d bytes: %v", *sizeArg-left, err)
		}
		left -= n
	}
	if err := s.CloseWrite(); err != nil {
		log.Fatal(err)
	}
	if err := binary.Read(s, binary.BigEndian, &res.Bytes); err != nil {
		log.Fatalf("the sink's answer: %v", err)
	}
	res.Seconds = time.Since(start).Seconds()
	res.SenderCPU, res.SeedCPU, res.SinkCPU = benchutil.SelfCPU()-cpu, benchutil.ProcCPU(seedPID)-seedCPU, benchutil.ProcCPU(sinkPID)-sinkCPU
	res.MachineCPU = benchutil.MachineCPU() - machine
	if seedPID != 0 {
		res.SeedPeak = benchutil.ProcStatus(seed, "VmHWM")
	}
	s.Close()
	if res.Bytes != *sizeArg {
		log.Fatalf("the sink read %d bytes, want %d", res.Bytes, *sizeArg)
	}
	reply("RESULT", res)
}

// transfer runs one sender against a fresh sink (and, relayed, a fresh seed).
func transfer(size int64, relayed bool, relayBuf int) sendResult {
	var seed *child
	sinkArgs := []string{"-listen"}
	if relayed {
		seed = spawn("relay-seed", "-relay-buffer", strconv.Itoa(relayBuf))
		defer seed.stop()
		sinkArgs = []string{"-seed", seed.expect("ADDR", 30*time.Second)}
	}
	sink := spawn("sink", sinkArgs...)
	defer sink.stop()
	addr := sink.expect("ADDR", time.Minute)
	seedPID := 0
	if seed != nil {
		seedPID = seed.pid()
	}
	sender := spawn("sender", "-peer", addr, "-size", strconv.FormatInt(size, 10),
		"-pids", fmt.Sprintf("%d,%d", seedPID, sink.pid()), fmt.Sprintf("-relayed=%v", relayed))
	defer sender.stop()
	var r sendResult
	if err := json.Unmarshal([]byte(sender.expect("RESULT", 10*time.Minute)), &r); err != nil {
		die("sender: %v", err)
	}
	return r
}

func medianRun(rs []sendResult) sendResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b sendResult) int { return cmp.Compare(a.Seconds, b.Seconds) })
	return s[len(s)/2]
}

// benchRelay: device A sends size bytes to device B through the seed's
// relay, then directly (B listening on loopback), runs times, interleaved.
func benchRelay(size int64, runs, diagBuf int) {
	l := benchutil.Label(size)
	fmt.Printf("# relay: seed = relay.New (public, circuits 1 GiB / 10 min) on p2p.NewHost at 127.0.0.1; B (no listen address) reserves a slot and sinks; A (no listen address) sends %s over a stream opened with WithAllowLimitedConn to B's circuit address, %d-KiB writes; direct: the same to B listening on 127.0.0.1 (TCP+TLS+yamux both ways); new processes per transfer, relayed and direct runs interleaved\n",
		l, copyBuf>>10)
	var rel, dir, big []sendResult
	for range runs {
		benchutil.Settle()
		rel = append(rel, transfer(size, true, 0))
		benchutil.Settle()
		dir = append(dir, transfer(size, false, 0))
		if diagBuf > 0 {
			benchutil.Settle()
			big = append(big, transfer(size, true, diagBuf))
		}
	}
	speeds := func(rs []sendResult) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = benchutil.MiB(r.Bytes) / r.Seconds
		}
		return out
	}
	benchutil.RunsLine("relay_"+l, speeds(rel), "MiB/s", 2)
	benchutil.RunsLine("direct_"+l, speeds(dir), "MiB/s", 2)
	r, d := medianRun(rel), medianRun(dir)
	fmt.Printf("# relayed connection: %s; direct: %s\n", r.Remote, d.Remote)
	rMiBps, dMiBps := benchutil.MiB(r.Bytes)/r.Seconds, benchutil.MiB(d.Bytes)/d.Seconds
	benchutil.Bench("relay_"+l+"_mibps", benchutil.Round(rMiBps, 1), "MiB/s")
	benchutil.Bench("direct_"+l+"_mibps", benchutil.Round(dMiBps, 1), "MiB/s")
	benchutil.Bench("relay_"+l+"_ratio_vs_direct", benchutil.Round(rMiBps/dMiBps, 3), "ratio")
	benchutil.Bench("relay_"+l+"_cpu_seconds", benchutil.Round(r.SeedCPU+r.SenderCPU+r.SinkCPU, 2), "s")
	benchutil.Bench("relay_"+l+"_cpu_seconds_seed", benchutil.Round(r.SeedCPU, 2), "s")
	benchutil.Bench("relay_"+l+"_cpu_seconds_sender", benchutil.Round(r.SenderCPU, 2), "s")
	benchutil.Bench("relay_"+l+"_cpu_seconds_sink", benchutil.Round(r.SinkCPU, 2), "s")
	benchutil.Bench("direct_"+l+"_cpu_seconds", benchutil.Round(d.SenderCPU+d.SinkCPU, 2), "s")
	benchutil.Bench("direct_"+l+"_cpu_seconds_sender", benchutil.Round(d.SenderCPU, 2), "s")
	benchutil.Bench("direct_"+l+"_cpu_seconds_sink", benchutil.Round(d.SinkCPU, 2), "s")
	benchutil.Bench("relay_"+l+"_seed_rss_above_idle_mib", benchutil.Round(benchutil.MiB(r.SeedPeak-r.SeedIdle), 1), "MiB")
	if diagBuf > 0 {
		// relay.New cannot set go-libp2p's copy buffer (Resources.BufferSize,
		// default 2 KiB): the same relay with a larger one shows what it costs.
		b := medianRun(big)
		bl := fmt.Sprintf("relay_%s_buffer%dk", l, diagBuf>>10)
		benchutil.RunsLine(bl, speeds(big), "MiB/s", 2)
		fmt.Printf("# diagnostic: go-libp2p's relay run directly (relayv2.New, same ACL and circuit limits) with Resources.BufferSize %d KiB (relay.New uses 64 KiB)\n", diagBuf>>10)
		benchutil.Bench(bl+"_mibps", benchutil.Round(benchutil.MiB(b.Bytes)/b.Seconds, 1), "MiB/s")
		benchutil.Bench(bl+"_ratio_vs_direct", benchutil.Round(benchutil.MiB(b.Bytes)/b.Seconds/dMiBps, 3), "ratio")
		benchutil.Bench(bl+"_cpu_seconds_seed", benchutil.Round(b.SeedCPU, 2), "s")
		benchutil.Bench(bl+"_cpu_seconds_sender", benchutil.Round(b.SenderCPU, 2), "s")
		benchutil.Bench(bl+"_cpu_seconds_sink", benchutil.Round(b.SinkCPU, 2), "s")
	}
	for _, x := range []struct {
		name string
		r    sendResult
		own  float64
	}{{"relay", r, r.SeedCPU + r.SenderCPU + r.SinkCPU}, {"direct", d, d.SenderCPU + d.SinkCPU}} {
		avail := x.r.Seconds * float64(runtime.NumCPU())
		if other := x.r.MachineCPU - x.own; avail >= 0.5 && other > 0.1*avail {
			fmt.Printf("# warning: other processes used %.2f of the %.2f CPU-seconds the machine had during the median %s run (load average %s): figures are noisy\n",
				other, avail, x.name, benchutil.Loadavg())
		}
	}
}
