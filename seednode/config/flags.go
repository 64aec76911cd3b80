package config

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
)

// Flag names registered by BindFlags.
const (
	FlagData         = "data"
	FlagIdentityFile = "identity-file"
	FlagNewIdentity  = "new-identity"
	FlagRebuildStore = "rebuild-store"
	FlagListen       = "listen"
	FlagListenQUIC   = "listen-quic"
	FlagListenWS     = "listen-ws"
	FlagAnnounce     = "announce"
	FlagHostVault    = "host-vault"
	FlagVaultsFile   = "vaults-file"
	FlagMaxEntries   = "max-entries"
	FlagMaxBytes     = "max-bytes"
	FlagMaxClockSkew = "max-clock-skew"
	FlagAdminListen  = "admin-listen"
	FlagDHTMode      = "dht-mode"
	FlagDHTBootstrap = "dht-bootstrap"
	FlagRelayMode    = "relay-mode"
	FlagIdleTimeout  = "idle-timeout"
	FlagLogLevel     = "log-level"
)

// BindFlags registers command-line flags for the common settings on fs. The
// values in c are only shown as the flags' defaults in --help (pass
// Default()); the flags are stored by fs, not in c. After fs.Parse, load the
// file and call ApplyFlags on the result: only flags set on the command line
// override it.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.String(FlagData, c.DataDir, "data directory: vault and blob stores, and the identity key unless --identity-file (config: dataDir)")
	fs.String(FlagIdentityFile, c.IdentityFile, "identity key file, which must exist (the operator creates it); empty: identity.key in --data, created if missing (config: identityFile)")
	fs.Bool(FlagNewIdentity, c.NewIdentity, "start under a new peer ID although the data directory has one: create identity.key in a directory with stores, or take another peer's key; for one start only (config: newIdentity)")
	fs.Bool(FlagRebuildStore, c.RebuildStore, "start although the vault store is not the one this data directory held: move it aside and rebuild the hosted vaults from their replicas; for one start only (config: rebuildStore)")
	fs.StringSlice(FlagListen, c.Listen.TCP, "TCP listen multiaddrs, replacing listen.tcp (e.g. /ip4/0.0.0.0/tcp/7400)")
	fs.StringSlice(FlagListenQUIC, c.Listen.QUIC, "QUIC listen multiaddrs, replacing listen.quic (e.g. /ip4/0.0.0.0/udp/7400/quic-v1)")
	fs.StringSlice(FlagListenWS, c.Listen.WebSocket, "WebSocket listen multiaddrs, replacing listen.webSocket (e.g. /ip4/0.0.0.0/tcp/7402/ws)")
	fs.StringSlice(FlagAnnounce, c.Announce, "multiaddrs to announce instead of the listen addresses (config: announce)")
	fs.StringSlice(FlagHostVault, nil, "namespace ID of a vault to host, added to hostedVaults (repeatable)")
	fs.String(FlagVaultsFile, c.HostedVaultsFile, "file listing hosted vaults, one per line: namespace ID [replica peer multiaddr ...]; re-read when it changes (config: hostedVaultsFile)")
	fs.Uint64(FlagMaxEntries, c.Limits.MaxEntries, "entries allowed per vault (config: limits.maxEntries)")
	fs.Uint64(FlagMaxBytes, c.Limits.MaxBytes, "value bytes a vault's entries may reference (config: limits.maxBytes)")
	fs.Duration(FlagMaxClockSkew, c.Limits.MaxClockSkew.Duration, "refuse entries timestamped further than this in the future (config: limits.maxClockSkew)")
	fs.String(FlagAdminListen, c.Admin.Listen, "admin HTTP host:port; empty turns it off (config: admin.listen)")
	fs.String(FlagDHTMode, string(c.DHT.Mode), "DHT mode: "+orList(DHTModes())+", in any case (config: dht.mode)")
	fs.StringSlice(FlagDHTBootstrap, c.DHT.BootstrapPeers, "DHT bootstrap peers, full multiaddrs with /p2p/, replacing dht.bootstrapPeers")
	fs.String(FlagRelayMode, string(c.Relay.Mode), "relay mode: "+orList(RelayModes())+", in any case (config: relay.mode)")
	fs.Duration(FlagIdleTimeout, c.IdleTimeout.Duration, "end a sync whose peer sends nothing for this long (config: idleTimeout)")
	fs.String(FlagLogLevel, string(c.LogLevel), "log level: "+orList(LogLevels())+", in any case (config: logLevel)")
}

// ApplyFlags copies into c the flags registered by BindFlags that were set on
// the command line (fs.Changed); the others leave c as it is. List flags
// replace the list, except --host-vault, which appends to hostedVaults.
// Call Validate afterwards. Flags missing from fs are skipped.
func (c *Config) ApplyFlags(fs *pflag.FlagSet) error {
	a := applier{fs: fs}
	a.str(FlagData, &c.DataDir)
	a.str(FlagIdentityFile, &c.IdentityFile)
	a.boolean(FlagNewIdentity, &c.NewIdentity)
	a.boolean(FlagRebuildStore, &c.RebuildStore)
	a.list(FlagListen, &c.Listen.TCP)
	a.list(FlagListenQUIC, &c.Listen.QUIC)
	a.list(FlagListenWS, &c.Listen.WebSocket)
	a.list(FlagAnnounce, &c.Announce)
	var hosted []string
	a.list(FlagHostVault, &hosted)
	c.HostedVaults = append(c.HostedVaults, hosted...)
	a.str(FlagVaultsFile, &c.HostedVaultsFile)
	a.u64(FlagMaxEntries, &c.Limits.MaxEntries)
	a.u64(FlagMaxBytes, &c.Limits.MaxBytes)
	a.dur(FlagMaxClockSkew, &c.Limits.MaxClockSkew)
	a.str(FlagAdminListen, &c.Admin.Listen)
	enum(&a, FlagDHTMode, &c.DHT.Mode, ParseDHTMode)
	a.list(FlagDHTBootstrap, &c.DHT.BootstrapPeers)
	enum(&a, FlagRelayMode, &c.Relay.Mode, ParseRelayMode)
	a.dur(FlagIdleTimeout, &c.IdleTimeout)
	enum(&a, FlagLogLevel, &c.LogLevel, ParseLogLevel)
	return errors.Join(a.errs...)
}

type applier struct {
	fs   *pflag.FlagSet
	errs []error
}

func (a *applier) changed(name string) bool {
	f := a.fs.Lookup(name)
	return f != nil && f.Changed
}

func (a *applier) check(name string, err error) bool {
	if err != nil {
		a.errs = append(a.errs, fmt.Errorf("--%s: %w", name, err))
		return false
	}
	return true
}

func (a *applier) str(name string, dst *string) bool {
	if !a.changed(name) {
		return false
	}
	v, err := a.fs.GetString(name)
	if a.check(name, err) {
		*dst = v
		return true
	}
	return false
}

// enum sets *dst to the flag's value in its canonical case (parse); an
// unknown value is kept for Validate to name.
func enum[T ~string](a *applier, name string, dst *T, parse func(string) T) {
	var s string
	if a.str(name, &s) {
		*dst = parse(s)
	}
}

func (a *applier) boolean(name string, dst *bool) {
	if !a.changed(name) {
		return
	}
	v, err := a.fs.GetBool(name)
	if a.check(name, err) {
		*dst = v
	}
}

func (a *applier) list(name string, dst *[]string) {
	if !a.changed(name) {
		return
	}
	v, err := a.fs.GetStringSlice(name)
	if a.check(name, err) {
		if len(v) == 0 {
			v = nil
		}
		*dst = v
	}
}

func (a *applier) u64(name string, dst *uint64) {
	if !a.changed(name) {
		return
	}
	v, err := a.fs.GetUint64(name)
	if a.check(name, err) {
		*dst = v
	}
}

func (a *applier) dur(name string, dst *Duration) {
	if !a.changed(name) {
		return
	}
	v, err := a.fs.GetDuration(name)
	if a.check(name, err) {
		dst.Duration = v
	}
}
