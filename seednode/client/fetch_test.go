package client

import (
	"bytes"
	"context"
	"testing"

	"github.com/seedfleet/seedfleet/seednode/blobs"
)

// TestFetchBlobHereNeedsNoPeer: a blob complete on the device is "fetched"
// without any peer (get --out exports it), and one that is not says there
// is no peer to fetch it from.
func TestFetchBlobHereNeedsNoPeer(t *testing.T) {
	h, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ns, err := h.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("photo "), 10_000)
	e, err := h.Put(ns, []byte("photo"), value)
	if err != nil {
		t.Fatal(err)
	}
	size := e.Size
	st, err := h.FetchBlob(context.Background(), nil, e.Hash, blobs.FetchOptions{Size: &size, MaxSize: size})
	if err != nil || !st.AlreadyComplete || st.Size != size {
		t.Fatalf("a blob held here: %+v, %v", st, err)
	}
	if err := h.Blobs.Delete(e.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := h.FetchBlob(context.Background(), nil, e.Hash, blobs.FetchOptions{Size: &size, MaxSize: size}); err == nil {
		t.Fatal("a blob not held here was fetched from no peer")
	}
}
