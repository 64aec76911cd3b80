package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/multiformats/go-varint"
)

// Limits of an agent document. Verifiers check them before allocating, so a
// hostile vault entry costs at most a few kilobytes to reject.
const (
	// MaxAgentDocumentSize bounds the encoded document, signature included.
	MaxAgentDocumentSize = 16 << 10
	// MaxAgentDevices bounds the listed (active) device keys.
	MaxAgentDevices = 128
	// MaxAgentRevoked bounds the revoked keys. Revocations are kept forever
	// so that old entries stay checkable; an agent that reaches the limit
	// has to move to a new root key.
	MaxAgentRevoked = 256
	// AgentDocumentVersion is the first byte of every encoded document. A
	// different encoding gets a different value rather than a reinterpretation.
	AgentDocumentVersion = 1
)

var (
	// ErrAgentDocument is wrapped by every error that says an agent document
	// is malformed or breaks a rule, whether decoded or being edited.
	ErrAgentDocument = errors.New("invalid agent document")
	// ErrAgentSignature means the document is not signed by the root key it
	// names. ParseAgentDocument wraps it together with ErrAgentDocument.
	ErrAgentSignature = errors.New("agent document signature does not verify")
	// ErrKeyNotListed means a key is neither the root nor a device of the agent.
	ErrKeyNotListed = errors.New("key is not listed in the agent document")
	// ErrKeyRevoked means a key was a device of the agent but has been revoked.
	ErrKeyRevoked = errors.New("key was revoked from the agent document")
	// ErrStaleDocument means a document does not advance the version held,
	// which is what a replay of an old document looks like.
	ErrStaleDocument = errors.New("agent document is not newer than the one held")
	// ErrOtherAgent means a document, or a signing key, has another root key.
	ErrOtherAgent = errors.New("agent document belongs to another agent")
)

// agentDocumentDomain prefixes the signed message but is never stored: it
// makes a root key's signature over an agent document useless as a signature
// over anything else the same key signs, and the reverse.
const agentDocumentDomain = "seedfleet/agent-document/v1\x00"

const (
	// agentHeaderSize is the encoding version, root key, version and issue time.
	agentHeaderSize = 1 + ed25519.PublicKeySize + 8 + 8
	// agentEntryMinSize is a device or revoked entry with a one-byte fragment.
	agentEntryMinSize = 1 + 1 + ed25519.PublicKeySize + 8
	// agentMinSize is a document without devices or revocations.
	agentMinSize = agentHeaderSize + 1 + 1 + ed25519.SignatureSize
)

// DeviceKey is an operational key that the agent's root key has authorized.
type DeviceKey struct {
	// Fragment names the key within the agent's DID (did:key:z6Mk...#laptop):
	// 1..64 characters of [A-Za-z0-9._-]. It is unique among the document's
	// listed and revoked keys, so a DID URL kept in an old entry keeps
	// naming the same key after a revocation.
	Fragment string
	// Key is the device's Ed25519 public key.
	Key ed25519.PublicKey
	// Added is when the device was listed, in µs since the Unix epoch. It is
	// informational: Authorized does not consult it.
	Added uint64
}

// RevokedKey is a former device key.
type RevokedKey struct {
	// Fragment is the name the key had as a device.
	Fragment string
	// Key is the revoked Ed25519 public key.
	Key ed25519.PublicKey
	// RevokedAt is in µs since the Unix epoch. Entries the key stamps at or
	// after this time are refused; earlier ones stay valid.
	RevokedAt uint64
}

// AgentDocument is the signed, versioned list of the keys that may act for an
// agent. The agent is its Ed25519 root key (its DID is the root's did:key);
// the root signs each version and is always authorized itself, while devices
// hold operational keys that the root can list and revoke. Devices and
// Revoked are kept sorted by key bytes so the encoding is canonical.
type AgentDocument struct {
	// Root is the agent's root key.
	Root ed25519.PublicKey
	// Version starts at 1; of several valid documents, the highest wins.
	Version uint64
	// Issued is when this version was made, in µs since the Unix epoch.
	Issued uint64
	// Devices are the listed keys, sorted by key bytes, at most MaxAgentDevices.
	Devices []DeviceKey
	// Revoked are the revoked keys, sorted by key bytes, at most MaxAgentRevoked.
	Revoked []RevokedKey
}

// NewAgentDocument returns version 1 of the document of root, without
// devices. Like DIDKey, it panics if root has the wrong length.
func NewAgentDocument(root ed25519.PublicKey, now time.Time) *AgentDocument {
	if len(root) != ed25519.PublicKeySize {
		panic(fmt.Sprintf("identity: NewAgentDocument: bad ed25519 public key length %d", len(root)))
	}
	return &AgentDocument{Root: bytes.Clone(root), Version: 1, Issued: unixMicros(now)}
}

// DID returns the agent's DID, the did:key of its root. Like DIDKey, it
// panics if the root has the wrong length; documents from NewAgentDocument
// and ParseAgentDocument always have a valid one.
func (d *AgentDocument) DID() string {
	return DIDKey(d.Root)
}

// Clone returns a deep copy of d.
func (d *AgentDocument) Clone() *AgentDocument {
	c := &AgentDocument{Root: bytes.Clone(d.Root), Version: d.Version, Issued: d.Issued}
	if d.Devices != nil {
		c.Devices = make([]DeviceKey, len(d.Devices))
		for i, dev := range d.Devices {
			dev.Key = bytes.Clone(dev.Key)
			c.Devices[i] = dev
		}
	}
	if d.Revoked != nil {
		c.Revoked = make([]RevokedKey, len(d.Revoked))
		for i, r := range d.Revoked {
			r.Key = bytes.Clone(r.Key)
			c.Revoked[i] = r
		}
	}
	return c
}

// Next returns the draft of the next version: a copy of d with Version+1 and
// Issued set to now. d itself is not changed, so an edit that fails halfway
// cannot damage the document that is held.
func (d *AgentDocument) Next(now time.Time) *AgentDocument {
	n := d.Clone()
	n.Version++
	n.Issued = unixMicros(now)
	return n
}

// AddDevice lists key under fragment, added at now. It refuses a key or
// fragment already in the document, the root key, and anything that would
// break the limits (all wrapping ErrAgentDocument), and a revoked key
// (wrapping ErrKeyRevoked): once revoked, a key is never listed again. On
// error d is unchanged.
func (d *AgentDocument) AddDevice(fragment string, key ed25519.PublicKey, now time.Time) error {
	if err := d.addDevice(fragment, key, now); err != nil {
		return fmt.Errorf("identity: add device %q to %s: %w", truncate(fragment), didOf(d.Root), err)
	}
	return nil
}

func (d *AgentDocument) addDevice(fragment string, key ed25519.PublicKey, now time.Time) error {
	if err := d.checkNewDevice(fragment, key); err != nil {
		return err
	}
	dev := DeviceKey{Fragment: fragment, Key: bytes.Clone(key), Added: unixMicros(now)}
	i, _ := slices.BinarySearchFunc(d.Devices, dev.Key, compareDeviceKey)
	devices := slices.Insert(slices.Clone(d.Devices), i, dev)
	if err := checkSize(d.withLists(devices, d.Revoked)); err != nil {
		return err
	}
	d.Devices = devices
	return nil
}

func (d *AgentDocument) checkNewDevice(fragment string, key ed25519.PublicKey) error {
	if err := CheckFragment(fragment); err != nil {
		return fmt.Errorf("%w: %s", ErrAgentDocument, err)
	}
	if len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: ed25519 public key is %d bytes, want %d", ErrAgentDocument, len(key), ed25519.PublicKeySize)
	}
	if bytes.Equal(key, d.Root) {
		return fmt.Errorf("%w: the root key is always authorized and is never listed as a device", ErrAgentDocument)
	}
	for _, r := range d.Revoked {
		if bytes.Equal(r.Key, key) {
			return fmt.Errorf("%w at %s as #%s; a revoked key is never listed again", ErrKeyRevoked, formatMicros(r.RevokedAt), r.Fragment)
		}
	}
	for _, dev := range d.Devices {
		if bytes.Equal(dev.Key, key) {
			return fmt.Errorf("%w: key is already listed as #%s", ErrAgentDocument, dev.Fragment)
		}
	}
	if d.fragmentInUse(fragment) {
		return fmt.Errorf("%w: fragment #%s is already in use", ErrAgentDocument, fragment)
	}
	if len(d.Devices) >= MaxAgentDevices {
		return fmt.Errorf("%w: already %d devices, max %d", ErrAgentDocument, len(d.Devices), MaxAgentDevices)
	}
	return nil
}

func (d *AgentDocument) fragmentInUse(fragment string) bool {
	return slices.ContainsFunc(d.Devices, func(dev DeviceKey) bool { return dev.Fragment == fragment }) ||
		slices.ContainsFunc(d.Revoked, func(r RevokedKey) bool { return r.Fragment == fragment })
}

// Revoke moves the device with key to Revoked, effective at now. It returns
// an error wrapping ErrKeyNotListed if key is not a listed device (including
// a key already revoked), and one wrapping ErrAgentDocument for the root key
// or when the revoked list is full. On error d is unchanged.
func (d *AgentDocument) Revoke(key ed25519.PublicKey, now time.Time) error {
	if err := d.revoke(key, now); err != nil {
		return fmt.Errorf("identity: revoke %s from %s: %w", didOf(key), didOf(d.Root), err)
	}
	return nil
}

func (d *AgentDocument) revoke(key ed25519.PublicKey, now time.Time) error {
	if bytes.Equal(key, d.Root) {
		return fmt.Errorf("%w: the root key cannot be revoked; move the agent to a new root instead", ErrAgentDocument)
	}
	i := slices.IndexFunc(d.Devices, func(dev DeviceKey) bool { return bytes.Equal(dev.Key, key) })
	if i < 0 {
		if r, ok := d.revoked(key); ok {
			return fmt.Errorf("%w: already revoked at %s as #%s", ErrKeyNotListed, formatMicros(r.RevokedAt), r.Fragment)
		}
		return ErrKeyNotListed
	}
	if len(d.Revoked) >= MaxAgentRevoked {
		return fmt.Errorf("%w: already %d revoked keys, max %d", ErrAgentDocument, len(d.Revoked), MaxAgentRevoked)
	}
	dev := d.Devices[i]
	r := RevokedKey{Fragment: dev.Fragment, Key: dev.Key, RevokedAt: unixMicros(now)}
	j, _ := slices.BinarySearchFunc(d.Revoked, r.Key, compareRevokedKey)
	devices := slices.Delete(slices.Clone(d.Devices), i, i+1)
	revoked := slices.Insert(slices.Clone(d.Revoked), j, r)
	// Moving an entry keeps its size, but a count can grow a varint byte.
	if err := checkSize(d.withLists(devices, revoked)); err != nil {
		return err
	}
	d.Devices, d.Revoked = devices, revoked
	return nil
}

func (d *AgentDocument) revoked(key ed25519.PublicKey) (RevokedKey, bool) {
	i := slices.IndexFunc(d.Revoked, func(r RevokedKey) bool { return bytes.Equal(r.Key, key) })
	if i < 0 {
		return RevokedKey{}, false
	}
	return d.Revoked[i], true
}

// withLists returns a shallow copy of d with other lists, for checking an
// edit before making it.
func (d *AgentDocument) withLists(devices []DeviceKey, revoked []RevokedKey) *AgentDocument {
	c := *d
	c.Devices, c.Revoked = devices, revoked
	return &c
}

// Authorized reports whether key may act for the agent in an entry stamped
// at (µs since the Unix epoch). The root key and listed devices always may.
// A revoked key may for entries stamped before its revocation; later ones
// get an error wrapping ErrKeyRevoked. Any other key gets an error wrapping
// ErrKeyNotListed.
func (d *AgentDocument) Authorized(key ed25519.PublicKey, at uint64) error {
	if len(key) == ed25519.PublicKeySize && bytes.Equal(key, d.Root) {
		return nil
	}
	// Checked before the devices: a document that (invalidly) has a key in
	// both lists must not authorize it.
	if r, ok := d.revoked(key); ok {
		if at < r.RevokedAt {
			return nil
		}
		return fmt.Errorf("identity: %s#%s: %w at %s; entry stamped %s",
			didOf(d.Root), r.Fragment, ErrKeyRevoked, formatMicros(r.RevokedAt), formatMicros(at))
	}
	if _, ok := d.Device(key); ok {
		return nil
	}
	return fmt.Errorf("identity: %s: %w of %s", didOf(key), ErrKeyNotListed, didOf(d.Root))
}

// Device returns the listed device with key, if there is one.
func (d *AgentDocument) Device(key ed25519.PublicKey) (DeviceKey, bool) {
	i := slices.IndexFunc(d.Devices, func(dev DeviceKey) bool { return bytes.Equal(dev.Key, key) })
	if i < 0 {
		return DeviceKey{}, false
	}
	dev := d.Devices[i]
	dev.Key = bytes.Clone(dev.Key)
	return dev, true
}

// ActiveKeys returns copies of the keys that may act for the agent now: the
// root, then the devices.
func (d *AgentDocument) ActiveKeys() []ed25519.PublicKey {
	keys := make([]ed25519.PublicKey, 0, 1+len(d.Devices))
	keys = append(keys, bytes.Clone(d.Root))
	for _, dev := range d.Devices {
		keys = append(keys, bytes.Clone(dev.Key))
	}
	return keys
}

// Validate checks the rules every signed document follows: a 32-byte root,
// version at least 1, valid fragments unique in the document, 32-byte keys,
// both lists sorted by key without duplicates, no key both listed and
// revoked, the root in neither list, and the limits. Errors wrap
// ErrAgentDocument.
func (d *AgentDocument) Validate() error {
	if err := d.validate(); err != nil {
		return fmt.Errorf("identity: %w: %s", ErrAgentDocument, err)
	}
	return nil
}

func (d *AgentDocument) validate() error {
	if len(d.Root) != ed25519.PublicKeySize {
		return fmt.Errorf("root key is %d bytes, want %d", len(d.Root), ed25519.PublicKeySize)
	}
	if d.Version == 0 {
		return errors.New("version is 0; versions start at 1")
	}
	if len(d.Devices) > MaxAgentDevices {
		return fmt.Errorf("%d devices, max %d", len(d.Devices), MaxAgentDevices)
	}
	if len(d.Revoked) > MaxAgentRevoked {
		return fmt.Errorf("%d revoked keys, max %d", len(d.Revoked), MaxAgentRevoked)
	}
	fragments := make(map[string]bool, len(d.Devices)+len(d.Revoked))
	listed := make(map[string]string, len(d.Devices))
	for i, dev := range d.Devices {
		var prev ed25519.PublicKey
		if i > 0 {
			prev = d.Devices[i-1].Key
		}
		if err := d.checkEntry("device", i, dev.Fragment, dev.Key, prev, fragments); err != nil {
			return err
		}
		listed[string(dev.Key)] = dev.Fragment
	}
	for i, r := range d.Revoked {
		var prev ed25519.PublicKey
		if i > 0 {
			prev = d.Revoked[i-1].Key
		}
		if err := d.checkEntry("revoked key", i, r.Fragment, r.Key, prev, fragments); err != nil {
			return err
		}
		if f, ok := listed[string(r.Key)]; ok {
			return fmt.Errorf("revoked key %d (#%s) is still listed as device #%s", i, r.Fragment, f)
		}
	}
	return checkSize(d)
}

// checkEntry checks one device or revoked entry; prev is the key of the
// entry before it in the same list (nil for the first), fragments the
// fragments seen so far in either list.
func (d *AgentDocument) checkEntry(kind string, i int, fragment string, key, prev ed25519.PublicKey, fragments map[string]bool) error {
	if err := CheckFragment(fragment); err != nil {
		return fmt.Errorf("%s %d: %v", kind, i, err)
	}
	name := fmt.Sprintf("%s %d (#%s)", kind, i, fragment)
	if len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("%s: ed25519 public key is %d bytes, want %d", name, len(key), ed25519.PublicKeySize)
	}
	if bytes.Equal(key, d.Root) {
		return fmt.Errorf("%s is the root key, which is always authorized and never listed or revoked", name)
	}
	if prev != nil {
		switch c := bytes.Compare(prev, key); {
		case c == 0:
			return fmt.Errorf("%s: duplicate key", name)
		case c > 0:
			return fmt.Errorf("%s: not sorted by key", name)
		}
	}
	if fragments[fragment] {
		return fmt.Errorf("%s: fragment used twice", name)
	}
	fragments[fragment] = true
	return nil
}

// checkSize refuses a document whose encoding would exceed
// MaxAgentDocumentSize. Fragments must already be at most 64 bytes.
func checkSize(d *AgentDocument) error {
	if n := d.encodedSize(); n > MaxAgentDocumentSize {
		return fmt.Errorf("%w: encoding would be %d bytes, max %d", ErrAgentDocument, n, MaxAgentDocumentSize)
	}
	return nil
}

// encodedSize is the length of Sign's output for d.
func (d *AgentDocument) encodedSize() int {
	n := agentHeaderSize +
		varint.UvarintSize(uint64(len(d.Devices))) + varint.UvarintSize(uint64(len(d.Revoked))) +
		ed25519.SignatureSize
	for _, dev := range d.Devices {
		n += 1 + len(dev.Fragment) + len(dev.Key) + 8
	}
	for _, r := range d.Revoked {
		n += 1 + len(r.Fragment) + len(r.Key) + 8
	}
	return n
}

// Sign returns the encoded document: its canonical encoding followed by the
// root's signature over the domain separator and that encoding. It refuses
// an invalid document, and a key other than the document's root (wrapping
// ErrOtherAgent).
func (d *AgentDocument) Sign(root ed25519.PrivateKey) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if err := checkPrivateKey(root); err != nil {
		return nil, fmt.Errorf("identity: sign agent document of %s: %w", d.DID(), err)
	}
	if pub := root.Public().(ed25519.PublicKey); !bytes.Equal(pub, d.Root) {
		return nil, fmt.Errorf("identity: sign agent document of %s with key %s: %w", d.DID(), DIDKey(pub), ErrOtherAgent)
	}
	msg := make([]byte, 0, len(agentDocumentDomain)+d.encodedSize())
	msg = append(msg, agentDocumentDomain...)
	msg = d.appendBody(msg)
	sig := ed25519.Sign(root, msg)
	return append(msg[len(agentDocumentDomain):], sig...), nil
}

// appendBody appends the canonical encoding of d, without domain separator
// or signature. d must be valid.
func (d *AgentDocument) appendBody(b []byte) []byte {
	b = append(b, AgentDocumentVersion)
	b = append(b, d.Root...)
	b = binary.BigEndian.AppendUint64(b, d.Version)
	b = binary.BigEndian.AppendUint64(b, d.Issued)
	b = binary.AppendUvarint(b, uint64(len(d.Devices)))
	for _, dev := range d.Devices {
		b = appendEntry(b, dev.Fragment, dev.Key, dev.Added)
	}
	b = binary.AppendUvarint(b, uint64(len(d.Revoked)))
	for _, r := range d.Revoked {
		b = appendEntry(b, r.Fragment, r.Key, r.RevokedAt)
	}
	return b
}

func appendEntry(b []byte, fragment string, key ed25519.PublicKey, t uint64) []byte {
	b = append(b, byte(len(fragment)))
	b = append(b, fragment...)
	b = append(b, key...)
	return binary.BigEndian.AppendUint64(b, t)
}

// ParseAgentDocument decodes and validates an encoded document and checks
// that the root key it names signed it. Errors wrap ErrAgentDocument, and
// also ErrAgentSignature when the signature is what fails. It does not
// decide whether the document may replace one already held; that is
// CheckSuccessor.
func ParseAgentDocument(b []byte) (*AgentDocument, error) {
	if len(b) > MaxAgentDocumentSize {
		return nil, fmt.Errorf("identity: %w: %d bytes, max %d", ErrAgentDocument, len(b), MaxAgentDocumentSize)
	}
	if len(b) < agentMinSize {
		return nil, fmt.Errorf("identity: %w: %d bytes, shorter than the smallest document (%d)", ErrAgentDocument, len(b), agentMinSize)
	}
	if b[0] != AgentDocumentVersion {
		return nil, fmt.Errorf("identity: %w: encoding version %d, want %d", ErrAgentDocument, b[0], AgentDocumentVersion)
	}
	body, sig := b[:len(b)-ed25519.SignatureSize], b[len(b)-ed25519.SignatureSize:]
	// The signature is checked before the body is decoded, so nothing but
	// the fixed-offset root key is read from a document the root did not sign.
	root := ed25519.PublicKey(body[1 : 1+ed25519.PublicKeySize])
	msg := make([]byte, 0, len(agentDocumentDomain)+len(body))
	msg = append(msg, agentDocumentDomain...)
	msg = append(msg, body...)
	if !ed25519.Verify(root, msg, sig) {
		return nil, fmt.Errorf("identity: %w: %w for root %s", ErrAgentDocument, ErrAgentSignature, DIDKey(root))
	}
	d, err := decodeAgentBody(body)
	if err != nil {
		return nil, fmt.Errorf("identity: %w of %s: %s", ErrAgentDocument, DIDKey(root), err)
	}
	return d, nil
}

// decodeAgentBody decodes and validates what appendBody writes. It accepts
// exactly one encoding per document: anything appendBody would not write
// is an error.
func decodeAgentBody(body []byte) (*AgentDocument, error) {
	r := agentReader{b: body}
	enc, err := r.take(1, "encoding version")
	if err != nil {
		return nil, err
	}
	if enc[0] != AgentDocumentVersion {
		return nil, fmt.Errorf("encoding version %d, want %d", enc[0], AgentDocumentVersion)
	}
	root, err := r.take(ed25519.PublicKeySize, "root key")
	if err != nil {
		return nil, err
	}
	d := &AgentDocument{Root: bytes.Clone(root)}
	if d.Version, err = r.uint64("version"); err != nil {
		return nil, err
	}
	if d.Issued, err = r.uint64("issue time"); err != nil {
		return nil, err
	}

	n, err := r.count("device", MaxAgentDevices)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		d.Devices = make([]DeviceKey, n)
	}
	for i := range d.Devices {
		dev := &d.Devices[i]
		if dev.Fragment, dev.Key, dev.Added, err = r.entry("device", i); err != nil {
			return nil, err
		}
	}

	if n, err = r.count("revoked key", MaxAgentRevoked); err != nil {
		return nil, err
	}
	if n > 0 {
		d.Revoked = make([]RevokedKey, n)
	}
	for i := range d.Revoked {
		rk := &d.Revoked[i]
		if rk.Fragment, rk.Key, rk.RevokedAt, err = r.entry("revoked key", i); err != nil {
			return nil, err
		}
	}

	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the revoked keys", len(r.b))
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// agentReader consumes an encoded document from the front.
type agentReader struct {
	b []byte
}

func (r *agentReader) take(n int, what string) ([]byte, error) {
	if len(r.b) < n {
		return nil, fmt.Errorf("truncated in %s: need %d bytes, %d left", what, n, len(r.b))
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p, nil
}

func (r *agentReader) uint64(what string) (uint64, error) {
	p, err := r.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(p), nil
}

// count reads the length of a list of what and checks it against max and
// against the bytes left, so the caller can allocate the list.
func (r *agentReader) count(what string, max int) (int, error) {
	// FromUvarint refuses non-minimal encodings, keeping the count canonical.
	v, n, err := varint.FromUvarint(r.b)
	if err != nil {
		return 0, fmt.Errorf("%s count: %v", what, err)
	}
	r.b = r.b[n:]
	if v > uint64(max) {
		return 0, fmt.Errorf("%d %ss, max %d", v, what, max)
	}
	if need := int(v) * agentEntryMinSize; need > len(r.b) {
		return 0, fmt.Errorf("%d %ss need at least %d bytes, %d left", v, what, need, len(r.b))
	}
	return int(v), nil
}

// entry reads one device or revoked entry; t is Added or RevokedAt.
func (r *agentReader) entry(what string, i int) (fragment string, key ed25519.PublicKey, t uint64, err error) {
	l, err := r.take(1, what+" fragment length")
	if err != nil {
		return "", nil, 0, fmt.Errorf("%s %d: %v", what, i, err)
	}
	if l[0] == 0 || int(l[0]) > maxFragmentLen {
		return "", nil, 0, fmt.Errorf("%s %d: fragment length %d, want 1..%d", what, i, l[0], maxFragmentLen)
	}
	f, err := r.take(int(l[0]), what+" fragment")
	if err != nil {
		return "", nil, 0, fmt.Errorf("%s %d: %v", what, i, err)
	}
	k, err := r.take(ed25519.PublicKeySize, what+" key")
	if err != nil {
		return "", nil, 0, fmt.Errorf("%s %d: %v", what, i, err)
	}
	if t, err = r.uint64(what + " time"); err != nil {
		return "", nil, 0, fmt.Errorf("%s %d: %v", what, i, err)
	}
	// Copied so the document does not pin or alias the caller's buffer.
	return string(f), bytes.Clone(k), t, nil
}

// CheckSuccessor checks that next may replace d, the document held: it must
// have the same root (else ErrOtherAgent), a higher version (else
// ErrStaleDocument: a replayed or old document), and keep every revocation
// in d with a RevokedAt no later than before (else ErrAgentDocument).
// Un-revoking a key, or postponing its revocation, would re-validate entries
// that verifiers have already refused. next must be valid.
func (d *AgentDocument) CheckSuccessor(next *AgentDocument) error {
	if next == nil {
		return fmt.Errorf("identity: %w: no successor document", ErrAgentDocument)
	}
	if !bytes.Equal(d.Root, next.Root) {
		return fmt.Errorf("identity: agent document of %s, held document is of %s: %w",
			didOf(next.Root), didOf(d.Root), ErrOtherAgent)
	}
	if next.Version <= d.Version {
		what := "replayed or old agent document"
		if next.Version == d.Version && !bytes.Equal(next.appendBody(nil), d.appendBody(nil)) {
			// Two different documents signed with one version: the root key
			// signed both, so it is worth telling apart from a plain replay.
			what = "conflicting agent document with the same version as the one held; " + what
		}
		return fmt.Errorf("identity: %s: %s: version %d, held version %d: %w",
			didOf(d.Root), what, next.Version, d.Version, ErrStaleDocument)
	}
	if err := next.Validate(); err != nil {
		return err
	}
	for _, r := range d.Revoked {
		nr, ok := next.revoked(r.Key)
		switch {
		case !ok:
			return fmt.Errorf("identity: %w: version %d un-revokes %s#%s, revoked at %s in version %d",
				ErrAgentDocument, next.Version, didOf(d.Root), r.Fragment, formatMicros(r.RevokedAt), d.Version)
		case nr.RevokedAt > r.RevokedAt:
			return fmt.Errorf("identity: %w: version %d moves the revocation of %s#%s later, from %s to %s",
				ErrAgentDocument, next.Version, didOf(d.Root), r.Fragment, formatMicros(r.RevokedAt), formatMicros(nr.RevokedAt))
		}
	}
	return nil
}

func compareDeviceKey(dev DeviceKey, key ed25519.PublicKey) int { return bytes.Compare(dev.Key, key) }

func compareRevokedKey(r RevokedKey, key ed25519.PublicKey) int { return bytes.Compare(r.Key, key) }

// unixMicros converts now to the document's time unit. Times before 1970
// become 0 rather than wrapping around to the far future.
func unixMicros(now time.Time) uint64 {
	us := now.UnixMicro()
	if us < 0 {
		return 0
	}
	return uint64(us)
}

// formatMicros renders a document time for error messages (RFC 3339, UTC).
func formatMicros(us uint64) string {
	if us > math.MaxInt64 {
		return fmt.Sprintf("%dµs after the Unix epoch", us)
	}
	return time.UnixMicro(int64(us)).UTC().Format(time.RFC3339Nano)
}

// didOf is DIDKey for error messages about keys that may be malformed: it
// never panics.
func didOf(key []byte) string {
	if len(key) != ed25519.PublicKeySize {
		return fmt.Sprintf("(%d-byte key)", len(key))
	}
	return DIDKey(key)
}
