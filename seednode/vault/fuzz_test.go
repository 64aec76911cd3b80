package vault

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// Fuzz targets for everything that decodes bytes from a peer or from disk.
// Run one with, for example:
//
//	go test ./seednode/vault -run='^$' -fuzz='^FuzzDecodeWireItems$' -fuzztime=25s
//
// Inputs that once failed, and a few hand-picked edge cases, are kept in
// testdata/fuzz/<FuzzName>/ and run as regular tests.

// fuzzEntries returns valid signed entries of both consent kinds.
func fuzzEntries(t testing.TB) []SignedEntry {
	f := newEntryFixture()
	return []SignedEntry{
		f.capSigned(t, f.entry("docs/a.txt", "hello", 1_700_000_000_000_000), 0),
		f.capSigned(t, f.entry("\x00", "", 1), 1<<60),
		f.nsSigned(t, f.entry("docs/b.txt", "world", 1_700_000_000_000_001)),
		f.nsSigned(t, f.entry(strings.Repeat("k", MaxKeyLen), "x", ^uint64(0))),
		f.capSigned(t, Entry{Namespace: f.ns, Key: []byte("docs/"), Author: f.author, Timestamp: 1_700_000_000_000_002}, 0),
	}
}

func FuzzUnmarshalSignedEntry(f *testing.F) {
	for _, se := range fuzzEntries(f) {
		b := marshal(f, &se)
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), 0))
	}
	f.Add([]byte{})
	f.Add([]byte{EncodingVersion})
	// A value that claims the tombstone's zero hash, and a tombstone that
	// claims a value.
	tomb := marshal(f, &fuzzEntries(f)[4])
	f.Add(append([]byte{EncodingVersion}, tomb[1:]...))
	val := marshal(f, &fuzzEntries(f)[0])
	f.Add(append([]byte{TombstoneVersion}, val[1:]...))
	v := NewVerifier(fixedClock)
	f.Fuzz(func(t *testing.T, data []byte) {
		se, err := UnmarshalSignedEntry(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrKeyTooLong) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrKeyTooLong", err)
			}
			return
		}
		if again := se.AppendBinary(nil); !bytes.Equal(again, data) {
			t.Fatalf("accepted encoding does not re-marshal to itself:\n  in %x\n out %x", data, again)
		}
		if len(se.Key) == 0 || len(se.Key) > MaxKeyLen {
			t.Fatalf("accepted a key of %d bytes", len(se.Key))
		}
		if se.Consent.Kind != ConsentNamespaceSig && se.Consent.Kind != ConsentCapability {
			t.Fatalf("accepted consent kind %d", se.Consent.Kind)
		}
		if (data[0] == TombstoneVersion) != se.IsTombstone() {
			t.Fatalf("version %d decoded with hash %s and size %d", data[0], se.Hash.Short(), se.Size)
		}
		if len(data) > 0 && &se.Key[0] == &data[entryHeaderLen] {
			t.Fatal("decoded key aliases the input")
		}
		// Whatever decodes can be verified without panicking.
		_ = v.Verify(&se, Limits{})
	})
}

func FuzzDecodeStoredItem(f *testing.F) {
	for _, se := range fuzzEntries(f) {
		fp := se.Fingerprint()
		f.Add(appendStoredItem(nil, &fp, &Item{Entry: se})[idLen:])
		f.Add(appendStoredItem(nil, &fp, &Item{Entry: se, Content: []byte("hello")})[idLen:])
	}
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, raw []byte) {
		it, err := decodeStoredItem(raw)
		if err != nil {
			return
		}
		if it.Content != nil && len(it.Content) == 0 {
			t.Fatal("empty content decoded as non-nil")
		}
		var fp Hash
		if again := appendStoredItem(nil, &fp, &it)[idLen:]; !bytes.Equal(again, raw) {
			t.Fatalf("accepted record does not re-encode to itself:\n  in %x\n out %x", raw, again)
		}
	})
}

// wireFixture is the author table the wire-item fuzzer decodes against: one
// capability row and one namespace-signature row.
type wireFixture struct {
	ns     NamespaceID
	table  []authorRef
	items  []Item // valid items, one per row and content variant
	rowsOf func(it *Item) int
}

func newWireFixture(t testing.TB) *wireFixture {
	f := newEntryFixture()
	g := &entryFixture{nsKey: f.nsKey, ns: f.ns, authorKey: fixedKey(5)}
	g.author = AuthorID(g.authorKey.Public().(ed25519.PublicKey))
	capItem := Item{Entry: f.capSigned(t, f.entry("docs/a.txt", "hello", 1_700_000_000_000_000), 1<<62), Content: []byte("hello")}
	blob := Item{Entry: f.capSigned(t, Entry{Namespace: f.ns, Key: []byte("blob"), Author: f.author, Size: 1 << 40, Timestamp: 7}, 1<<62)}
	empty := Item{Entry: f.capSigned(t, f.entry("empty", "", 8), 1<<62), Content: []byte{}}
	nsItem := Item{Entry: g.nsSigned(t, g.entry("docs/b.txt", "world", 1_700_000_000_000_001)), Content: []byte("world")}
	tomb := Item{Entry: f.capSigned(t, Entry{Namespace: f.ns, Key: []byte("docs/"), Author: f.author, Timestamp: 9}, 1<<62)}
	wf := &wireFixture{ns: f.ns, items: []Item{capItem, blob, empty, nsItem, tomb}}
	wf.table = []authorRef{refOf(&capItem.Entry), refOf(&nsItem.Entry)}
	wf.rowsOf = func(it *Item) int {
		ref := refOf(&it.Entry)
		for i := range wf.table {
			if wf.table[i] == ref {
				return i
			}
		}
		return -1
	}
	return wf
}

func (wf *wireFixture) frame(items ...Item) []byte {
	p := binary.AppendUvarint(nil, uint64(len(items)))
	for i := range items {
		p = appendWireItem(p, wf.rowsOf(&items[i]), &items[i])
	}
	return p
}

func FuzzDecodeWireItems(f *testing.F) {
	wf := newWireFixture(f)
	for i := range wf.items {
		f.Add(wf.frame(wf.items[i]))
	}
	f.Add(wf.frame(wf.items...))
	f.Add(wf.frame())
	f.Add([]byte{1, 2}) // row 2 of 2
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := decodeWireItems(data, wf.ns, wf.table, nil)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrContentInvalid) {
				t.Fatalf("error %v is neither ErrProtocol nor ErrContentInvalid", err)
			}
			return
		}
		for i := range items {
			it := &items[i]
			e := &it.Entry
			if e.Namespace != wf.ns || wf.rowsOf(it) < 0 {
				t.Fatalf("item %d: namespace or author row not from the table", i)
			}
			if len(e.Key) == 0 || len(e.Key) > MaxKeyLen {
				t.Fatalf("item %d: key of %d bytes", i, len(e.Key))
			}
			if e.IsTombstone() && it.Content != nil {
				t.Fatalf("item %d: a tombstone with a value", i)
			}
			if it.Content != nil && (len(it.Content) > MaxInlineValue || uint64(len(it.Content)) != e.Size || HashOf(it.Content) != e.Hash) {
				t.Fatalf("item %d: inline value does not match the entry", i)
			}
		}
		again := wf.frame(items...)
		if len(again) > len(data) {
			t.Fatalf("re-encoding is longer than the input (%d > %d)", len(again), len(data))
		}
		items2, err := decodeWireItems(again, wf.ns, wf.table, nil)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if len(items2) != len(items) {
			t.Fatalf("%d items after re-encoding, %d before", len(items2), len(items))
		}
		for i := range items {
			if !sameItem(&items[i], &items2[i]) || (items[i].Content == nil) != (items2[i].Content == nil) {
				t.Fatalf("item %d changed across re-encoding", i)
			}
		}
	})
}

func FuzzDecodeQuestion(f *testing.F) {
	var fps [fanout]wireFP
	for i := range fps {
		fps[i] = wireFP{byte(i), 1, 2, 3, 4, 5, 6, byte(255 - i)}
	}
	deep := nodeOf(&Hash{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, 0x44, 0x55}, maxDepth)
	qs := []question{
		{kind: qSplit, node: Root, fps: fps},
		{kind: qSplit, node: deep.Child(0), fps: fps},
		{kind: qIDList, node: Root.Child(3).Child(15), ids: []itemID{{1}, {2, 3}}},
		{kind: qIDList, node: Root},
		{kind: qWant, node: deep, ids: []itemID{{9, 9, 9, 9, 9, 9, 9, 9}}},
		{kind: qWantAll, node: Root.Child(7)},
	}
	for _, q := range qs {
		typ, p := q.frame()
		f.Add(typ-frameSplit, p)
	}
	f.Fuzz(func(t *testing.T, sel byte, p []byte) {
		typ := frameSplit + sel%4
		q, err := decodeQuestion(typ, p)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			return
		}
		if q.node.Depth > maxDepth {
			t.Fatalf("accepted depth %d", q.node.Depth)
		}
		gotTyp, again := q.frame()
		if gotTyp != typ {
			t.Fatalf("frame type %d re-encodes as %d", typ, gotTyp)
		}
		if !bytes.Equal(again, p) {
			t.Fatalf("accepted question does not re-encode to itself:\n  in %x\n out %x", p, again)
		}
	})
}

func FuzzDecodeAuthorRef(f *testing.F) {
	wf := newWireFixture(f)
	for i := range wf.table {
		f.Add(appendAuthorRef(nil, &wf.table[i]))
	}
	f.Add(append(make([]byte, idLen), 3))
	f.Add(append(make([]byte, idLen), 4))
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeAuthorRef(p)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			return
		}
		if r.kind != ConsentNamespaceSig && r.kind != ConsentCapability && r.kind != ConsentAgent {
			t.Fatalf("accepted consent kind %d", r.kind)
		}
		if r.kind != ConsentCapability && (r.notAfter != 0 || r.capSig != [sigLen]byte{}) {
			t.Fatal("a namespace-signature row carries capability fields")
		}
		if again := appendAuthorRef(nil, &r); !bytes.Equal(again, p) {
			t.Fatalf("accepted author frame does not re-encode to itself:\n  in %x\n out %x", p, again)
		}
	})
}

func FuzzDecodeNode(f *testing.F) {
	h := Hash{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff}
	for _, d := range []int{0, 1, 2, 3, 4, 5, maxDepth - 1, maxDepth} {
		f.Add(appendNode(nil, nodeOf(&h, d)))
	}
	f.Add([]byte{maxDepth + 1})
	f.Add([]byte{3, 0xab, 0xcd})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, used, err := decodeNode(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			return
		}
		if used < 1 || used > len(b) || n.Depth > maxDepth {
			t.Fatalf("used %d of %d bytes, depth %d", used, len(b), n.Depth)
		}
		if again := appendNode(nil, n); !bytes.Equal(again, b[:used]) {
			t.Fatalf("node re-encodes as %x, input %x", again, b[:used])
		}
		if nodeOf(&n.Prefix, int(n.Depth)) != n {
			t.Fatal("prefix has bits beyond the node's depth")
		}
		if len(n.String()) != len("node[]")+int(n.Depth) {
			t.Fatalf("String %q", n.String())
		}
		lo, hi := n.prefixBounds()
		if !bytes.Equal(lo, n.Prefix[:n.prefixLen()]) || (hi != nil && bytes.Compare(lo, hi) >= 0) {
			t.Fatalf("bounds [%x, %x) of %s", lo, hi, n)
		}
		if n.Depth < maxDepth {
			for c := 0; c < fanout; c++ {
				ch := n.Child(c)
				clo, chi := ch.prefixBounds()
				if ch.Depth != n.Depth+1 || nibble(&ch.Prefix, int(n.Depth)) != byte(c) || nodeOf(&ch.Prefix, int(n.Depth)) != n {
					t.Fatalf("child %d of %s is %s", c, n, ch)
				}
				// Bounds are prefixes: compare them as zero-padded hashes.
				if bytes.Compare(padTo(clo, 32), padTo(lo, 32)) < 0 || (hi != nil && (chi == nil || bytes.Compare(padTo(chi, 32), padTo(hi, 32)) > 0)) {
					t.Fatalf("child %d bounds [%x, %x) outside [%x, %x)", c, clo, chi, lo, hi)
				}
			}
		}
		if n.Depth <= aggDepth && n.aggSuffix()>>16 != uint32(n.Depth) {
			t.Fatal("aggregate suffix does not start with the depth")
		}
	})
}

func padTo(b []byte, n int) []byte { return append(bytes.Clone(b), make([]byte, n-len(b))...) }

func FuzzFrameReader(f *testing.F) {
	var ok bytes.Buffer
	fw := frameWriter{w: bufio.NewWriter(&ok)}
	_ = fw.write(frameHello, make([]byte, helloLen-1))
	_ = fw.write(frameEndTurn, nil)
	_ = fw.write(frameItems, bytes.Repeat([]byte{7}, 300))
	_ = fw.flush()
	f.Add(ok.Bytes())
	f.Add(binary.AppendUvarint(nil, maxFrame))
	f.Add(binary.AppendUvarint(nil, maxFrame+1))
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := frameReader{r: bufio.NewReaderSize(bytes.NewReader(data), 16)}
		for frames := 0; ; frames++ {
			if frames > len(data) {
				t.Fatal("more frames than input bytes")
			}
			typ, p, err := fr.next()
			if err != nil {
				if err == io.EOF && fr.n != int64(len(data)) {
					t.Fatalf("EOF after %d of %d bytes", fr.n, len(data))
				}
				break
			}
			if len(p)+1 > maxFrame {
				t.Fatalf("frame of %d bytes returned", len(p)+1)
			}
			if fr.n > int64(len(data)) {
				t.Fatalf("counted %d bytes of %d", fr.n, len(data))
			}
			_ = typ
		}
		// The buffer is bounded by maxFrame (it grows as the body
		// arrives, never past the announced length).
		if cap(fr.buf) > maxFrame {
			t.Fatalf("reader holds a %d-byte buffer", cap(fr.buf))
		}
	})
}

// TestFrameRoundTrip writes frames of many sizes, up to the limit, and reads
// them back; a frame over the limit is refused before its body is read.
func TestFrameRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	sizes := []int{0, 1, 126, 127, 128, 16383, 16384, itemsFrameSize, 2*itemsFrameSize + 1, maxFrame - 1}
	var buf bytes.Buffer
	fw := frameWriter{w: bufio.NewWriter(&buf)}
	var payloads [][]byte
	for i, n := range sizes {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(rng.IntN(256))
		}
		payloads = append(payloads, p)
		if err := fw.write(byte(i+1), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.flush(); err != nil {
		t.Fatal(err)
	}
	if fw.n != int64(buf.Len()) {
		t.Fatalf("writer counted %d bytes, wrote %d", fw.n, buf.Len())
	}
	fr := frameReader{r: bufio.NewReader(bytes.NewReader(buf.Bytes()))}
	for i, want := range payloads {
		typ, p, err := fr.next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if typ != byte(i+1) || !bytes.Equal(p, want) {
			t.Fatalf("frame %d: type %d, %d bytes; want type %d, %d bytes", i, typ, len(p), i+1, len(want))
		}
	}
	if _, _, err := fr.next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	if fr.n != fw.n {
		t.Fatalf("reader counted %d bytes, writer %d", fr.n, fw.n)
	}

	t.Run("over the limit", func(t *testing.T) {
		for _, l := range []uint64{maxFrame + 1, 1 << 32, ^uint64(0)} {
			in := append(binary.AppendUvarint(nil, l), make([]byte, maxFrame+2)...)
			fr := frameReader{r: bufio.NewReader(bytes.NewReader(in))}
			if _, _, err := fr.next(); !errors.Is(err, ErrProtocol) {
				t.Fatalf("length %d: %v, want ErrProtocol", l, err)
			}
			if cap(fr.buf) != 0 {
				t.Fatalf("length %d: allocated %d bytes before refusing", l, cap(fr.buf))
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for _, in := range [][]byte{{5, 1, 2}, {0x80}, {0x80, 0x80}} {
			fr := frameReader{r: bufio.NewReader(bytes.NewReader(in))}
			if _, _, err := fr.next(); err == nil || err == io.EOF {
				t.Fatalf("%x: %v, want an unexpected-EOF error", in, err)
			}
		}
	})
}

// TestDecodersRefuse pins a few refusals the fuzzers rely on.
func TestDecodersRefuse(t *testing.T) {
	wf := newWireFixture(t)
	cases := []struct {
		name string
		err  func() error
	}{
		{"node deeper than maxDepth", func() error {
			_, _, err := decodeNode([]byte{maxDepth + 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
			return err
		}},
		{"node bits beyond depth", func() error { _, _, err := decodeNode([]byte{1, 0x18}); return err }},
		{"node truncated", func() error { _, _, err := decodeNode([]byte{4, 0x12}); return err }},
		{"split with 15 fingerprints", func() error {
			_, err := decodeQuestion(frameSplit, append([]byte{0}, make([]byte, 15*wireFPLen)...))
			return err
		}},
		{"want-all with trailing byte", func() error { _, err := decodeQuestion(frameWantAll, []byte{0, 0}); return err }},
		{"author ref truncated capability", func() error {
			_, err := decodeAuthorRef(append(make([]byte, idLen), byte(ConsentCapability), 0, 0))
			return err
		}},
		{"author ref trailing byte", func() error {
			_, err := decodeAuthorRef(append(appendAuthorRef(nil, &wf.table[1]), 0))
			return err
		}},
		{"item with empty key", func() error {
			_, err := decodeWireItems([]byte{1, 0, 0}, wf.ns, wf.table, nil)
			return err
		}},
		{"item with key over MaxKeyLen", func() error {
			p := binary.AppendUvarint([]byte{1, 0}, MaxKeyLen+1)
			_, err := decodeWireItems(append(p, make([]byte, MaxKeyLen+200)...), wf.ns, wf.table, nil)
			return err
		}},
		{"inline value over MaxInlineValue", func() error {
			it := wf.items[1] // a blob entry
			it.Content = make([]byte, MaxInlineValue+1)
			_, err := decodeWireItems(wf.frame(it), wf.ns, wf.table, nil)
			return err
		}},
		{"trailing bytes after items", func() error {
			_, err := decodeWireItems(append(wf.frame(wf.items[0]), 0), wf.ns, wf.table, nil)
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.err(); !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrContentInvalid) {
				t.Fatalf("err %v, want a protocol error", err)
			}
		})
	}
}
