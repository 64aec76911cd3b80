package main

import (
	"log"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/p2p"
)

func newHost(listen bool, rm network.ResourceManager) host.Host {
	key, err := identity.Generate()
	if err != nil {
		log.Fatal(err)
	}
	o := p2p.HostOptions{Key: key, ResourceManager: rm}
	if rm != nil && *maxRsvp > 0 {
		// A seed's watermarks, as node.New sets them: closing a connection
		// would end its reservation.
		o.ConnHigh = max(4096, 2**maxRsvp)
		o.ConnLow = o.ConnHigh * 3 / 4
	}
	if listen {
		o.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := p2p.NewHost(o)
	if err != nil {
		log.Fatal(err)
	}
	return h
}

func counterValue(reg *prometheus.Registry, name string, labels map[string]string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// metricsBy sums the counters and gauges called name on reg, by the value of
// label ("" without it); zero values are left out.
func metricsBy(reg *prometheus.Registry, name, label string) map[string]float64 {
	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label {
					key = lp.GetValue()
				}
			}
			if v := m.GetCounter().GetValue() + m.GetGauge().GetValue(); v != 0 {
				out[key] += v
			}
		}
	}
	return out
}

// seedResourceManager is the reservation seed's resource manager (see -seed-rcmgr).
func seedResourceManager() network.ResourceManager {
	if *maxRsvp == 0 {
		return nil
	}
	conns := 2 * *maxRsvp
	switch *seedRcmgr {
	case "default":
		return nil
	case "config":
		c := config.Default()
		c.Resources.MaxConnsInbound = conns
		nc, err := node.FromConfig(c)
		if err != nil {
			log.Fatal(err)
		}
		return nc.ResourceManager
	case "raised":
		// What node.New gives a seed: go-libp2p's autoscaled limits with
		// its service limits, connections raised above the reservations.
		mgr, err := node.SeedResourceManager(config.Resources{MaxConnsInbound: conns})
		if err != nil {
			log.Fatal(err)
		}
		return mgr
	}
	log.Fatalf("unknown -seed-rcmgr %q", *seedRcmgr)
	return nil
}

// defaultLimits are go-libp2p's default resource limits on this machine.
func defaultLimits() rcmgr.PartialLimitConfig {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	return limits.AutoScale().ToPartialLimitConfig()
}
