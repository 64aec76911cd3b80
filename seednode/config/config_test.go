package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/seedfleet/seedfleet/seednode/vault"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() is not valid:\n%v", err)
	}
	// Spot checks of documented defaults.
	if c.DataDir != "seed-data" || c.Admin.Listen != "127.0.0.1:7401" || c.DHT.Mode != DHTServer ||
		c.DHT.ProtocolPrefix != "/seedfleet" || c.DHT.ReprovideInterval.Duration != time.Hour ||
		c.Relay.Mode != RelayAgents || c.Relay.Limits.CircuitBytes != 1<<20 || !c.Rendezvous.Enabled ||
		c.Rendezvous.RecordTTL.Duration != 2*time.Hour || c.IdleTimeout.Duration != 30*time.Second ||
		c.GCInterval.Duration != 5*time.Minute || c.LogLevel != LogInfo || c.Relay.AdvertisePrivateAddrs || c.IdentityFile != "" ||
		c.ReplicateInterval.Duration != 10*time.Second {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if c.Limits.Vault() != (vault.Limits{MaxEntries: vault.DefaultLimits.MaxEntries, MaxBytes: vault.DefaultLimits.MaxBytes, MaxClockSkew: vault.DefaultLimits.MaxClockSkew}) {
		t.Errorf("vault limits %+v do not match vault.DefaultLimits", c.Limits.Vault())
	}
	for _, a := range c.Listen.All() {
		if !strings.HasPrefix(a, "/ip4/127.0.0.1/") {
			t.Errorf("default listen address %s is not loopback", a)
		}
	}
	// Fresh slices on every call.
	c.Listen.TCP[0] = "changed"
	if Default().Listen.TCP[0] == "changed" {
		t.Error("Default() shares slices between calls")
	}
}

func TestExampleIsDefault(t *testing.T) {
	got, err := Parse([]byte(Example()))
	if err != nil {
		t.Fatalf("Example() does not parse:\n%v", err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Example() differs from Default():\n got %+v\nwant %+v", got, want)
	}
}

func TestExampleListsEverySettingWithAComment(t *testing.T) {
	j, err := yaml.YAMLToJSON([]byte(Example()))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range leafPaths(reflect.TypeFor[Config](), "") {
		var v any = doc
		for _, part := range strings.Split(path, ".") {
			m, _ := v.(map[string]any)
			var ok bool
			if v, ok = m[part]; !ok {
				t.Errorf("Example() does not list %s", path)
				break
			}
		}
	}
	// Every setting line is explained by the comment line right above it.
	lines := strings.Split(Example(), "\n")
	key := regexp.MustCompile(`^\s*[A-Za-z]+:`)
	for i, l := range lines {
		if !key.MatchString(l) {
			continue
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "# ") {
			t.Errorf("Example() line %d %q has no comment line above it", i+1, l)
		}
	}
}

// allChanged differs from Default() in every setting, with values that are
// awkward in YAML.
func allChanged() Config {
	return Config{
		DataDir:           "off", // YAML 1.1 would read it unquoted as false
		IdentityFile:      "~",   // YAML would read it unquoted as null
		NewIdentity:       true,
		RebuildStore:      true,
		Listen:            Listen{TCP: []string{"/ip4/0.0.0.0/tcp/1", "/ip6/::/tcp/1"}, QUIC: nil, WebSocket: []string{"/ip4/0.0.0.0/tcp/2/ws"}},
		Announce:          []string{"/dns4/seed.example.com/tcp/7400"},
		HostedVaults:      []string{testNamespace(1), testNamespace(2)},
		HostedVaultsFile:  "123",
		ReplicateInterval: Duration{61 * time.Minute},
		Limits:            VaultLimits{MaxEntries: math.MaxUint64, MaxBytes: 1<<53 + 1, MaxClockSkew: Duration{1500 * time.Millisecond}},
		Admin:             Admin{Listen: "", TokenFile: "yes"},
		DHT:               DHT{Mode: DHTOff, ProtocolPrefix: "/x: y #z", BootstrapPeers: []string{"/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWexample"}, ReprovideInterval: Duration{90 * time.Minute}},
		Relay: Relay{Mode: RelayOff, AllowedKeys: []string{testDID(3)}, AdvertisePrivateAddrs: true, Limits: RelayLimits{
			MaxReservations: 1, MaxReservationsPerIP: 3, MaxReservationsPerASN: 4,
			MaxCircuits: 5, ReservationTTL: Duration{-time.Second}, CircuitDuration: Duration{time.Nanosecond}, CircuitBytes: 0,
		}},
		Rendezvous:    Rendezvous{Enabled: false, RecordTTL: Duration{73 * time.Hour}, MaxRecordsPerAgent: -1},
		Resources:     Resources{MaxMemoryMiB: 1, MaxFileDescriptors: 2, MaxConnsInbound: 3, MaxStreamsInbound: math.MaxInt, Metrics: true},
		IdleTimeout:   Duration{0},
		GCInterval:    Duration{math.MaxInt64},
		ScrubInterval: Duration{25 * time.Hour},
		LogLevel:      "null",
		Fleet: Fleet{Name: "yes", Self: 2, Members: []string{"/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWexample"}, Replicas: -1, Leaving: 7,
			Admission: "no", KeyFile: "on", IdleExpiry: Duration{49 * time.Hour},
			Limits: FleetLimits{MaxVaultsPerAgent: 1, DefaultQuotaBytes: 2, DefaultQuotaEntries: 3, MaxQuotaBytes: 4,
				MaxQuotaEntries: 5, MaxAgentBytes: 6, MaxVaultsPerPod: 7, AdmissionsPerSecond: 0.5, RequestsPerRangePerMinute: 9}},
	}
}

func TestAllChangedChangesEverything(t *testing.T) {
	c, d := reflect.ValueOf(allChanged()), reflect.ValueOf(Default())
	for _, p := range leafPaths(reflect.TypeFor[Config](), "") {
		if reflect.DeepEqual(leafValue(c, p).Interface(), leafValue(d, p).Interface()) {
			t.Errorf("allChanged() keeps the default of %s, so the round trip does not test it", p)
		}
	}
}

func TestMarshalLoadRoundTrip(t *testing.T) {
	empty := Default()
	empty.Listen = Listen{QUIC: []string{"/ip4/127.0.0.1/udp/1/quic-v1"}} // defaults replaced by nothing
	cases := map[string]Config{
		"default":     Default(),
		"all changed": allChanged(),
		"empty lists": empty,
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			data, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Load(writeFile(t, string(data)))
			if err != nil {
				t.Fatalf("Load(Marshal()): %v\n%s", err, data)
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("round trip changed the config:\n got %+v\nwant %+v\nYAML:\n%s", got, c, data)
			}
		})
	}
	// Empty lists are written as [], not null.
	if data, err := empty.Marshal(); err != nil || !strings.Contains(string(data), "\n  tcp: []\n") || strings.Contains(string(data), "null") {
		t.Errorf("Marshal of empty lists: %v\n%s", err, data)
	}
	// Marshal must not touch the caller's config.
	c := Default()
	c.Announce = nil
	if _, err := c.Marshal(); err != nil || c.Announce != nil {
		t.Errorf("Marshal changed its receiver: %v %#v", err, c.Announce)
	}
}

func TestMarshalAwkwardText(t *testing.T) {
	// Characters YAML does not take as they are: the YAML reader refuses
	// DEL and C1 controls, and reads U+0085 as a line break.
	for _, s := range []string{"\x7f", "a\u0085b", "\u009f", "\ufeffx", "x\ufffe", "\x00\x1b", "a\r\nb", "\U0001F600"} {
		c := Default()
		c.DataDir, c.Announce, c.Relay.Mode = s, []string{s}, RelayMode(s)
		data, err := c.Marshal()
		if err != nil {
			t.Errorf("Marshal with %q: %v", s, err)
			continue
		}
		if back, err := Parse(data); err != nil || !reflect.DeepEqual(back, c) {
			t.Errorf("%q read back as %q, %v\n%s", s, back.DataDir, err, data)
		}
	}
}

func TestParseOverlaysDefaults(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       func(*Config)
	}{
		{"empty file", "", func(*Config) {}},
		{"only comments", "# nothing\n", func(*Config) {}},
		{"document marker", "---\nlogLevel: Debug\n", func(c *Config) { c.LogLevel = LogDebug }},
		{"values in any case", "dht: {mode: client}\nrelay: {mode: PUBLIC}\nlogLevel: warn\n", func(c *Config) {
			c.DHT.Mode, c.Relay.Mode, c.LogLevel = DHTClient, RelayPublic, LogWarn
		}},
		{"quoted Off in any case", "dht: {mode: \"oFF\"}\nrelay: {mode: OFF}\n", func(c *Config) { c.DHT.Mode, c.Relay.Mode = DHTOff, RelayOff }},
		{"advertise private addresses", "relay: {advertisePrivateAddrs: true}\n", func(c *Config) { c.Relay.AdvertisePrivateAddrs = true }},
		{"one nested key", "relay:\n  limits:\n    maxCircuits: 3\n", func(c *Config) { c.Relay.Limits.MaxCircuits = 3 }},
		{"list replaces the default", "listen:\n  tcp: [/ip4/0.0.0.0/tcp/9]\n", func(c *Config) { c.Listen.TCP = []string{"/ip4/0.0.0.0/tcp/9"} }},
		{"empty list is nil", "listen:\n  tcp: []\n", func(c *Config) { c.Listen.TCP = nil }},
		{"list with no value is nil", "listen:\n  tcp:\n", func(c *Config) { c.Listen.TCP = nil }},
		{"section with no value keeps defaults", "listen:\nrelay:\n", func(*Config) {}},
		{"unquoted off is a mode", "dht:\n  mode: off\nrelay:\n  mode: off\n", func(c *Config) { c.DHT.Mode = DHTOff; c.Relay.Mode = RelayOff }},
		{"quoted off", "dht: {mode: \"off\"}\n", func(c *Config) { c.DHT.Mode = DHTOff }},
		{"mode refused later, not here", "relay: {mode: open}\n", func(c *Config) { c.Relay.Mode = "open" }},
		{"log level refused later, not here", "logLevel: loud\n", func(c *Config) { c.LogLevel = "loud" }},
		{"largest uint64", "limits: {maxEntries: 18446744073709551615}\n", func(c *Config) { c.Limits.MaxEntries = math.MaxUint64 }},
		{"bool", "rendezvous: {enabled: false}\n", func(c *Config) { c.Rendezvous.Enabled = false }},
		{"yes is a bool", "rendezvous: {enabled: no}\n", func(c *Config) { c.Rendezvous.Enabled = false }},
		{"hosted vaults", "hostedVaults:\n  - " + testNamespace(1) + "\n", func(c *Config) { c.HostedVaults = []string{testNamespace(1)} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // one substring per problem, in order
	}{
		{"unknown top-level field", "dataDirectory: x\n", []string{"dataDirectory: unknown field"}},
		{"unknown nested field", "relay:\n  limits:\n    maxCircuitsPerPeer: 2\n", []string{"relay.limits.maxCircuitsPerPeer: unknown field"}},
		{"wrong case", "DataDir: x\n", []string{"DataDir: unknown field (did you mean dataDir?)"}},
		{"wrong case nested", "listen:\n  websocket: []\n", []string{"listen.websocket: unknown field (did you mean webSocket?)"}},
		{"text wanted", "dataDir: 2024\n", []string{"dataDir: want text, got the number 2024 (put it in quotes)"}},
		{"text in a list", "announce: [/ip4/1.2.3.4/tcp/1, true]\n", []string{"announce[1]: want text, got true"}},
		{"negative count", "limits: {maxEntries: -1}\n", []string{"limits.maxEntries: want a whole number (0 or more), got the number -1"}},
		{"too large for uint64", "limits: {maxBytes: 18446744073709551616}\n", []string{"limits.maxBytes: want a whole number"}},
		{"fraction", "relay: {limits: {maxCircuits: 1.5}}\n", []string{"relay.limits.maxCircuits: want a whole number, got the number 1.5"}},
		{"text for a number", "resources: {maxConnsInbound: many}\n", []string{`resources.maxConnsInbound: want a whole number, got the text "many"`}},
		{"bool wanted", "rendezvous: {enabled: sometimes}\n", []string{"rendezvous.enabled: want true or false"}},
		{"bad duration", "idleTimeout: soon\n", []string{`idleTimeout: "soon" is not a duration`}},
		{"fractional seconds", "gcInterval: 1.5\n", []string{"gcInterval: 1.5 is not whole seconds"}},
		{"mode true", "dht: {mode: on}\n", []string{"dht.mode: want Server, Client or Off, got true"}},
		{"relay mode a number", "relay: {mode: 1}\n", []string{"relay.mode: want Agents, Public or Off, got 1"}},
		{"log level false", "logLevel: off\n", []string{"logLevel: want Debug, Info, Warn or Error, got false"}},
		{"removed field", "relay:\n  limits:\n    maxReservationsPerPeer: 1\n", []string{
			"relay.limits.maxReservationsPerPeer: unknown field: it was removed: a circuit v2 relay holds one reservation per peer"}},
		{"bool wanted nested", "relay: {advertisePrivateAddrs: maybe}\n", []string{`relay.advertisePrivateAddrs: want true or false, got the text "maybe"`}},
		{"unknown field in a section with a bad value", "relay: {mode: [x], limits: {maxCircuits: x, foo: 1}, bar: 2}\n", []string{
			"relay.mode: want Agents, Public or Off", "relay.limits.maxCircuits: want a whole number", "relay.limits.foo: unknown field", "relay.bar: unknown field",
		}},
		{"null and wrong type at once", "logLevel:\nannounce: [null, 3]\n", []string{"announce[0]: no value", "announce[1]: want text, got the number 3", "logLevel: no value"}},
		{"section not a mapping", "relay: agents\n", []string{`relay: want a mapping of settings, got the text "agents"`}},
		{"list not a list", "hostedVaults: abc\n", []string{"hostedVaults: want a list"}},
		{"setting with no value", "logLevel:\n", []string{"logLevel: no value"}},
		{"list item with no value", "announce: [null]\n", []string{"announce[0]: no value"}},
		{"root not a mapping", "- a\n- b\n", []string{"want a mapping of settings, got a list"}},
		{"duplicate key", "logLevel: info\nlogLevel: debug\n", []string{`key "logLevel" already set`}},
		{"bad YAML", "listen: [\n", []string{"not valid YAML"}},
		{"two documents", "logLevel: info\n---\nlogLevel: debug\n", []string{"more than one YAML document"}},
		{"content after end marker", "logLevel: info\n...\ndataDir: x\n", []string{"more than one YAML document"}},
		{"several at once", "dataDir: 1\nfoo: 1\nlimits: {maxEntries: x, bar: 2}\nidleTimeout: later\n", []string{
			"dataDir: want text", "limits.maxEntries: want a whole number", "limits.bar: unknown field", `idleTimeout: "later" is not a duration`, "foo: unknown field",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", c)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			ps := problems(err)
			if len(ps) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(ps[i].Error(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ps[i], w)
				}
				if !errors.Is(ps[i], ErrInvalid) {
					t.Errorf("problem %q does not wrap ErrInvalid", ps[i])
				}
			}
			// Load says which file, and reports the same problems.
			path := writeFile(t, tc.yaml)
			_, lerr := Load(path)
			if lerr == nil || !errors.Is(lerr, ErrInvalid) || !strings.Contains(lerr.Error(), path) || !strings.Contains(lerr.Error(), tc.want[0]) {
				t.Errorf("Load: %v", lerr)
			}
		})
	}
}

func TestParseManyProblems(t *testing.T) {
	// One bad item at the end of a long list is named by its index.
	long := "announce: [" + strings.Repeat("/dns4/a/tcp/1, ", 5000) + "7, /dns4/b/tcp/2]\n"
	_, err := Parse([]byte(long))
	if ps := problems(err); len(ps) != 1 || !strings.HasPrefix(ps[0].Error(), "announce[5000]: want text, got the number 7") {
		t.Errorf("got %v", err)
	}
	// Thousands of bad items: the first ones, and a note that there are more.
	for _, in := range []string{
		"announce: [" + strings.Repeat("1, ", 5000) + "1]\n",
		"announce: [" + strings.Repeat("null, ", 5000) + "null]\n",
	} {
		_, err := Parse([]byte(in))
		ps := problems(err)
		if len(ps) != maxProblems+1 || !strings.HasPrefix(ps[0].Error(), "announce[0]: ") ||
			!strings.HasPrefix(ps[maxProblems-1].Error(), fmt.Sprintf("announce[%d]: ", maxProblems-1)) ||
			ps[maxProblems].Error() != "more problems not shown (only the first 100 are)" {
			t.Errorf("got %d problems: %v ... %v", len(ps), ps[0], ps[len(ps)-1])
		}
	}
}

func TestFileSize(t *testing.T) {
	line := "# " + strings.Repeat("x", 61) + "\n" // 64 bytes
	atLimit := strings.Repeat(line, MaxFileSize/len(line))
	if len(atLimit) != MaxFileSize {
		t.Fatalf("bad fixture: %d bytes", len(atLimit))
	}
	if _, err := Load(writeFile(t, atLimit)); err != nil {
		t.Errorf("a file of exactly 1 MiB was refused: %v", err)
	}
	tooLarge := atLimit + "\n"
	_, err := Load(writeFile(t, tooLarge))
	if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Errorf("Load of a file over 1 MiB: %v", err)
	}
	if _, err := Parse([]byte(tooLarge)); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("Parse of over 1 MiB: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(t.TempDir() + "/nope.yaml")
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("got %v; want a not-exist error that is not ErrInvalid", err)
	}
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("Load of a directory: %v", err)
	}
	if err := os.WriteFile(dir+"/ok.yaml", []byte("logLevel: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(dir + "/ok.yaml"); err != nil || c.LogLevel != LogWarn {
		t.Errorf("Load: %v %q", err, c.LogLevel)
	}
}

func TestDuration(t *testing.T) {
	cases := []struct {
		in   string // JSON
		want time.Duration
		err  string
	}{
		{`"90s"`, 90 * time.Second, ""},
		{`90`, 90 * time.Second, ""},
		{`"1h30m"`, 90 * time.Minute, ""},
		{`" 5m "`, 5 * time.Minute, ""},
		{`0`, 0, ""},
		{`"0"`, 0, ""},
		{`-5`, -5 * time.Second, ""}, // refused by Validate, where it makes no sense
		{`"250ms"`, 250 * time.Millisecond, ""},
		{`9223372036`, 9223372036 * time.Second, ""},
		{`9223372037`, 0, "too long"},
		{`99999999999999999999`, 0, "too long"},
		{`1.5`, 0, "not whole seconds"},
		{`1e3`, 0, "not whole seconds"},
		{`"90"`, 0, `"90" is not a duration`},
		{`"abc"`, 0, `"abc" is not a duration`},
		{`true`, 0, "want a duration"},
		{`[1]`, 0, "want a duration"},
		{`{}`, 0, "want a duration"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want error containing %q", d, err, tc.err)
				}
				return
			}
			if err != nil || d.Duration != tc.want {
				t.Fatalf("got %v, %v; want %v", d.Duration, err, tc.want)
			}
		})
	}
	// In a file, both forms.
	for _, in := range []string{"idleTimeout: 90s\n", "idleTimeout: 90\n", "idleTimeout: \"1m30s\"\n"} {
		c, err := Parse([]byte(in))
		if err != nil || c.IdleTimeout.Duration != 90*time.Second {
			t.Errorf("Parse(%q) = %v, %v", in, c.IdleTimeout, err)
		}
	}
	// Written back as the shortest string.
	for d, want := range map[time.Duration]string{
		0: "0s", time.Hour: "1h", 2 * time.Minute: "2m", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s",
		time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s", 10 * time.Minute: "10m", -time.Hour: "-1h",
	} {
		b, err := json.Marshal(Duration{d})
		if err != nil || string(b) != `"`+want+`"` {
			t.Errorf("Marshal(%v) = %s, %v; want %q", time.Duration(d), b, err, want)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back.Duration != d {
			t.Errorf("%s read back as %v, %v", b, back.Duration, err)
		}
	}
}

func TestMultipleDocuments(t *testing.T) {
	cases := map[string]bool{
		"":                                  false,
		"---\na: 1\n":                       false,
		"# c\n---\na: 1\n...\n":             false,
		"%YAML 1.1\n---\na: 1\n":            false,
		"--- {a: 1}\n":                      false,
		"a: |\n  ---\n  x\n":                false, // indented: part of the text
		"a: ---x\n":                         false,
		"---x: 1\n":                         false,
		"a: 1\n---\nb: 2\n":                 true,
		"a: 1\n---\n":                       true,
		"--- {a: 1}\n--- {b: 2}\n":          true,
		"a: 1\n...\nb: 2\n":                 true,
		"a: 1\n--- # second document\n":     true,
		"a: 1\r\n---\r\nb: 2\r\n":           true,
		"a: 1\n---\t\nb: 2\n":               true,
		"---\n# only comments\n---\na: 1\n": true, // the first, empty, document would win
		"...\n---\na: 1\n":                  true,
	}
	for in, want := range cases {
		if got := multipleDocuments([]byte(in)); got != want {
			t.Errorf("multipleDocuments(%q) = %v, want %v", in, got, want)
		}
	}
}
