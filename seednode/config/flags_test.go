package config

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// run does what a command does: bind, parse args, load the file (if any),
// apply the flags.
func run(t *testing.T, file string, args ...string) Config {
	t.Helper()
	fs := pflag.NewFlagSet("seednode", pflag.ContinueOnError)
	def := Default()
	def.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	cfg := Default()
	if file != "" {
		var err error
		if cfg, err = Load(writeFile(t, file)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cfg.ApplyFlags(fs); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestFlagPrecedence(t *testing.T) {
	a, b, c3 := testNamespace(1), testNamespace(2), testNamespace(3)
	file := `
dataDir: /var/lib/seed
listen:
  tcp: [/ip4/0.0.0.0/tcp/1]
  quic: [/ip4/0.0.0.0/udp/1/quic-v1]
hostedVaults: [` + a + `]
limits:
  maxEntries: 5
  maxClockSkew: 1m
dht:
  mode: client
logLevel: warn
`
	cases := []struct {
		name string
		file string
		args []string
		want func(*Config) // applied to the file's config (or Default without a file)
	}{
		{"no file, no flags", "", nil, func(*Config) {}},
		{"file, no flags", file, nil, func(*Config) {}},
		{"flag overrides the file", file, []string{"--max-entries", "7"}, func(c *Config) { c.Limits.MaxEntries = 7 }},
		{"flag overrides the default", "", []string{"--max-entries=7"}, func(c *Config) { c.Limits.MaxEntries = 7 }},
		{"flag equal to the default still overrides", file, []string{"--max-entries", "10000000"}, func(c *Config) { c.Limits.MaxEntries = 10_000_000 }},
		{"host-vault appends", file, []string{"--host-vault", b}, func(c *Config) { c.HostedVaults = []string{a, b} }},
		{"host-vault repeated", file, []string{"--host-vault", b, "--host-vault", c3}, func(c *Config) { c.HostedVaults = []string{a, b, c3} }},
		{"host-vault comma list", "", []string{"--host-vault", b + "," + c3}, func(c *Config) { c.HostedVaults = []string{b, c3} }},
		{"listen replaces tcp only", file, []string{"--listen", "/ip4/0.0.0.0/tcp/2"}, func(c *Config) { c.Listen.TCP = []string{"/ip4/0.0.0.0/tcp/2"} }},
		{"listen repeated", "", []string{"--listen", "/ip4/0.0.0.0/tcp/2", "--listen", "/ip6/::/tcp/2"}, func(c *Config) { c.Listen.TCP = []string{"/ip4/0.0.0.0/tcp/2", "/ip6/::/tcp/2"} }},
		{"listen empty", file, []string{"--listen="}, func(c *Config) { c.Listen.TCP = nil }},
		{"quic and ws", file, []string{"--listen-quic", "/ip4/0.0.0.0/udp/3/quic-v1", "--listen-ws", "/ip4/0.0.0.0/tcp/4/ws"}, func(c *Config) {
			c.Listen.QUIC = []string{"/ip4/0.0.0.0/udp/3/quic-v1"}
			c.Listen.WebSocket = []string{"/ip4/0.0.0.0/tcp/4/ws"}
		}},
		{"new identity", file, []string{"--new-identity"}, func(c *Config) { c.NewIdentity = true }},
		{"new identity false overrides the file", "newIdentity: true\n", []string{"--new-identity=false"}, func(c *Config) { c.NewIdentity = false }},
		{"rebuild store", file, []string{"--rebuild-store"}, func(c *Config) { c.RebuildStore = true }},
		{"everything else", file, []string{
			"--data", "./d", "--identity-file", "/run/seed/identity.key", "--announce", "/dns4/x.example/tcp/1", "--vaults-file", "v.txt", "--max-bytes", "99",
			"--max-clock-skew", "30s", "--admin-listen", "", "--dht-mode", "off", "--dht-bootstrap", "/ip4/1.2.3.4/tcp/1/p2p/x",
			"--relay-mode", "public", "--idle-timeout", "1m", "--log-level", "debug",
		}, func(c *Config) {
			c.DataDir = "./d"
			c.IdentityFile = "/run/seed/identity.key"
			c.Announce = []string{"/dns4/x.example/tcp/1"}
			c.HostedVaultsFile = "v.txt"
			c.Limits.MaxBytes = 99
			c.Limits.MaxClockSkew = Duration{30 * time.Second}
			c.Admin.Listen = ""
			c.DHT.Mode = DHTOff
			c.DHT.BootstrapPeers = []string{"/ip4/1.2.3.4/tcp/1/p2p/x"}
			c.Relay.Mode = RelayPublic
			c.IdleTimeout = Duration{time.Minute}
			c.LogLevel = LogDebug
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := Default()
			if tc.file != "" {
				var err error
				if want, err = Parse([]byte(tc.file)); err != nil {
					t.Fatal(err)
				}
			}
			tc.want(&want)
			if got := run(t, tc.file, tc.args...); !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
	// The spot checks the brief names, spelled out.
	if got := run(t, file).Limits.MaxEntries; got != 5 {
		t.Errorf("file 5, no flag: got %d", got)
	}
	if got := run(t, file, "--max-entries", "7").Limits.MaxEntries; got != 7 {
		t.Errorf("file 5, flag 7: got %d", got)
	}
	if got := run(t, file, "--host-vault", b).HostedVaults; !slices.Equal(got, []string{a, b}) {
		t.Errorf("--host-vault did not append: %v", got)
	}
}

func TestFlagValuesInAnyCase(t *testing.T) {
	c := run(t, "", "--dht-mode", "CLIENT", "--relay-mode", "Public", "--log-level", "eRRoR")
	if c.DHT.Mode != DHTClient || c.Relay.Mode != RelayPublic || c.LogLevel != LogError {
		t.Errorf("got %q %q %q", c.DHT.Mode, c.Relay.Mode, c.LogLevel)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	// A flag fixes the file's value, and canonicalises it.
	c = run(t, "dht: {mode: bogus}\n", "--dht-mode", "off")
	if c.DHT.Mode != DHTOff {
		t.Errorf("got %q", c.DHT.Mode)
	}
}

func TestFlagsBadValueIsNamedByValidate(t *testing.T) {
	c := run(t, "", "--dht-mode", "full", "--relay-mode", "open")
	err := c.Validate()
	if !errors.Is(err, ErrInvalid) || !slices.Equal(fields(t, err), []string{"dht.mode", "relay.mode"}) {
		t.Errorf("got %v", err)
	}
}

func TestBindFlags(t *testing.T) {
	fs := pflag.NewFlagSet("seednode", pflag.ContinueOnError)
	def := Default()
	def.BindFlags(fs)
	for name, want := range map[string]string{
		FlagData: "seed-data", FlagMaxEntries: "10000000", FlagMaxClockSkew: "10m0s", FlagAdminListen: "127.0.0.1:7401",
		FlagDHTMode: "Server", FlagRelayMode: "Agents", FlagIdleTimeout: "30s", FlagLogLevel: "Info",
		FlagListen: "[/ip4/127.0.0.1/tcp/7400]", FlagHostVault: "[]", FlagIdentityFile: "", FlagNewIdentity: "false", FlagRebuildStore: "false",
	} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("--%s not registered", name)
			continue
		}
		if f.DefValue != want {
			t.Errorf("--%s default %q, want %q", name, f.DefValue, want)
		}
	}
	n := 0
	fs.VisitAll(func(*pflag.Flag) { n++ })
	if n != 19 {
		t.Errorf("%d flags registered, want 19", n)
	}
	// Parsing flags must not write into the Config that registered them.
	if err := fs.Parse([]string{"--data", "x", "--listen", "/ip4/1.2.3.4/tcp/1"}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(def, Default()) {
		t.Errorf("BindFlags' receiver changed by parsing: %+v", def)
	}
	// A flag set without these flags changes nothing.
	c := Default()
	if err := c.ApplyFlags(pflag.NewFlagSet("other", pflag.ContinueOnError)); err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("ApplyFlags on an unrelated flag set: %v %+v", err, c)
	}
	// A flag of another type under one of the names is reported, not applied.
	other := pflag.NewFlagSet("other", pflag.ContinueOnError)
	other.Int(FlagData, 0, "")
	if err := other.Parse([]string{"--data", "3"}); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyFlags(other); err == nil || c.DataDir != DefaultDataDir {
		t.Errorf("mistyped flag: %v %q", err, c.DataDir)
	}
}
