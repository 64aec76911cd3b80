package client

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/sealed"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// A private value's plaintext is uvarint(len(path)) | path | data: the seed
// sees only the keyed tag of the path, the device that decrypts gets the
// name back (which listing needs).

const maxPathLen = 64 * 256

// PrivateValue is one author's latest value of a path in a private vault.
type PrivateValue struct {
	Path  string
	Entry vault.SignedEntry
	Epoch uint32
	// Value is the plaintext of an inline value; nil for a blob value
	// (Blob is true: read it with ExportPrivate).
	Value []byte
	Blob  bool
	// Err says why this value could not be read (for example sealed with an
	// epoch this device never received).
	Err error
}

func namedPlaintext(path string, data []byte) []byte {
	b := binary.AppendUvarint(make([]byte, 0, len(path)+len(data)+3), uint64(len(path)))
	return append(append(b, path...), data...)
}

func splitNamed(p []byte) (string, []byte, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > maxPathLen || uint64(len(p)-k) < n {
		return "", nil, fmt.Errorf("%w: value does not start with its path", sealed.ErrMalformed)
	}
	return string(p[k : k+int(n)]), p[k+int(n):], nil
}

// PutPrivate seals value with the vault's current content key and stores it
// under the keyed tag of path, as this device.
func (h *Home) PutPrivate(ns vault.NamespaceID, path string, value []byte) (vault.SignedEntry, error) {
	kr, storedKey, err := h.privateKey(ns, path)
	if err != nil {
		return vault.SignedEntry{}, err
	}
	plain := namedPlaintext(path, value)
	if len(plain)+sealed.ValueOverhead > vault.MaxInlineValue {
		return h.putPrivateStream(ns, kr, storedKey, path, int64(len(value)), func(w io.Writer) error {
			_, err := w.Write(value)
			return err
		}, nil)
	}
	box, err := sealed.SealValue(kr.Epochs[kr.Current].Content, kr.Current, ns, storedKey, plain)
	if err != nil {
		return vault.SignedEntry{}, err
	}
	return h.putPrivateRef(ns, storedKey, vault.HashOf(box), uint64(len(box)), box)
}

// PutPrivateFile seals the file at file (streaming, constant memory) and
// stores it under path.
func (h *Home) PutPrivateFile(ns vault.NamespaceID, path, file string, progress func(int64)) (vault.SignedEntry, error) {
	kr, storedKey, err := h.privateKey(ns, path)
	if err != nil {
		return vault.SignedEntry{}, err
	}
	f, err := os.Open(file)
	if err != nil {
		return vault.SignedEntry{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return vault.SignedEntry{}, err
	}
	return h.putPrivateStream(ns, kr, storedKey, path, fi.Size(), func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	}, progress)
}

func (h *Home) privateKey(ns vault.NamespaceID, path string) (*Keyring, []byte, error) {
	kr, err := h.Keyring(ns)
	if err != nil {
		return nil, nil, err
	}
	storedKey, err := sealed.StoredKey(kr.Names(), path)
	if err != nil {
		return nil, nil, err
	}
	return kr, storedKey, nil
}

// putPrivateStream seals path's plaintext into a temporary file, adds it to
// the blob store and writes the entry.
func (h *Home) putPrivateStream(ns vault.NamespaceID, kr *Keyring, storedKey []byte, path string, size int64,
	write func(io.Writer) error, progress func(int64)) (vault.SignedEntry, error) {
	tmp, err := os.CreateTemp(h.Dir, ".seal-*")
	if err != nil {
		return vault.SignedEntry{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	sw, err := sealed.NewStreamSealer(bw, kr.Epochs[kr.Current].Content, kr.Current, ns, storedKey)
	if err != nil {
		return vault.SignedEntry{}, err
	}
	prefix := namedPlaintext(path, nil)
	if _, err := sw.Write(prefix); err != nil {
		return vault.SignedEntry{}, err
	}
	if err := write(sw); err != nil {
		return vault.SignedEntry{}, fmt.Errorf("seal %s: %w", path, err)
	}
	if err := sw.Close(); err != nil {
		return vault.SignedEntry{}, err
	}
	if err := bw.Flush(); err != nil {
		return vault.SignedEntry{}, err
	}
	hash, n, err := h.Blobs.AddFile(tmp.Name(), progress)
	if err != nil {
		return vault.SignedEntry{}, err
	}
	if want := sealed.SealedStreamSize(int64(len(prefix)) + size); int64(n) != want {
		return vault.SignedEntry{}, fmt.Errorf("seal %s: %d sealed bytes, expected %d (did the file change while it was read?)", path, n, want)
	}
	return h.putPrivateRef(ns, storedKey, hash, n, nil)
}

func (h *Home) putPrivateRef(ns vault.NamespaceID, storedKey []byte, hash [32]byte, size uint64, inline []byte) (vault.SignedEntry, error) {
	e := vault.Entry{Namespace: ns, Key: storedKey, Author: h.Author(), Hash: hash, Size: size,
		Timestamp: h.nextTimestampFor(ns, storedKey, h.Author())}
	se, err := vault.Sign(e, h.Key, vault.AgentConsent(), nil)
	if err != nil {
		return se, err
	}
	return se, h.insert(vault.Item{Entry: se, Content: inline})
}

// GetPrivate returns every author's latest value of path, decrypted.
func (h *Home) GetPrivate(ns vault.NamespaceID, path string) ([]PrivateValue, error) {
	kr, storedKey, err := h.privateKey(ns, path)
	if err != nil {
		return nil, err
	}
	items, err := h.Store.Get(ns, storedKey)
	if err != nil {
		return nil, err
	}
	return h.openItems(kr, items), nil
}

// ListPrivate returns the values whose path starts with prefix ("" or whole
// segments ending in '/').
func (h *Home) ListPrivate(ns vault.NamespaceID, prefix string, limit int) ([]PrivateValue, error) {
	kr, err := h.Keyring(ns)
	if err != nil {
		return nil, err
	}
	p, err := sealed.StoredPrefix(kr.Names(), prefix)
	if err != nil {
		return nil, err
	}
	fetch := limit
	if prefix != "" && limit > 0 {
		fetch = limit + 1 // the entry named like the directory itself is skipped
	}
	items, err := h.Store.List(ns, p, fetch)
	if err != nil {
		return nil, err
	}
	if prefix != "" {
		// The stored prefix of "a/b/" is the stored key of "a/b": that entry
		// is not under the directory.
		items = slices.DeleteFunc(items, func(it vault.Item) bool { return len(it.Entry.Key) <= len(p) })
	}
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	return h.openItems(kr, items), nil
}

// OpenPrivate decrypts items of the private vault ns (for example what a
// store subscription delivered), as GetPrivate does.
func (h *Home) OpenPrivate(ns vault.NamespaceID, items []vault.Item) ([]PrivateValue, error) {
	kr, err := h.Keyring(ns)
	if err != nil {
		return nil, err
	}
	return h.openItems(kr, items), nil
}

func (h *Home) openItems(kr *Keyring, items []vault.Item) []PrivateValue {
	out := make([]PrivateValue, 0, len(items))
	for _, it := range items {
		if vault.IsSystemKey(it.Entry.Key) {
			continue
		}
		pv := PrivateValue{Entry: it.Entry, Blob: it.Content == nil && it.Entry.Size > 0}
		if pv.Blob {
			pv.Path, pv.Epoch, pv.Err = h.blobPath(kr, &it.Entry)
		} else {
			var plain []byte
			if plain, pv.Epoch, pv.Err = sealed.OpenValue(kr.Keys, kr.Namespace, it.Entry.Key, it.Content); pv.Err == nil {
				pv.Path, pv.Value, pv.Err = splitNamed(plain)
			}
		}
		if pv.Err != nil {
			pv.Err = fmt.Errorf("value by %s: %w", it.Entry.Author.Short(), pv.Err)
		}
		out = append(out, pv)
	}
	return out
}

// ErrBlobMissing: a blob value is not (fully) on this device yet.
var ErrBlobMissing = errors.New("the sealed value is a blob not (fully) on this device: fetch it from a seed first")

// blobPath decrypts just enough of a local blob value to learn its path.
func (h *Home) blobPath(kr *Keyring, e *vault.SignedEntry) (string, uint32, error) {
	r, epoch, closeFn, err := h.openPrivateBlob(kr, e)
	if err != nil {
		return "", 0, err
	}
	defer closeFn()
	path, err := readNamePrefix(bufio.NewReader(r))
	return path, epoch, err
}

func readNamePrefix(r *bufio.Reader) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxPathLen {
		return "", fmt.Errorf("%w: value does not start with its path", sealed.ErrMalformed)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("%w: value does not start with its path", sealed.ErrMalformed)
	}
	return string(b), nil
}

// openPrivateBlob returns the plaintext stream of a blob value.
func (h *Home) openPrivateBlob(kr *Keyring, e *vault.SignedEntry) (io.Reader, uint32, func(), error) {
	if st, err := h.Blobs.Stat(e.Hash); err != nil || st.State != blobs.Complete {
		return nil, 0, nil, ErrBlobMissing
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(h.Blobs.Export(e.Hash, pw, 0, e.Size)) }()
	r, epoch, err := sealed.NewStreamOpener(pr, kr.Keys, kr.Namespace, e.Key)
	if err != nil {
		pr.CloseWithError(err)
		return nil, 0, nil, err
	}
	return r, epoch, func() { pr.CloseWithError(io.ErrClosedPipe) }, nil
}

// ExportPrivate writes the plaintext of a blob value (without its path) to w.
func (h *Home) ExportPrivate(pv PrivateValue, w io.Writer) error {
	if !pv.Blob {
		_, err := w.Write(pv.Value)
		return err
	}
	kr, err := h.Keyring(pv.Entry.Namespace)
	if err != nil {
		return err
	}
	r, _, closeFn, err := h.openPrivateBlob(kr, &pv.Entry)
	if err != nil {
		return err
	}
	defer closeFn()
	br := bufio.NewReaderSize(r, 64<<10)
	if _, err := readNamePrefix(br); err != nil {
		return err
	}
	_, err = io.Copy(w, br)
	return err
}

// ExportPrivateFile writes a value's plaintext to a new file at out.
func (h *Home) ExportPrivateFile(pv PrivateValue, out string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".export-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = h.ExportPrivate(pv, tmp); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
