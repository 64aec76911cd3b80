package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// Files of a data directory besides its stores.
const (
	// IdentityKeyFile is the seed's key unless Config.IdentityFile is set.
	IdentityKeyFile = "identity.key"
	// PeerIDFile records the peer ID the data directory belongs to, written
	// when the directory gets its identity: a key that is not this peer's
	// (identity.key deleted and created again, a different key file, a
	// recreated identity Secret) is refused unless Config.NewIdentity.
	PeerIDFile = "peer-id"
	// AdminTokenFile holds the admin API's bearer token, generated on first
	// start unless Config.AdminToken is set.
	AdminTokenFile = "admin.token"
)

// ErrIdentityChanged is returned by New when starting would give a data
// directory that already has an identity a different peer ID.
var ErrIdentityChanged = errors.New("the seed's peer ID would change")

// storeDirs are the data directory's stores: a directory holding any of them
// is not new, and a key missing there is a key lost, not one to create.
var storeDirs = []string{"vaults", "blobs", "dht"}

// newIdentityHint is what every refusal offers besides restoring the key.
const newIdentityHint = "or, to give it a new peer ID (devices and other seeds know it by the old one " +
	"and must be told the new one), start once with --new-identity (config: newIdentity: true)"

// loadIdentity reads the seed's key, cfg.IdentityFile (which must exist) or
// DataDir/identity.key (created when the data directory is new), and checks
// it against the peer ID the data directory records, writing that record
// the first time.
func (n *Node) loadIdentity() (ed25519.PrivateKey, error) {
	dir := n.cfg.DataDir
	keyFile := filepath.Join(dir, IdentityKeyFile)
	recordFile := filepath.Join(dir, PeerIDFile)
	recorded, rerr := readPeerID(recordFile)
	if rerr != nil && !n.cfg.NewIdentity {
		return nil, fmt.Errorf("%w: restore it, %s", rerr, newIdentityHint)
	}
	var (
		key     ed25519.PrivateKey
		created bool
		err     error
	)
	if f := n.cfg.IdentityFile; f != "" {
		keyFile = f
		key, err = identity.LoadMounted(f)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("identity file %s: %w; a seed given an identity file never creates one: "+
				"the operator creates it (the pod's identity Secret), or create one with `seedfleet key create --home DIR` "+
				"and pass DIR/identity.key; or leave the identity file unset to use %s, created on first start",
				f, fs.ErrNotExist, filepath.Join(dir, IdentityKeyFile))
		}
	} else {
		key, err = identity.Load(keyFile)
		if errors.Is(err, fs.ErrNotExist) {
			if held := heldStores(dir); (len(held) > 0 || recorded != "") && !n.cfg.NewIdentity {
				return nil, missingKeyError(keyFile, dir, held, recorded)
			}
			key, created, err = identity.LoadOrCreate(keyFile)
		}
	}
	if err != nil {
		return nil, err
	}
	id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if created {
		n.log.Info("created a new seed identity", "file", keyFile, "peer", id)
	}
	switch {
	case recorded == id:
		if n.cfg.NewIdentity && !created {
			n.log.Warn("--new-identity has nothing to do: the key is the one this data directory belongs to; "+
				"leave the flag out, so that a lost key is refused next time", "peer", id)
		}
		return key, nil
	case recorded != "" && !n.cfg.NewIdentity:
		from := ""
		if n.cfg.IdentityFile != "" {
			from = " (a pod's key comes from its identity Secret: if the Secret was recreated, restore the old key into it)"
		}
		return nil, fmt.Errorf("%w: the key in %s is peer %s, but data directory %s belongs to peer %s (%s): "+
			"put back the key of %s%s, %s",
			ErrIdentityChanged, keyFile, id, dir, recorded, recordFile, recorded, from, newIdentityHint)
	case recorded != "" || rerr != nil:
		n.log.Warn("the seed's peer ID changed, as asked (--new-identity): devices and other seeds must be told the new one; "+
			"leave the flag out from now on", "old", recorded, "new", id, "key", keyFile)
		if err := os.Remove(recordFile); err != nil {
			return nil, fmt.Errorf("identity: replace %s: %w", recordFile, err)
		}
	}
	if err := identity.WriteNewFile(recordFile, []byte(id.String()+"\n")); err != nil {
		return nil, fmt.Errorf("identity: record the peer ID in %s: %w", recordFile, err)
	}
	return key, nil
}

// missingKeyError says that the key of a data directory with an identity is gone.
func missingKeyError(keyFile, dir string, held []string, recorded peer.ID) error {
	var what []string
	if len(held) > 0 {
		what = append(what, "the stores "+strings.Join(held, ", "))
	}
	if recorded != "" {
		what = append(what, PeerIDFile+", which says it is peer "+recorded.String())
	}
	return fmt.Errorf("%w: %s is missing, but data directory %s is not new (it holds %s), so a new key would give "+
		"this seed a new peer ID: put back its identity.key (from a backup), %s",
		ErrIdentityChanged, keyFile, dir, strings.Join(what, "; "), newIdentityHint)
}

// heldStores lists the stores in dir ("vaults/", ...).
func heldStores(dir string) []string {
	var held []string
	for _, s := range storeDirs {
		if _, err := os.Lstat(filepath.Join(dir, s)); err == nil {
			held = append(held, s+"/")
		}
	}
	return held
}

// readPeerID reads the peer ID a data directory records ("" when it records none).
func readPeerID(path string) (peer.ID, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<10))
	if err != nil {
		return "", fmt.Errorf("identity: %s: %w", path, err)
	}
	id, err := peer.Decode(strings.TrimSpace(string(data)))
	if err != nil {
		return "", fmt.Errorf("identity: %s does not hold a peer ID (%v); it records which peer the data directory belongs to", path, err)
	}
	return id, nil
}

// adminToken returns the admin API's bearer token: cfg.AdminToken, or else
// the one in DataDir/admin.token, generated on first start. The admin API
// always has one, so its writes are never open to whoever reaches its port.
func (n *Node) adminToken() (string, error) {
	if n.cfg.AdminToken != "" {
		return n.cfg.AdminToken, nil
	}
	path := filepath.Join(n.cfg.DataDir, AdminTokenFile)
	for range 2 {
		if fi, err := os.Stat(path); err == nil {
			if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
				return "", fmt.Errorf("admin token %s: mode %04o: readable by other users, who could change what this seed hosts; "+
					"run `chmod 600 %s`", path, fi.Mode().Perm(), path)
			}
			return admin.ReadToken(path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("admin token: %w", err)
		}
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("admin token: %w", err)
		}
		token := hex.EncodeToString(b[:])
		err := identity.WriteNewFile(path, []byte(token+"\n"))
		if err == nil {
			n.log.Info("generated the admin API token: changes through the admin API must carry it", "file", path)
			return token, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("admin token %s: %w", path, err)
		}
		// Another process wrote one first: use it.
	}
	return "", fmt.Errorf("admin token %s: it appeared and disappeared while it was being read; start again", path)
}

// AdminTokenFile is the file holding the admin API's token when the node
// generated it ("" when the token came from Config.AdminToken or the admin
// API is off).
func (n *Node) AdminTokenFile() string {
	if n.admin == nil || n.cfg.AdminToken != "" {
		return ""
	}
	return filepath.Join(n.cfg.DataDir, AdminTokenFile)
}
