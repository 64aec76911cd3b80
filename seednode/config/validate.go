package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Bounds Validate enforces on durations.
const (
	MinReprovideInterval = time.Minute
	// MaxReprovideInterval: DHT provider records expire after 48h, so a
	// longer interval would let hosted vaults drop out of the DHT.
	MaxReprovideInterval = 48 * time.Hour
	MinRecordTTL         = time.Minute
	MaxRecordTTL         = 72 * time.Hour
	MinReplicateInterval = time.Second
	MaxReplicateInterval = time.Hour
)

// AminoProtocolPrefix is the public IPFS DHT's protocol prefix (Amino,
// kad-dht's amino.ProtocolPrefix). Validate refuses it: kad-dht requires a
// node using it to store the public DHT's values (/pk and /ipns records),
// which a seed does not, and refuses to start it otherwise.
const AminoProtocolPrefix = "/ipfs"

// Validate checks every field and returns all problems at once, joined with
// errors.Join. Each problem is a *FieldError naming the field as written in
// the file (e.g. "relay.limits.maxCircuits: must be at least 1") and wraps
// ErrInvalid. It reads no files and opens no sockets. Problems come section
// by section, in a fixed order.
func (c *Config) Validate() error {
	v := &validator{}
	v.storage(c)
	v.network(c)
	v.hostedVaults(c)
	v.vaultLimits(c.Limits)
	v.admin(c.Admin)
	v.dht(c.DHT)
	v.relay(c.Relay)
	v.rendezvous(c.Rendezvous)
	v.resources(c.Resources)
	v.intervals(c)
	oneOf(v, "logLevel", c.LogLevel, LogLevels())
	v.fleet(c.Fleet)
	return errors.Join(v.errs...)
}

// fleet checks a pod's place in its fleet and the fleet's policy; nothing
// when the seed is not part of a fleet.
func (v *validator) fleet(f Fleet) {
	if !f.Enabled() {
		return
	}
	if len(f.Name) > ticket.MaxFleetNameLen || strings.ContainsFunc(f.Name, unicode.IsControl) {
		v.add("fleet.name", "must be at most %d bytes without control characters", ticket.MaxFleetNameLen)
	}
	for i, s := range f.Members {
		if _, err := p2p.ParseDialAddr(s); err != nil {
			v.add(index("fleet.members", i), "%v", err)
		}
	}
	switch {
	case len(f.Members) == 0:
		v.add("fleet.members", "required: every pod's multiaddr with /p2p/, by ordinal")
	case f.Self < 0 || f.Self >= len(f.Members):
		v.add("fleet.self", "ordinal %d is not among the %d members", f.Self, len(f.Members))
	}
	if f.Leaving < 0 || (len(f.Members) > 0 && f.Leaving >= len(f.Members)) {
		v.add("fleet.leaving", "must be 0 to one less than the number of members (%d)", len(f.Members))
	}
	if f.Replicas < 1 || f.Replicas > ticket.MaxFleetReplicas || (len(f.Members) > 0 && f.Replicas > len(f.Members)) {
		v.add("fleet.replicas", "must be 1 to the number of members (%d), at most %d", len(f.Members), ticket.MaxFleetReplicas)
	}
	oneOf(v, "fleet.admission", f.Admission, fleet.Admissions())
	if f.Admission == fleet.Invite && f.KeyFile == "" {
		v.add("fleet.keyFile", "required with admission Invite: the fleet's key checks invites")
	}
	v.fleetLimits(f.Limits)
	if d := f.IdleExpiry.Duration; d != 0 && d < time.Hour {
		v.add("fleet.idleExpiry", "must be 0s (off) or at least 1h: devices offline for a night would lose their vaults")
	}
}

func (v *validator) fleetLimits(l FleetLimits) {
	v.atLeast("fleet.limits.maxVaultsPerAgent", l.MaxVaultsPerAgent, 1)
	if l.MaxVaultsPerAgent > hosting.MaxRecordVaults {
		v.add("fleet.limits.maxVaultsPerAgent", "must be at most %d", hosting.MaxRecordVaults)
	}
	v.atLeast64("fleet.limits.maxQuotaBytes", l.MaxQuotaBytes, 1)
	v.atLeast64("fleet.limits.maxQuotaEntries", l.MaxQuotaEntries, 1)
	if l.DefaultQuotaBytes > l.MaxQuotaBytes {
		v.add("fleet.limits.defaultQuotaBytes", "must be at most maxQuotaBytes (%d)", l.MaxQuotaBytes)
	}
	if l.DefaultQuotaEntries > l.MaxQuotaEntries {
		v.add("fleet.limits.defaultQuotaEntries", "must be at most maxQuotaEntries (%d)", l.MaxQuotaEntries)
	}
	if l.MaxQuotaBytes > l.MaxAgentBytes {
		v.add("fleet.limits.maxAgentBytes", "must be at least maxQuotaBytes (%d): one vault could not get the largest quota", l.MaxQuotaBytes)
	}
	v.atLeast("fleet.limits.maxVaultsPerPod", l.MaxVaultsPerPod, 1)
	v.atLeast("fleet.limits.requestsPerRangePerMinute", l.RequestsPerRangePerMinute, 1)
	if !(l.AdmissionsPerSecond > 0) || math.IsInf(l.AdmissionsPerSecond, 0) {
		v.add("fleet.limits.admissionsPerSecond", "must be above 0")
	}
}

// storage checks where the seed keeps its data and its key.
func (v *validator) storage(c *Config) {
	if strings.TrimSpace(c.DataDir) == "" {
		v.add("dataDir", "required")
	}
	if c.IdentityFile != "" && strings.TrimSpace(c.IdentityFile) != c.IdentityFile {
		v.add("identityFile", "%q has leading or trailing spaces", c.IdentityFile)
	}
}

// network checks the listen and announced addresses.
func (v *validator) network(c *Config) {
	v.listen("listen.tcp", c.Listen.TCP, "TCP", "/ip4/HOST/tcp/PORT", ma.P_TCP)
	v.listen("listen.quic", c.Listen.QUIC, "QUIC", "/ip4/HOST/udp/PORT/quic-v1", ma.P_UDP, ma.P_QUIC_V1)
	v.listen("listen.webSocket", c.Listen.WebSocket, "WebSocket", "/ip4/HOST/tcp/PORT/ws", ma.P_TCP, ma.P_WS)
	if len(c.Listen.All()) == 0 {
		v.add("listen", "no listen addresses (set at least one of tcp, quic, webSocket)")
	}
	for i, s := range c.Announce {
		f := index("announce", i)
		if m, ok := v.multiaddr(f, s); ok {
			if _, err := m.ValueForProtocol(ma.P_P2P); err == nil {
				v.add(f, "must not contain /p2p/ (the node adds its own peer ID)")
			}
		}
	}
}

func (v *validator) hostedVaults(c *Config) {
	for i, s := range c.HostedVaults {
		if _, err := vault.ParseNamespaceID(s); err != nil {
			v.errs = append(v.errs, &FieldError{Field: index("hostedVaults", i), Err: err})
		}
	}
}

func (v *validator) vaultLimits(l VaultLimits) {
	v.atLeast64("limits.maxEntries", l.MaxEntries, 1)
	v.atLeast64("limits.maxBytes", l.MaxBytes, 1)
	v.duration("limits.maxClockSkew", l.MaxClockSkew, time.Second, 0)
}

func (v *validator) admin(a Admin) {
	if a.Listen == "" {
		return // the admin endpoint is off
	}
	host, port, err := net.SplitHostPort(a.Listen)
	switch {
	case err != nil:
		v.add("admin.listen", "%q is not host:port (e.g. %q; empty turns the admin endpoint off)", a.Listen, DefaultAdminListen)
	case !isPort(port):
		v.add("admin.listen", "port %q is not a number from 0 to 65535", port)
	case strings.ContainsFunc(host, unicode.IsSpace):
		v.add("admin.listen", "host %q contains spaces", host)
	}
}

func isPort(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}

func (v *validator) dht(d DHT) {
	oneOf(v, "dht.mode", d.Mode, DHTModes())
	switch p := d.ProtocolPrefix; {
	case p == "":
		v.add("dht.protocolPrefix", "required (e.g. %q)", DefaultProtocolPrefix)
	case !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsFunc(p, unicode.IsSpace):
		v.add("dht.protocolPrefix", "%q must start with / and neither end with / nor contain spaces (e.g. %q)", p, DefaultProtocolPrefix)
	case p == AminoProtocolPrefix:
		v.add("dht.protocolPrefix", "%s is the public IPFS DHT's prefix, which kad-dht lets only a node storing that DHT's "+
			"/pk and /ipns records use; a seed stores neither, and would refuse to start. Use a prefix that only your "+
			"seeds and devices share (e.g. %q, the default)", p, DefaultProtocolPrefix)
	}
	for i, s := range d.BootstrapPeers {
		if _, err := p2p.ParseDialAddr(s); err != nil {
			v.errs = append(v.errs, &FieldError{Field: index("dht.bootstrapPeers", i), Err: err})
		}
	}
	v.duration("dht.reprovideInterval", d.ReprovideInterval, MinReprovideInterval, MaxReprovideInterval)
}

func (v *validator) relay(r Relay) {
	oneOf(v, "relay.mode", r.Mode, RelayModes())
	for i, s := range r.AllowedKeys {
		if _, err := identity.ParseDIDKey(s); err != nil {
			detail := err.Error()
			if _, after, ok := strings.Cut(detail, identity.ErrInvalidDID.Error()+": "); ok {
				detail = after
			}
			v.errs = append(v.errs, &FieldError{Field: index("relay.allowedKeys", i), Err: &detailErr{"not a did:key: " + detail, err}})
		}
	}
	l := r.Limits
	v.atLeast("relay.limits.maxReservations", l.MaxReservations, 1)
	v.atLeast("relay.limits.maxReservationsPerIP", l.MaxReservationsPerIP, 1)
	v.atLeast("relay.limits.maxReservationsPerASN", l.MaxReservationsPerASN, 1)
	v.atLeast("relay.limits.maxCircuits", l.MaxCircuits, 1)
	v.duration("relay.limits.reservationTTL", l.ReservationTTL, time.Minute, 0)
	v.duration("relay.limits.circuitDuration", l.CircuitDuration, time.Second, 0)
	v.atLeast64("relay.limits.circuitBytes", l.CircuitBytes, 1024)
	if l.CircuitBytes > math.MaxInt64 {
		v.add("relay.limits.circuitBytes", "must be at most %d", int64(math.MaxInt64))
	}
}

func (v *validator) rendezvous(r Rendezvous) {
	v.duration("rendezvous.recordTTL", r.RecordTTL, MinRecordTTL, MaxRecordTTL)
	v.atLeast("rendezvous.maxRecordsPerAgent", r.MaxRecordsPerAgent, 1)
}

func (v *validator) resources(r Resources) {
	v.atLeast("resources.maxMemoryMiB", r.MaxMemoryMiB, 0)
	if r.MaxMemoryMiB > math.MaxInt64>>20 {
		v.add("resources.maxMemoryMiB", "must be at most %d", math.MaxInt64>>20)
	}
	v.atLeast("resources.maxFileDescriptors", r.MaxFileDescriptors, 0)
	v.atLeast("resources.maxConnsInbound", r.MaxConnsInbound, 0)
	v.atLeast("resources.maxStreamsInbound", r.MaxStreamsInbound, 0)
}

// intervals checks the top-level durations.
func (v *validator) intervals(c *Config) {
	v.duration("replicateInterval", c.ReplicateInterval, MinReplicateInterval, MaxReplicateInterval)
	v.duration("idleTimeout", c.IdleTimeout, time.Second, 0)
	v.duration("gcInterval", c.GCInterval, time.Second, 0)
	v.duration("scrubInterval", c.ScrubInterval, time.Minute, 0)
}

// NamespaceIDs parses HostedVaults (not HostedVaultsFile, which the node
// reads and watches itself), dropping duplicates and keeping the order.
func (c *Config) NamespaceIDs() ([]vault.NamespaceID, error) {
	var (
		ids  []vault.NamespaceID
		errs []error
	)
	for i, s := range c.HostedVaults {
		ns, err := vault.ParseNamespaceID(s)
		if err != nil {
			errs = append(errs, &FieldError{Field: index("hostedVaults", i), Err: err})
			continue
		}
		if !slices.Contains(ids, ns) {
			ids = append(ids, ns)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ids, nil
}

type validator struct{ errs []error }

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, fieldErr(field, format, args...))
}

func (v *validator) atLeast(field string, got, min int) {
	if got < min {
		if min == 0 {
			v.add(field, "must not be negative (0 keeps the libp2p default)")
		} else {
			v.add(field, "must be at least %d", min)
		}
	}
}

func (v *validator) atLeast64(field string, got, min uint64) {
	if got < min {
		v.add(field, "must be at least %d", min)
	}
}

// duration checks min <= d (and d <= max unless max is 0).
func (v *validator) duration(field string, d Duration, min, max time.Duration) {
	switch {
	case d.Duration < min:
		v.add(field, "must be at least %s", formatDuration(min))
	case max > 0 && d.Duration > max:
		v.add(field, "must be at most %s", formatDuration(max))
	}
}

// oneOf wants got to be one of allowed, spelled exactly: values read from a
// file or flags are already in their canonical case.
func oneOf[T ~string](v *validator, field string, got T, allowed []T) {
	if slices.Contains(allowed, got) {
		return
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	hint := ""
	if c := canonical(string(got), allowed); c != got {
		hint = fmt.Sprintf(" (did you mean %s?)", c)
	}
	v.add(field, "%q is not one of %s%s", shorten(string(got)), strings.Join(names, ", "), hint)
}

func (v *validator) multiaddr(field, s string) (ma.Multiaddr, bool) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		v.add(field, "not a multiaddr: %v", err)
		return nil, false
	}
	return m, true
}

// listen checks that every address is /ip4 or /ip6 followed by exactly the
// protocols given.
func (v *validator) listen(field string, addrs []string, kind, example string, protos ...int) {
	for i, s := range addrs {
		f := index(field, i)
		m, ok := v.multiaddr(f, s)
		if !ok {
			continue
		}
		ps := m.Protocols()
		codes := make([]int, len(ps))
		for j, p := range ps {
			codes[j] = p.Code
		}
		if len(codes) == 0 || (codes[0] != ma.P_IP4 && codes[0] != ma.P_IP6) || !slices.Equal(codes[1:], protos) {
			v.add(f, "%q is not a %s multiaddr (want %s, or /ip6/...)", s, kind, example)
		}
	}
}

func index(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }

// detailErr shows msg and unwraps to err.
type detailErr struct {
	msg string
	err error
}

func (e *detailErr) Error() string { return e.msg }
func (e *detailErr) Unwrap() error { return e.err }
