package node

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

func TestFromConfigStartsANode(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("tok\n"), 0o600)
	pub, _, _ := ed25519.GenerateKey(nil)
	keyFile := filepath.Join(dir, "seed.key")
	key, _ := identity.Generate()
	if err := identity.Save(keyFile, key); err != nil {
		t.Fatal(err)
	}
	yaml := `
dataDir: ` + filepath.Join(dir, "data") + `
identityFile: ` + keyFile + `
replicateInterval: 3s
listen:
  tcp: ["/ip4/127.0.0.1/tcp/0"]
  quic: ["/ip4/127.0.0.1/udp/0/quic-v1"]
  webSocket: ["/ip4/127.0.0.1/tcp/0/ws"]
admin:
  listen: "127.0.0.1:0"
  tokenFile: ` + token + `
relay:
  mode: public
  advertisePrivateAddrs: true
  allowedKeys: ["` + identity.DIDKey(pub) + `"]
resources:
  maxMemoryMiB: 256
  maxConnsInbound: 64
`
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	nc, err := FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if nc.AdminToken != "tok" || nc.ResourceManager == nil || len(nc.Relay.AllowedKeys) != 1 ||
		nc.IdentityFile != keyFile || nc.ReplicateInterval != 3*time.Second || !nc.Relay.AdvertisePrivateAddrs ||
		nc.Relay.Mode != config.RelayPublic {
		t.Fatalf("mapped config: token %q, rcmgr %v, keys %d, identity file %q, replicate interval %v, relay %+v",
			nc.AdminToken, nc.ResourceManager, len(nc.Relay.AllowedKeys), nc.IdentityFile, nc.ReplicateInterval, nc.Relay)
	}
	n, err := New(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var tcp, quic, ws bool
	for _, a := range n.Addrs() {
		s := a.String()
		tcp = tcp || strings.Contains(s, "/tcp/") && !strings.Contains(s, "/ws")
		quic = quic || strings.Contains(s, "/quic-v1")
		ws = ws || strings.Contains(s, "/ws")
	}
	if !tcp || !quic || !ws {
		t.Fatalf("listening on %v: want TCP, QUIC and WebSocket", n.Addrs())
	}
	if n.AdminURL() == "" {
		t.Fatal("admin API not started")
	}
	if want, _ := identity.PeerID(key.Public().(ed25519.PublicKey)); n.Host().ID() != want {
		t.Fatalf("peer ID %s, want the identity file's %s", n.Host().ID(), want)
	}
}
