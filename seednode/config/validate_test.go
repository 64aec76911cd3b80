package config

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p-kad-dht/amino"

	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func TestValidateNamesTheField(t *testing.T) {
	peerID := testPeerID(t, 9)
	cases := []struct {
		name  string
		edit  func(*Config)
		field string // the FieldError's Field
		want  string // the whole problem starts with this
	}{
		{"no data dir", func(c *Config) { c.DataDir = "" }, "dataDir", "dataDir: required"},
		{"blank data dir", func(c *Config) { c.DataDir = " \t" }, "dataDir", "dataDir: required"},
		{"identity file with a trailing space", func(c *Config) { c.IdentityFile = "/run/seed/key " }, "identityFile", `identityFile: "/run/seed/key " has leading or trailing spaces`},
		{"blank identity file", func(c *Config) { c.IdentityFile = " " }, "identityFile", `identityFile: " " has leading or trailing spaces`},

		{"tcp in quic", func(c *Config) { c.Listen.QUIC = []string{"/ip4/1.2.3.4/tcp/1"} }, "listen.quic[0]", `listen.quic[0]: "/ip4/1.2.3.4/tcp/1" is not a QUIC multiaddr`},
		{"draft quic", func(c *Config) { c.Listen.QUIC = append(c.Listen.QUIC, "/ip4/1.2.3.4/udp/1/quic") }, "listen.quic[1]", `listen.quic[1]: "/ip4/1.2.3.4/udp/1/quic" is not a QUIC multiaddr`},
		{"quic in tcp", func(c *Config) { c.Listen.TCP = []string{"/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/udp/1/quic-v1"} }, "listen.tcp[1]", `listen.tcp[1]: "/ip4/1.2.3.4/udp/1/quic-v1" is not a TCP multiaddr`},
		{"ws in tcp", func(c *Config) { c.Listen.TCP = []string{"/ip4/1.2.3.4/tcp/1/ws"} }, "listen.tcp[0]", `listen.tcp[0]: "/ip4/1.2.3.4/tcp/1/ws" is not a TCP multiaddr`},
		{"dns in tcp", func(c *Config) { c.Listen.TCP = []string{"/dns4/example.com/tcp/1"} }, "listen.tcp[0]", `listen.tcp[0]: "/dns4/example.com/tcp/1" is not a TCP multiaddr`},
		{"p2p in tcp", func(c *Config) { c.Listen.TCP = []string{"/ip4/1.2.3.4/tcp/1/p2p/" + peerID} }, "listen.tcp[0]", `listen.tcp[0]: "/ip4/1.2.3.4/tcp/1/p2p/`},
		{"tcp in websocket", func(c *Config) { c.Listen.WebSocket = []string{"/ip4/1.2.3.4/tcp/1"} }, "listen.webSocket[0]", `listen.webSocket[0]: "/ip4/1.2.3.4/tcp/1" is not a WebSocket multiaddr`},
		{"not a multiaddr", func(c *Config) { c.Listen.TCP = []string{"127.0.0.1:7400"} }, "listen.tcp[0]", "listen.tcp[0]: not a multiaddr"},
		{"no listen address", func(c *Config) { c.Listen = Listen{} }, "listen", "listen: no listen addresses"},

		{"announce with p2p", func(c *Config) { c.Announce = []string{"/ip4/1.2.3.4/tcp/1/p2p/" + peerID} }, "announce[0]", "announce[0]: must not contain /p2p/"},
		{"announce garbage", func(c *Config) { c.Announce = []string{"/dns4/a/tcp/1", "seed.example.com"} }, "announce[1]", "announce[1]: not a multiaddr"},

		{"bad namespace", func(c *Config) {
			c.HostedVaults = []string{testNamespace(1), testNamespace(2), testNamespace(3), "abc"}
		}, "hostedVaults[3]", `hostedVaults[3]: namespace ID "abc": want 52 base32 characters`},
		{"namespace too long", func(c *Config) { c.HostedVaults = []string{testNamespace(1) + "aaaaaaaa"} }, "hostedVaults[0]", "hostedVaults[0]: namespace ID"},

		{"zero entries", func(c *Config) { c.Limits.MaxEntries = 0 }, "limits.maxEntries", "limits.maxEntries: must be at least 1"},
		{"zero bytes", func(c *Config) { c.Limits.MaxBytes = 0 }, "limits.maxBytes", "limits.maxBytes: must be at least 1"},
		{"negative skew", func(c *Config) { c.Limits.MaxClockSkew = Duration{-time.Second} }, "limits.maxClockSkew", "limits.maxClockSkew: must be at least 1s"},

		{"admin no port", func(c *Config) { c.Admin.Listen = "127.0.0.1" }, "admin.listen", `admin.listen: "127.0.0.1" is not host:port`},
		{"admin named port", func(c *Config) { c.Admin.Listen = "127.0.0.1:http" }, "admin.listen", `admin.listen: port "http" is not a number`},
		{"admin port too large", func(c *Config) { c.Admin.Listen = ":70000" }, "admin.listen", `admin.listen: port "70000"`},

		{"dht mode", func(c *Config) { c.DHT.Mode = "full" }, "dht.mode", `dht.mode: "full" is not one of Server, Client, Off`},
		{"dht mode case", func(c *Config) { c.DHT.Mode = "server" }, "dht.mode", `dht.mode: "server" is not one of Server, Client, Off (did you mean Server?)`},
		{"no prefix", func(c *Config) { c.DHT.ProtocolPrefix = "" }, "dht.protocolPrefix", "dht.protocolPrefix: required"},
		{"prefix without slash", func(c *Config) { c.DHT.ProtocolPrefix = "seedfleet" }, "dht.protocolPrefix", `dht.protocolPrefix: "seedfleet" must start with /`},
		{"prefix ends in slash", func(c *Config) { c.DHT.ProtocolPrefix = "/seedfleet/" }, "dht.protocolPrefix", "dht.protocolPrefix:"},
		{"public IPFS prefix", func(c *Config) { c.DHT.ProtocolPrefix = "/ipfs" }, "dht.protocolPrefix", "dht.protocolPrefix: /ipfs is the public IPFS DHT's prefix"},
		{"bootstrap without p2p", func(c *Config) { c.DHT.BootstrapPeers = []string{"/ip4/1.2.3.4/tcp/4001"} }, "dht.bootstrapPeers[0]", "dht.bootstrapPeers[0]: must end in /p2p/<peer ID>"},
		{"bootstrap p2p not last", func(c *Config) {
			c.DHT.BootstrapPeers = []string{"/ip4/1.2.3.4/tcp/4001/p2p/" + peerID, "/ip4/1.2.3.4/udp/1/p2p/" + peerID + "/quic-v1"}
		}, "dht.bootstrapPeers[1]", "dht.bootstrapPeers[1]: must end in /p2p/<peer ID>"},
		{"bootstrap only p2p", func(c *Config) { c.DHT.BootstrapPeers = []string{"/p2p/" + peerID} }, "dht.bootstrapPeers[0]", "dht.bootstrapPeers[0]: needs an address before /p2p/"},
		{"bootstrap bad peer ID", func(c *Config) { c.DHT.BootstrapPeers = []string{"/ip4/1.2.3.4/tcp/4001/p2p/notapeer"} }, "dht.bootstrapPeers[0]", "dht.bootstrapPeers[0]: not a multiaddr"},
		{"replicate too often", func(c *Config) { c.ReplicateInterval = Duration{999 * time.Millisecond} }, "replicateInterval", "replicateInterval: must be at least 1s"},
		{"replicate zero", func(c *Config) { c.ReplicateInterval = Duration{} }, "replicateInterval", "replicateInterval: must be at least 1s"},
		{"replicate too rarely", func(c *Config) { c.ReplicateInterval = Duration{time.Hour + time.Second} }, "replicateInterval", "replicateInterval: must be at most 1h"},
		{"reprovide too often", func(c *Config) { c.DHT.ReprovideInterval = Duration{59 * time.Second} }, "dht.reprovideInterval", "dht.reprovideInterval: must be at least 1m"},
		{"reprovide zero", func(c *Config) { c.DHT.ReprovideInterval = Duration{} }, "dht.reprovideInterval", "dht.reprovideInterval: must be at least 1m"},
		{"reprovide too rarely", func(c *Config) { c.DHT.ReprovideInterval = Duration{49 * time.Hour} }, "dht.reprovideInterval", "dht.reprovideInterval: must be at most 48h"},

		{"relay mode", func(c *Config) { c.Relay.Mode = "open" }, "relay.mode", `relay.mode: "open" is not one of Agents, Public, Off`},
		{"relay mode empty", func(c *Config) { c.Relay.Mode = "" }, "relay.mode", `relay.mode: "" is not one of Agents, Public, Off`},
		{"relay mode case", func(c *Config) { c.Relay.Mode = "public" }, "relay.mode", `relay.mode: "public" is not one of Agents, Public, Off (did you mean Public?)`},
		{"allowed key not a did:key", func(c *Config) { c.Relay.AllowedKeys = []string{testDID(1), "did:web:example.com"} }, "relay.allowedKeys[1]", "relay.allowedKeys[1]: not a did:key"},
		{"allowed key is a namespace ID", func(c *Config) { c.Relay.AllowedKeys = []string{testNamespace(1)} }, "relay.allowedKeys[0]", "relay.allowedKeys[0]: not a did:key"},
		{"max reservations", func(c *Config) { c.Relay.Limits.MaxReservations = 0 }, "relay.limits.maxReservations", "relay.limits.maxReservations: must be at least 1"},
		{"per IP", func(c *Config) { c.Relay.Limits.MaxReservationsPerIP = -1 }, "relay.limits.maxReservationsPerIP", "relay.limits.maxReservationsPerIP: must be at least 1"},
		{"per ASN", func(c *Config) { c.Relay.Limits.MaxReservationsPerASN = 0 }, "relay.limits.maxReservationsPerASN", "relay.limits.maxReservationsPerASN: must be at least 1"},
		{"circuits", func(c *Config) { c.Relay.Limits.MaxCircuits = 0 }, "relay.limits.maxCircuits", "relay.limits.maxCircuits: must be at least 1"},
		{"reservation TTL", func(c *Config) { c.Relay.Limits.ReservationTTL = Duration{} }, "relay.limits.reservationTTL", "relay.limits.reservationTTL: must be at least 1m"},
		{"circuit duration", func(c *Config) { c.Relay.Limits.CircuitDuration = Duration{-time.Minute} }, "relay.limits.circuitDuration", "relay.limits.circuitDuration: must be at least 1s"},
		{"circuit bytes small", func(c *Config) { c.Relay.Limits.CircuitBytes = 1023 }, "relay.limits.circuitBytes", "relay.limits.circuitBytes: must be at least 1024"},
		{"circuit bytes over int64", func(c *Config) { c.Relay.Limits.CircuitBytes = math.MaxInt64 + 1 }, "relay.limits.circuitBytes", "relay.limits.circuitBytes: must be at most 9223372036854775807"},

		{"record TTL zero", func(c *Config) { c.Rendezvous.RecordTTL = Duration{} }, "rendezvous.recordTTL", "rendezvous.recordTTL: must be at least 1m"},
		{"record TTL long", func(c *Config) { c.Rendezvous.RecordTTL = Duration{72*time.Hour + time.Second} }, "rendezvous.recordTTL", "rendezvous.recordTTL: must be at most 72h"},
		{"records per agent", func(c *Config) { c.Rendezvous.MaxRecordsPerAgent = 0 }, "rendezvous.maxRecordsPerAgent", "rendezvous.maxRecordsPerAgent: must be at least 1"},

		{"memory negative", func(c *Config) { c.Resources.MaxMemoryMiB = -1 }, "resources.maxMemoryMiB", "resources.maxMemoryMiB: must not be negative"},
		{"memory overflow", func(c *Config) { c.Resources.MaxMemoryMiB = math.MaxInt64>>20 + 1 }, "resources.maxMemoryMiB", "resources.maxMemoryMiB: must be at most"},
		{"fds negative", func(c *Config) { c.Resources.MaxFileDescriptors = -1 }, "resources.maxFileDescriptors", "resources.maxFileDescriptors: must not be negative"},
		{"conns negative", func(c *Config) { c.Resources.MaxConnsInbound = -1 }, "resources.maxConnsInbound", "resources.maxConnsInbound: must not be negative"},
		{"streams negative", func(c *Config) { c.Resources.MaxStreamsInbound = -1 }, "resources.maxStreamsInbound", "resources.maxStreamsInbound: must not be negative"},

		{"idle timeout zero", func(c *Config) { c.IdleTimeout = Duration{} }, "idleTimeout", "idleTimeout: must be at least 1s"},
		{"gc negative", func(c *Config) { c.GCInterval = Duration{-time.Minute} }, "gcInterval", "gcInterval: must be at least 1s"},
		{"log level", func(c *Config) { c.LogLevel = "verbose" }, "logLevel", `logLevel: "verbose" is not one of Debug, Info, Warn, Error`},
		{"log level case", func(c *Config) { c.LogLevel = "INFO" }, "logLevel", `logLevel: "INFO" is not one of Debug, Info, Warn, Error (did you mean Info?)`},

		{"fleet without members", func(c *Config) { inFleet(t, c); c.Fleet.Members = nil }, "fleet.members", "fleet.members: required"},
		{"fleet member without p2p", func(c *Config) { inFleet(t, c); c.Fleet.Members[1] = "/ip4/10.0.0.2/tcp/7400" }, "fleet.members[1]", "fleet.members[1]:"},
		{"fleet self out of range", func(c *Config) { inFleet(t, c); c.Fleet.Self = 3 }, "fleet.self", "fleet.self: ordinal 3 is not among the 3 members"},
		{"fleet replicas over members", func(c *Config) { inFleet(t, c); c.Fleet.Replicas = 4 }, "fleet.replicas", "fleet.replicas: must be 1 to the number of members (3)"},
		{"fleet admission", func(c *Config) { inFleet(t, c); c.Fleet.Admission = "Public" }, "fleet.admission", `fleet.admission: "Public" is not one of Closed, Open, Invite`},
		{"fleet invite without key", func(c *Config) { inFleet(t, c); c.Fleet.Admission = fleet.Invite }, "fleet.keyFile", "fleet.keyFile: required with admission Invite"},
		{"fleet default over max", func(c *Config) { inFleet(t, c); c.Fleet.Limits.DefaultQuotaBytes = c.Fleet.Limits.MaxQuotaBytes + 1 }, "fleet.limits.defaultQuotaBytes", "fleet.limits.defaultQuotaBytes: must be at most maxQuotaBytes"},
		{"fleet agent below vault", func(c *Config) { inFleet(t, c); c.Fleet.Limits.MaxAgentBytes = 1 }, "fleet.limits.maxAgentBytes", "fleet.limits.maxAgentBytes: must be at least maxQuotaBytes"},
		{"fleet admissions zero", func(c *Config) { inFleet(t, c); c.Fleet.Limits.AdmissionsPerSecond = 0 }, "fleet.limits.admissionsPerSecond", "fleet.limits.admissionsPerSecond: must be above 0"},
		{"fleet idle expiry short", func(c *Config) { inFleet(t, c); c.Fleet.IdleExpiry = Duration{time.Minute} }, "fleet.idleExpiry", "fleet.idleExpiry: must be 0s (off) or at least 1h"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("does not wrap ErrInvalid: %v", err)
			}
			ps := problems(err)
			if len(ps) != 1 {
				t.Fatalf("want exactly one problem, got %d:\n%v", len(ps), err)
			}
			if got := fields(t, err); got[0] != tc.field {
				t.Errorf("Field = %q, want %q", got[0], tc.field)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error = %q\nwant it to start with %q", err, tc.want)
			}
		})
	}
}

func TestAminoProtocolPrefix(t *testing.T) {
	if AminoProtocolPrefix != string(amino.ProtocolPrefix) {
		t.Errorf("AminoProtocolPrefix = %q, kad-dht's is %q", AminoProtocolPrefix, amino.ProtocolPrefix)
	}
}

func TestValidateKeepsTheCause(t *testing.T) {
	c := Default()
	c.Relay.AllowedKeys = []string{"did:key:z6LSbad"}
	err := c.Validate()
	if !errors.Is(err, identity.ErrInvalidDID) || !errors.Is(err, ErrInvalid) {
		t.Errorf("want both ErrInvalid and identity.ErrInvalidDID: %v", err)
	}
	if strings.Count(err.Error(), "did:key") > 3 {
		t.Errorf("message repeats itself: %v", err)
	}
}

func TestValidateAccepts(t *testing.T) {
	peerID := testPeerID(t, 9)
	cases := []struct {
		name string
		edit func(*Config)
	}{
		{"pod listeners", func(c *Config) {
			c.Listen = Listen{TCP: []string{"/ip4/0.0.0.0/tcp/7400", "/ip6/::/tcp/7400"}, QUIC: []string{"/ip4/0.0.0.0/udp/7400/quic-v1", "/ip6/::/udp/7400/quic-v1"}, WebSocket: []string{"/ip6/::1/tcp/0/ws"}}
		}},
		{"quic only", func(c *Config) { c.Listen = Listen{QUIC: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}} }},
		{"announce dns", func(c *Config) {
			c.Announce = []string{"/dns4/seed.example.com/tcp/7400", "/ip4/203.0.113.7/udp/7400/quic-v1"}
		}},
		{"hosted vaults, upper case and duplicate", func(c *Config) {
			c.HostedVaults = []string{testNamespace(1), strings.ToUpper(testNamespace(2)), testNamespace(1)}
		}},
		{"vaults file", func(c *Config) { c.HostedVaultsFile = "/etc/seed/vaults" }},
		{"identity file", func(c *Config) { c.IdentityFile = "/run/seed/identity.key" }},
		{"new identity", func(c *Config) { c.IdentityFile = "/run/seed/identity.key"; c.NewIdentity = true }},
		{"replicate bounds", func(c *Config) { c.ReplicateInterval = Duration{time.Second} }},
		{"replicate upper bound", func(c *Config) { c.ReplicateInterval = Duration{time.Hour} }},
		{"admin off", func(c *Config) { c.Admin.Listen = "" }},
		{"admin all interfaces", func(c *Config) { c.Admin.Listen = ":7401"; c.Admin.TokenFile = "/run/secrets/token" }},
		{"admin ipv6", func(c *Config) { c.Admin.Listen = "[::1]:0" }},
		{"dht client", func(c *Config) { c.DHT.Mode = DHTClient }},
		{"dht off", func(c *Config) { c.DHT.Mode = DHTOff }},
		{"bootstrap peers", func(c *Config) {
			c.DHT.BootstrapPeers = []string{"/ip4/10.0.0.1/tcp/4001/p2p/" + peerID, "/dnsaddr/seeds.example.com/p2p/" + peerID, "/ip4/10.0.0.1/udp/4001/quic-v1/p2p/" + peerID}
		}},
		{"prefix", func(c *Config) { c.DHT.ProtocolPrefix = "/acme/agents" }},
		{"prefix under /ipfs", func(c *Config) { c.DHT.ProtocolPrefix = "/ipfs/lan" }},
		{"advertise private addresses", func(c *Config) { c.Relay.AdvertisePrivateAddrs = true }},
		{"reprovide bounds", func(c *Config) { c.DHT.ReprovideInterval = Duration{time.Minute} }},
		{"reprovide upper bound", func(c *Config) { c.DHT.ReprovideInterval = Duration{48 * time.Hour} }},
		{"relay public", func(c *Config) { c.Relay.Mode = RelayPublic }},
		{"relay off", func(c *Config) { c.Relay.Mode = RelayOff }},
		{"allowed keys", func(c *Config) { c.Relay.AllowedKeys = []string{testDID(1), testDID(2) + "#laptop"} }},
		{"relay minimums", func(c *Config) {
			c.Relay.Limits = RelayLimits{1, 1, 1, 1, Duration{time.Minute}, Duration{time.Second}, 1024}
		}},
		{"rendezvous off, longest TTL", func(c *Config) { c.Rendezvous.Enabled = false; c.Rendezvous.RecordTTL = Duration{72 * time.Hour} }},
		{"resources set", func(c *Config) { c.Resources = Resources{512, 4096, 1000, 10000, true} }},
		{"largest limits", func(c *Config) { c.Limits.MaxEntries = math.MaxUint64; c.Limits.MaxBytes = math.MaxUint64 }},
		{"log levels", func(c *Config) { c.LogLevel = LogDebug }},
		{"fleet pod", func(c *Config) { inFleet(t, c) }},
		{"fleet by invite", func(c *Config) {
			inFleet(t, c)
			c.Fleet.Admission, c.Fleet.KeyFile, c.Fleet.IdleExpiry = fleet.Invite, "/run/seedfleet/fleet.key", Duration{90 * 24 * time.Hour}
		}},
		{"fleet members ignored without a name", func(c *Config) { c.Fleet.Members = []string{"garbage"} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("refused:\n%v", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.DataDir = ""
	c.Listen.QUIC = []string{"/ip4/1.2.3.4/tcp/1"}
	c.HostedVaults = []string{testNamespace(1), "nope"}
	c.DHT.ReprovideInterval = Duration{time.Second}
	c.Relay.Mode = "open"
	c.Relay.Limits.MaxReservationsPerIP = 0
	c.LogLevel = "loud"
	err := c.Validate()
	want := []string{"dataDir", "listen.quic[0]", "hostedVaults[1]", "dht.reprovideInterval", "relay.mode", "relay.limits.maxReservationsPerIP", "logLevel"}
	if got := fields(t, err); !slices.Equal(got, want) {
		t.Fatalf("fields = %v\nwant     %v\n%v", got, want, err)
	}
	for _, p := range problems(err) {
		if !errors.Is(p, ErrInvalid) {
			t.Errorf("%q does not wrap ErrInvalid", p)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("message has %d lines, want one per problem:\n%v", n, err)
	}
}

func TestNamespaceIDs(t *testing.T) {
	c := Default()
	if ids, err := c.NamespaceIDs(); err != nil || ids != nil {
		t.Errorf("no hosted vaults: %v %v", ids, err)
	}
	c.HostedVaults = []string{testNamespace(1), testNamespace(2), strings.ToUpper(testNamespace(1))}
	ids, err := c.NamespaceIDs()
	want := []vault.NamespaceID{vault.NamespaceID(testKey(1)), vault.NamespaceID(testKey(2))}
	if err != nil || !reflect.DeepEqual(ids, want) {
		t.Errorf("got %v, %v; want %v", ids, err, want)
	}
	c.HostedVaults = []string{testNamespace(1), "x", testNamespace(2), "y"}
	ids, err = c.NamespaceIDs()
	if ids != nil || !errors.Is(err, ErrInvalid) || !slices.Equal(fields(t, err), []string{"hostedVaults[1]", "hostedVaults[3]"}) {
		t.Errorf("got %v, %v", ids, err)
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[LogLevel]string{LogDebug: "DEBUG", LogInfo: "INFO", LogWarn: "WARN", LogError: "ERROR", "loud": "INFO"} {
		c := Config{LogLevel: level}
		if got := c.SlogLevel().String(); got != want {
			t.Errorf("%s: got %s", level, got)
		}
		if got := level.Level().String(); got != want {
			t.Errorf("%s.Level(): got %s", level, got)
		}
	}
}

// inFleet makes c the second pod of a three-pod open fleet.
func inFleet(t *testing.T, c *Config) {
	c.Fleet.Name, c.Fleet.Self, c.Fleet.Admission = "default/seeds", 1, fleet.Open
	c.Fleet.Members = nil
	for i := range 3 {
		c.Fleet.Members = append(c.Fleet.Members, "/dns4/seeds-"+strconv.Itoa(i)+".seeds.default.svc/tcp/7400/p2p/"+testPeerID(t, byte(20+i)))
	}
}
