package blobs

import (
	"bytes"
	"errors"
	"testing"
)

func TestCollectionEncoding(t *testing.T) {
	c := Collection{{Name: "b/photo.jpg", Hash: [32]byte{2}, Size: 5}, {Name: "a.txt", Hash: [32]byte{1}, Size: 0}}
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCollection(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a.txt" || got[1].Name != "b/photo.jpg" || got[1].Hash != [32]byte{2} || got[1].Size != 5 {
		t.Fatalf("round trip: %+v", got)
	}
	// Sorting makes the encoding independent of the input order.
	b2, _ := Collection{c[1], c[0]}.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Fatal("encoding depends on member order")
	}
	for _, name := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a/", ".", "..", "a\\b", "a\x00b"} {
		if _, err := (Collection{{Name: name}}).MarshalBinary(); !errors.Is(err, ErrBadCollection) {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := (Collection{{Name: "x"}, {Name: "x"}}).MarshalBinary(); !errors.Is(err, ErrBadCollection) {
		t.Error("duplicate name accepted")
	}
	for name, bad := range map[string][]byte{
		"truncated": b[:len(b)-1],
		"trailing":  append(bytes.Clone(b), 0),
		"magic":     append([]byte("nope"), b[4:]...),
		"count":     append(bytes.Clone(b[:len(collectionMagic)]), 0xff, 0xff, 0xff, 0x7f),
	} {
		if _, err := ParseCollection(bad); !errors.Is(err, ErrBadCollection) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
	// Unsorted on the wire is refused (the canonical form is sorted).
	swapped := bytes.Clone(b)
	i, j := bytes.Index(swapped, []byte("a.txt")), bytes.Index(swapped, []byte("b/photo.jpg"))
	if i < 0 || j < 0 {
		t.Fatal("names not found in encoding")
	}
	unsorted := append(bytes.Clone(b[:len(collectionMagic)+1]), b[j-1:]...)
	unsorted = append(unsorted, b[i-1:j-1]...)
	if _, err := ParseCollection(unsorted); !errors.Is(err, ErrBadCollection) {
		t.Errorf("unsorted collection accepted: %v", err)
	}
}

func TestFetchCollection(t *testing.T) {
	p := newPeers(t)
	// A member over batchBlobMax is fetched alone, the others pipelined.
	files := map[string][]byte{"notes.txt": []byte("hello"), "photos/cat.jpg": randBytes(1, 200<<10), "photos/dog.jpg": randBytes(2, 3*GroupSize+1),
		"video.mp4": randBytes(3, batchBlobMax+GroupSize+5)}
	var c Collection
	for name, data := range files {
		h, err := p.serverStore.AddBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		c = append(c, CollectionEntry{Name: name, Hash: h, Size: uint64(len(data))})
	}
	ch, size, err := p.serverStore.AddCollection(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var last FetchProgress
	got, st, err := p.client.FetchCollection(ctx, p.serverHost.ID(), ch, FetchOptions{Size: &size, ProgressEvery: -1, Progress: func(fp FetchProgress) { last = fp }})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || !st.Complete || st.MembersFetched != 4 {
		t.Fatalf("collection: %d members, %+v", len(got), st)
	}
	for _, e := range got {
		if data := exported(t, p.clientStore, e.Hash, 0, 0); !bytes.Equal(data, files[e.Name]) {
			t.Fatalf("member %s differs", e.Name)
		}
	}
	if last.Size != uint64(5+200<<10+3*GroupSize+1+batchBlobMax+GroupSize+5) || last.VerifiedBytes != last.Size || last.MembersDone != 4 || last.Members != 4 {
		t.Fatalf("progress ended at %+v", last)
	}
}
