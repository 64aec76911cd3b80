package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func mustGenerate(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	key, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// writeFile writes data with exactly the given mode, independent of umask.
func writeFile(t *testing.T, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// dirNames lists dir, so tests can check Save leaves no temp files behind.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestGenerate(t *testing.T) {
	a, b := mustGenerate(t), mustGenerate(t)
	if len(a) != ed25519.PrivateKeySize {
		t.Fatalf("key length %d", len(a))
	}
	if a.Equal(b) {
		t.Fatal("two generated keys are equal")
	}
	if !ed25519.NewKeyFromSeed(a.Seed()).Equal(a) {
		t.Fatal("public half does not match seed")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "state", "identity")
	path := filepath.Join(dir, "node.key")
	key := mustGenerate(t)

	if err := Save(path, key); err != nil {
		t.Fatalf("Save: %v", err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("key file mode = %04o, want 0600", got)
		}
		for _, d := range []string{filepath.Join(root, "state"), dir} {
			di, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			if got := di.Mode().Perm(); got != 0o700 {
				t.Errorf("created dir %s mode = %04o, want 0700", d, got)
			}
		}
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("file is not a single PRIVATE KEY PEM block:\n%s", data)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("not PKCS#8: %v", err)
	}
	if k, ok := parsed.(ed25519.PrivateKey); !ok || !k.Equal(key) {
		t.Fatalf("PKCS#8 content = %T, not the saved key", parsed)
	}

	if names := dirNames(t, dir); len(names) != 1 || names[0] != "node.key" {
		t.Errorf("directory contains %q, want only node.key (temp file left behind?)", names)
	}

	loaded, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !loaded.Equal(key) {
		t.Fatal("loaded key differs from saved key")
	}
}

func TestSaveRefusesOverwrite(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"existing key", func(t *testing.T, path string) {
			if err := Save(path, mustGenerate(t)); err != nil {
				t.Fatal(err)
			}
		}},
		{"existing empty file", func(t *testing.T, path string) {
			writeFile(t, path, nil, 0o600)
		}},
		{"existing directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "node.key")
			tc.setup(t, path)
			before, _ := os.ReadFile(path)
			namesBefore := dirNames(t, dir)

			err := Save(path, mustGenerate(t))
			if err == nil {
				t.Fatal("Save over existing path succeeded")
			}
			if !errors.Is(err, fs.ErrExist) {
				t.Errorf("error %q does not wrap fs.ErrExist", err)
			}
			if !strings.Contains(err.Error(), "refusing to overwrite") || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should name %s and say it refuses to overwrite", err, path)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Error("existing file was modified")
			}
			if got := dirNames(t, dir); strings.Join(got, ",") != strings.Join(namesBefore, ",") {
				t.Errorf("directory changed from %q to %q", namesBefore, got)
			}
		})
	}
}

// TestPublishDoesNotReplace covers the race Save's up-front existence check
// cannot: another process creating the key file between that check and the
// final step.
func TestPublishDoesNotReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.key")
	tmp := filepath.Join(dir, "tmp")
	writeFile(t, path, []byte("theirs"), 0o600)
	writeFile(t, tmp, []byte("ours"), 0o600)

	err := publish(tmp, path)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("publish over existing file: error = %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "theirs" {
		t.Fatalf("existing file replaced, now %q", got)
	}
}

func TestSaveRejectsInvalidKey(t *testing.T) {
	good := mustGenerate(t)
	other := mustGenerate(t)
	mismatched := append(append(ed25519.PrivateKey{}, good.Seed()...), other.Public().(ed25519.PublicKey)...)

	tests := []struct {
		name string
		key  ed25519.PrivateKey
	}{
		{"nil", nil},
		{"seed only", ed25519.PrivateKey(good.Seed())},
		{"too long", append(append(ed25519.PrivateKey{}, good...), 0)},
		{"public half does not match seed", mismatched},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.key")
			if err := Save(path, tc.key); err == nil {
				t.Fatal("Save accepted invalid key")
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("key file exists after failed Save (stat err %v)", err)
			}
		})
	}
}

func TestLoadPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX permission bits are not enforced on Windows")
	}
	tests := []struct {
		mode    fs.FileMode
		wantErr bool
	}{
		{0o600, false},
		{0o400, false},
		{0o644, true},
		{0o640, true},
		{0o604, true},
		{0o660, true},
		{0o620, true},
		{0o602, true},
		{0o666, true},
		{0o610, true},
		{0o601, true},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.key")
			key := mustGenerate(t)
			if err := Save(path, key); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if !got.Equal(key) {
					t.Fatal("wrong key")
				}
				return
			}
			if err == nil {
				t.Fatal("Load accepted key file readable/writable by group or others")
			}
			if !errors.Is(err, ErrKeyPermissions) {
				t.Errorf("error %q does not wrap ErrKeyPermissions", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
				t.Errorf("error %q should name the file and suggest chmod 600", err)
			}
			if got != nil {
				t.Error("key returned alongside error")
			}
		})
	}
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestLoadMalformed(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPKCS8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPKCS8, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	key := mustGenerate(t)
	edPKCS8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	good := pemBytes("PRIVATE KEY", edPKCS8)
	// PKCS#8 for Ed25519 (RFC 8410) with a 31-byte seed: structurally valid
	// DER whose key has the wrong size.
	shortSeed, _ := hex.DecodeString("302d020100300506032b657004210" + "41f" + strings.Repeat("11", 31))
	// The same with a 33-byte seed.
	longSeed, _ := hex.DecodeString("302f020100300506032b657004230" + "421" + strings.Repeat("11", 33))

	tests := []struct {
		name    string
		data    []byte
		wantMsg string
	}{
		{"empty file", nil, "empty"},
		{"whitespace", []byte("\n \n"), "empty"},
		{"garbage", []byte("this is not a key\x00\xff"), "no PEM block"},
		{"raw seed bytes", key.Seed(), "no PEM block"},
		{"raw DER", edPKCS8, "no PEM block"},
		{"truncated PEM", good[:len(good)/2], "no PEM block"},
		{"wrong PEM type", pemBytes("CERTIFICATE", edPKCS8), "CERTIFICATE"},
		{"RSA PKCS#8", pemBytes("PRIVATE KEY", rsaPKCS8), "Ed25519"},
		{"RSA PKCS#1", pemBytes("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "RSA PRIVATE KEY"},
		{"ECDSA PKCS#8", pemBytes("PRIVATE KEY", ecPKCS8), "Ed25519"},
		{"corrupt DER", pemBytes("PRIVATE KEY", edPKCS8[:len(edPKCS8)-5]), "PKCS#8"},
		{"empty DER", pemBytes("PRIVATE KEY", nil), "PKCS#8"},
		{"ed25519 31-byte seed", pemBytes("PRIVATE KEY", shortSeed), "PKCS#8"},
		{"ed25519 33-byte seed", pemBytes("PRIVATE KEY", longSeed), "PKCS#8"},
		{"two keys", append(append([]byte{}, good...), pemBytes("PRIVATE KEY", edPKCS8)...), "after PEM block"},
		{"trailing garbage", append(append([]byte{}, good...), "junk"...), "after PEM block"},
		{"oversized", bytes.Repeat([]byte("A"), 1<<20), "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.key")
			writeFile(t, path, tc.data, 0o600)
			got, err := Load(path)
			if err == nil {
				t.Fatalf("Load accepted %s", tc.name)
			}
			if got != nil {
				t.Error("key returned alongside error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
			if errors.Is(err, ErrKeyPermissions) {
				t.Errorf("content error %q reported as a permission problem", err)
			}
		})
	}
}

func TestLoadNotAKeyFile(t *testing.T) {
	dir := t.TempDir()

	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(dir, "missing.key")
		_, err := Load(path)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Load(missing) error = %v, want fs.ErrNotExist", err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name the file", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		path := filepath.Join(dir, "sub")
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("Load(directory) error = %v, want an error naming %s", err, path)
		}
	})
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fresh", "node.key")

	key1, created, err := LoadOrCreate(path)
	if err != nil {
		t.Fatalf("first LoadOrCreate: %v", err)
	}
	if !created {
		t.Fatal("first LoadOrCreate: created = false, want true")
	}
	if len(key1) != ed25519.PrivateKeySize {
		t.Fatalf("key length %d", len(key1))
	}
	onDisk, err := Load(path)
	if err != nil || !onDisk.Equal(key1) {
		t.Fatalf("key on disk does not match returned key (err %v)", err)
	}

	for i := range 2 {
		key2, created, err := LoadOrCreate(path)
		if err != nil {
			t.Fatalf("LoadOrCreate #%d: %v", i+2, err)
		}
		if created {
			t.Errorf("LoadOrCreate #%d: created = true, want false", i+2)
		}
		if !key2.Equal(key1) {
			t.Errorf("LoadOrCreate #%d returned a different key", i+2)
		}
	}
}

func TestLoadOrCreateDoesNotReplaceBadFile(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		posix   bool // relies on permission bits
		wantErr error
	}{
		{"garbage", func(t *testing.T, path string) { writeFile(t, path, []byte("garbage"), 0o600) }, false, nil},
		{"empty", func(t *testing.T, path string) { writeFile(t, path, nil, 0o600) }, false, nil},
		{"world readable", func(t *testing.T, path string) {
			if err := Save(path, mustGenerate(t)); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, true, ErrKeyPermissions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.posix && runtime.GOOS == "windows" {
				t.Skip("POSIX permission bits are not enforced on Windows")
			}
			path := filepath.Join(t.TempDir(), "node.key")
			tc.setup(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			key, created, err := LoadOrCreate(path)
			if err == nil {
				t.Fatal("LoadOrCreate succeeded on an unusable key file")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q does not wrap %v", err, tc.wantErr)
			}
			if created || key != nil {
				t.Errorf("created = %v, key = %x; want false, nil", created, key)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, before) {
				t.Error("unusable key file was replaced")
			}
		})
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Key encodings from the libp2p peer ID specification's test vectors
// (libp2p/specs, peer-ids/peer-ids.md, "Test vectors").
const (
	specEd25519PrivProto   = "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
	specEd25519PubProto    = "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
	specSecp256k1PubProto  = "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"
	specECDSAPubProto      = "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83abab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c409e62"
	specEd25519PubProtoLen = 36
)

func TestLibp2pSpecVector(t *testing.T) {
	privProto := mustHex(t, specEd25519PrivProto)
	pubProto := mustHex(t, specEd25519PubProto)
	// The protobuf is 08 01 (Type=Ed25519) 12 40 (Data, 64 bytes).
	key := ed25519.PrivateKey(privProto[4:])
	pub := key.Public().(ed25519.PublicKey)

	sk, err := Libp2pPrivKey(key)
	if err != nil {
		t.Fatalf("Libp2pPrivKey: %v", err)
	}
	gotPriv, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotPriv, privProto) {
		t.Errorf("marshalled private key = %x, want %x", gotPriv, privProto)
	}
	gotPub, err := crypto.MarshalPublicKey(sk.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotPub, pubProto) {
		t.Errorf("marshalled public key = %x, want %x", gotPub, pubProto)
	}

	// Keys of at most 42 serialized bytes use the identity multihash:
	// 0x00, length, protobuf.
	id, err := PeerID(pub)
	if err != nil {
		t.Fatalf("PeerID: %v", err)
	}
	wantID := append([]byte{0x00, specEd25519PubProtoLen}, pubProto...)
	if !bytes.Equal([]byte(id), wantID) {
		t.Errorf("PeerID = %x, want %x", []byte(id), wantID)
	}
	if !strings.HasPrefix(id.String(), "12D3KooW") {
		t.Errorf("PeerID string %s lacks the Ed25519 12D3KooW prefix", id)
	}
	back, err := PublicKeyFromPeerID(id)
	if err != nil || !back.Equal(pub) {
		t.Errorf("PublicKeyFromPeerID = %x, %v; want %x", back, err, pub)
	}
}

func TestPeerIDMatchesLibp2p(t *testing.T) {
	for i := range 10 {
		key := mustGenerate(t)
		pub := key.Public().(ed25519.PublicKey)

		sk, err := Libp2pPrivKey(key)
		if err != nil {
			t.Fatalf("Libp2pPrivKey: %v", err)
		}
		want, err := peer.IDFromPublicKey(sk.GetPublic())
		if err != nil {
			t.Fatal(err)
		}
		got, err := PeerID(pub)
		if err != nil {
			t.Fatalf("PeerID: %v", err)
		}
		if got != want {
			t.Fatalf("#%d: PeerID = %s, libp2p computes %s", i, got, want)
		}
		if !want.MatchesPrivateKey(sk) {
			t.Fatalf("#%d: peer ID does not match private key", i)
		}

		// Signatures must be interchangeable: the libp2p key is the same key.
		msg := []byte("seedfleet")
		sig, err := sk.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sig, ed25519.Sign(key, msg)) {
			t.Fatalf("#%d: libp2p signature differs from crypto/ed25519", i)
		}

		back, err := PublicKeyFromPeerID(got)
		if err != nil {
			t.Fatalf("PublicKeyFromPeerID: %v", err)
		}
		if !back.Equal(pub) {
			t.Fatalf("#%d: PublicKeyFromPeerID = %x, want %x", i, back, pub)
		}
		// The same identity must be reachable both ways: peer ID -> key -> did:key.
		if d, err := ParseDIDKey(DIDKey(back)); err != nil || !d.Equal(pub) {
			t.Fatalf("#%d: did:key round trip via peer ID failed: %v", i, err)
		}
	}
}

func TestLibp2pPrivKeyCopies(t *testing.T) {
	key := mustGenerate(t)
	orig := append(ed25519.PrivateKey{}, key...)
	sk, err := Libp2pPrivKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range key {
		key[i] = 0
	}
	raw, err := sk.Raw()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, orig) {
		t.Fatal("libp2p key changed when the caller's buffer was modified")
	}
}

func TestLibp2pRejectsInvalidKeys(t *testing.T) {
	good := mustGenerate(t)
	other := mustGenerate(t)
	mismatched := append(append(ed25519.PrivateKey{}, good.Seed()...), other.Public().(ed25519.PublicKey)...)
	for _, tc := range []struct {
		name string
		key  ed25519.PrivateKey
	}{
		{"nil", nil},
		{"seed only", ed25519.PrivateKey(good.Seed())},
		{"96 bytes", append(append(ed25519.PrivateKey{}, good...), good[32:]...)},
		{"public half does not match seed", mismatched},
	} {
		t.Run("priv "+tc.name, func(t *testing.T) {
			if _, err := Libp2pPrivKey(tc.key); err == nil {
				t.Fatal("Libp2pPrivKey accepted invalid key")
			}
		})
	}
	for _, n := range []int{0, 31, 33, 64} {
		t.Run(fmt.Sprintf("pub len %d", n), func(t *testing.T) {
			if _, err := PeerID(make(ed25519.PublicKey, n)); err == nil {
				t.Fatalf("PeerID accepted %d-byte key", n)
			}
		})
	}
}

func TestPublicKeyFromPeerIDRejects(t *testing.T) {
	secpPriv, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secpID, err := peer.IDFromPrivateKey(secpPriv)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaPriv, _, err := crypto.GenerateECDSAKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaID, err := peer.IDFromPrivateKey(ecdsaPriv)
	if err != nil {
		t.Fatal(err)
	}
	specSecpPub, err := crypto.UnmarshalPublicKey(mustHex(t, specSecp256k1PubProto))
	if err != nil {
		t.Fatal(err)
	}
	specSecpID, err := peer.IDFromPublicKey(specSecpPub)
	if err != nil {
		t.Fatal(err)
	}
	specECDSAPub, err := crypto.UnmarshalPublicKey(mustHex(t, specECDSAPubProto))
	if err != nil {
		t.Fatal(err)
	}
	specECDSAID, err := peer.IDFromPublicKey(specECDSAPub)
	if err != nil {
		t.Fatal(err)
	}
	// A well-formed identity multihash whose protobuf claims Ed25519 but
	// carries 31 bytes.
	shortEd := append([]byte{0x00, 35, 0x08, 0x01, 0x12, 31}, make([]byte, 31)...)

	tests := []struct {
		name    string
		id      peer.ID
		wantMsg string
	}{
		{"generated secp256k1", secpID, "Secp256k1"},
		{"spec secp256k1 vector", specSecpID, "Secp256k1"},
		{"generated ecdsa (hashed)", ecdsaID, peer.ErrNoPublicKey.Error()},
		{"spec ecdsa vector (hashed)", specECDSAID, peer.ErrNoPublicKey.Error()},
		{"empty", "", "peer ID"},
		{"garbage", peer.ID("not a multihash"), "peer ID"},
		{"truncated ed25519", peer.ID(shortEd), "peer ID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := PublicKeyFromPeerID(tc.id)
			if err == nil {
				t.Fatalf("PublicKeyFromPeerID(%s) = %x, want error", tc.id, pub)
			}
			if pub != nil {
				t.Error("key returned alongside error")
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
		})
	}
}

func TestLoadMountedAcceptsGroupReadOnly(t *testing.T) {
	key, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	data, err := EncodePEM(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{{0o400, true}, {0o440, true}, {0o460, false}, {0o444, false}, {0o640, true}} {
		path := filepath.Join(t.TempDir(), "identity.key")
		if err := os.WriteFile(path, data, tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		got, err := LoadMounted(path)
		if tc.ok != (err == nil) {
			t.Fatalf("mode %04o: err %v, want ok=%v", tc.mode, err, tc.ok)
		}
		if tc.ok && !got.Equal(key) {
			t.Fatalf("mode %04o: a different key came back", tc.mode)
		}
		if _, err := Load(path); tc.mode&0o077 != 0 && !errors.Is(err, ErrKeyPermissions) {
			t.Fatalf("mode %04o: Load accepted it (%v)", tc.mode, err)
		}
	}
}
