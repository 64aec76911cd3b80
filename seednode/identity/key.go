package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrKeyPermissions is returned by Load when the key file is accessible to
// group or others: a node key that other local users can read is no longer a
// secret, and one they can write lets them replace the node's identity.
var ErrKeyPermissions = errors.New("key file is accessible by group or others")

const pemType = "PRIVATE KEY"

// maxKeyFileSize bounds what Load reads: an Ed25519 PKCS#8 PEM is ~120 bytes,
// so anything much larger is not a key and need not be read into memory.
const maxKeyFileSize = 64 << 10

// Generate returns a new random Ed25519 private key.
func Generate() (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	return key, nil
}

// checkPrivateKey rejects keys whose public half does not match the seed.
// PKCS#8 stores only the seed, so saving such a key would silently persist a
// different identity than the one the caller holds.
func checkPrivateKey(key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("ed25519 private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	derived := ed25519.NewKeyFromSeed(key.Seed())
	if subtle.ConstantTimeCompare(derived, key) != 1 {
		return errors.New("ed25519 private key: public half does not match seed")
	}
	return nil
}

// EncodePEM returns key as the PKCS#8 "PRIVATE KEY" PEM block that Save
// writes and Load reads (the operator stores it in a pod's identity Secret).
func EncodePEM(key ed25519.PrivateKey) ([]byte, error) {
	if err := checkPrivateKey(key); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// DecodePEM parses what EncodePEM returns.
func DecodePEM(data []byte) (ed25519.PrivateKey, error) { return parsePEM(data) }

// Save writes key to path as a PKCS#8 "PRIVATE KEY" PEM block with mode 0600,
// creating missing parent directories with mode 0700. It never overwrites an
// existing file: replacing a node key changes the node's identity, so that
// must be an explicit decision (remove the file first). The file appears
// atomically, fully written and synced, or not at all.
func Save(path string, key ed25519.PrivateKey) error {
	if err := checkPrivateKey(key); err != nil {
		return fmt.Errorf("identity: save %s: %w", path, err)
	}
	data, err := EncodePEM(key)
	if err != nil {
		return fmt.Errorf("identity: save %s: %w", path, err)
	}
	if err := WriteNewFile(path, data); err != nil {
		return fmt.Errorf("identity: save %s: %w", path, err)
	}
	return nil
}

// WriteNewFile writes data to a new file at path with mode 0600, creating
// missing parent directories with mode 0700, the way Save writes a key: the
// file appears atomically, fully written and synced, or not at all, and an
// existing file is never replaced (the error wraps fs.ErrExist). A seed
// writes its other small files that must never be half-written or silently
// replaced (its admin token, the record of its peer ID) with it too.
func WriteNewFile(path string, data []byte) (err error) {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("refusing to overwrite existing file: %w", fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The temp file must live in the target directory so the final step is a
	// same-filesystem link/rename.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() {
		// After a successful publish the temp name is either gone (rename) or
		// a second link to the file (link); removing it is right in both cases.
		if rerr := os.Remove(tmpName); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("remove temp file: %w", rerr)
		}
	}()
	if err := writeAndSync(tmp, data); err != nil {
		return err
	}
	if err := publish(tmpName, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func writeAndSync(f *os.File, data []byte) error {
	err := func() error {
		// CreateTemp asks for 0600 but the umask may strip more; Load's
		// check only needs "no group/other bits", yet the owner must be
		// able to read it back, so set the mode exactly.
		if runtime.GOOS != "windows" {
			if err := f.Chmod(0o600); err != nil {
				return err
			}
		}
		if _, err := f.Write(data); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// publish moves the finished temp file to path without ever replacing an
// existing file. A plain rename would silently clobber a key created
// concurrently (e.g. two LoadOrCreate racing); a hard link fails atomically
// with EEXIST instead. Filesystems without hard links fall back to
// check-then-rename, which is as good as it gets there.
func publish(tmpName, path string) error {
	lerr := os.Link(tmpName, path)
	if lerr == nil {
		return nil
	}
	if errors.Is(lerr, fs.ErrExist) {
		return fmt.Errorf("refusing to overwrite existing file: %w", fs.ErrExist)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("refusing to overwrite existing file: %w", fs.ErrExist)
	}
	return os.Rename(tmpName, path)
}

// syncDir makes the new directory entry durable, so a crash right after Save
// cannot lose a key the node has already started using.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		// Directories cannot be opened for syncing on Windows.
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// Load reads a key written by Save. It refuses files that group or others can
// read or write (ErrKeyPermissions) and reports malformed contents as errors
// naming the file.
func Load(path string) (ed25519.PrivateKey, error) { return load(path, 0o077) }

// LoadMounted is Load for a key mounted from a Kubernetes Secret: the kubelet
// always gives the pod's fsGroup read access to Secret files (a non-root
// pod reads them through that group), so group read is accepted; group write
// and any access by others are still refused.
func LoadMounted(path string) (ed25519.PrivateKey, error) { return load(path, 0o037) }

func load(path string, forbidden fs.FileMode) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: load %s: %w", path, err)
	}
	defer f.Close()

	// Stat the open file rather than the path so the mode we check belongs
	// to the bytes we read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: load %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("identity: load %s: not a regular file (%s)", path, fi.Mode())
	}
	// Windows does not report POSIX permission bits, so the check would
	// reject every file there.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&forbidden != 0 {
		return nil, fmt.Errorf("identity: load %s: mode %04o: %w; run `chmod 600 %s`",
			path, fi.Mode().Perm(), ErrKeyPermissions, path)
	}

	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("identity: load %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("identity: load %s: file larger than %d bytes, not a key file", path, maxKeyFileSize)
	}
	key, err := parsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("identity: load %s: %w", path, err)
	}
	return key, nil
}

func parsePEM(data []byte) (ed25519.PrivateKey, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("file is empty")
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != pemType {
		return nil, fmt.Errorf("PEM block type is %q, want %q", block.Type, pemType)
	}
	// A second block (or other trailing data) means this is not a file Save
	// wrote; guessing which part is the key would be unsafe.
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("unexpected data after PEM block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8: %w", err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want Ed25519", parsed)
	}
	if err := checkPrivateKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

// LoadOrCreate loads the key at path or, if the file does not exist,
// generates and saves a new one (created reports which happened). Any other
// load failure, such as bad permissions, is returned rather than papered over
// with a fresh key, since that would silently change the node's identity.
func LoadOrCreate(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = Load(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err = Generate()
	if err != nil {
		return nil, false, err
	}
	if err := Save(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process won the race; its key is the identity now.
			key, err = Load(path)
			return key, false, err
		}
		return nil, false, err
	}
	return key, true, nil
}

// Libp2pPrivKey converts key for use as a libp2p host identity.
func Libp2pPrivKey(key ed25519.PrivateKey) (crypto.PrivKey, error) {
	if err := checkPrivateKey(key); err != nil {
		return nil, fmt.Errorf("identity: libp2p private key: %w", err)
	}
	// libp2p keeps the slice it is given; copy so later changes to the
	// caller's buffer cannot alter the host key.
	sk, err := crypto.UnmarshalEd25519PrivateKey(bytes.Clone(key))
	if err != nil {
		return nil, fmt.Errorf("identity: libp2p private key: %w", err)
	}
	return sk, nil
}

// PeerID returns the libp2p peer ID of pub. Ed25519 keys are small enough to
// be inlined (identity multihash), which is what makes PublicKeyFromPeerID
// possible.
func PeerID(pub ed25519.PublicKey) (peer.ID, error) {
	pk, err := crypto.UnmarshalEd25519PublicKey(bytes.Clone(pub))
	if err != nil {
		return "", fmt.Errorf("identity: peer ID: %w", err)
	}
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		return "", fmt.Errorf("identity: peer ID: %w", err)
	}
	return id, nil
}

// PublicKeyFromPeerID extracts the Ed25519 public key embedded in id. It
// fails for peer IDs of other key types, including hashed (RSA) IDs that do
// not embed a key at all.
func PublicKeyFromPeerID(id peer.ID) (ed25519.PublicKey, error) {
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("identity: public key from peer ID %s: %w", id, err)
	}
	if _, ok := pk.(*crypto.Ed25519PublicKey); !ok {
		return nil, fmt.Errorf("identity: public key from peer ID %s: key type is %s, want Ed25519", id, pk.Type())
	}
	raw, err := pk.Raw()
	if err != nil {
		return nil, fmt.Errorf("identity: public key from peer ID %s: %w", id, err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("identity: public key from peer ID %s: key is %d bytes, want %d", id, len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}
