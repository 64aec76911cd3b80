package cmd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// TestBarPrinterItems: a collection's progress line shows its bytes and its
// files; on a log (not a terminal) a line is printed at most every 2 s.
func TestBarPrinterItems(t *testing.T) {
	var buf bytes.Buffer
	p := newBarPrinter(&buf, "fetching")
	p.updateItems(512<<10, 1<<20, 12, 40, "files")
	if buf.Len() != 0 {
		t.Fatalf("a line before 2 s on a log: %q", buf.String())
	}
	p.last = time.Now().Add(-3 * time.Second)
	p.updateItems(512<<10, 1<<20, 12, 40, "files")
	line := buf.String()
	for _, want := range []string{"fetching [", " 50.0% ", "512.0 KiB / 1.0 MiB", "  12/40 files  ", "MiB/s\n"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	buf.Reset()
	p.last = time.Time{}
	p.update(1<<20, 1<<20)
	if strings.Contains(buf.String(), "files") || !strings.Contains(buf.String(), "100.0%") {
		t.Errorf("a single blob's line: %q", buf.String())
	}
}

// TestBlobGetCollection: `blob get` of a collection's ticket reports its
// files and bytes, writes the files, and a second run finds them all here;
// a fetch that cannot finish says how many files it has.
func TestBlobGetCollection(t *testing.T) {
	st, err := blobs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := p2ptest.NewHost(t, true)
	svc, err := blobs.NewService(h, st)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	files := map[string][]byte{}
	var c blobs.Collection
	for i := range 40 {
		name := fmt.Sprintf("photos/%02d.jpg", i)
		data := bytes.Repeat([]byte{byte(i), byte(i >> 8), 7}, 2000+i*700)
		files[name] = data
		hash, err := st.AddBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		c = append(c, blobs.CollectionEntry{Name: name, Hash: hash, Size: uint64(len(data))})
	}
	hash, size, err := st.AddCollection(c)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := ticket.NewBlobTicket(hash, size, ticket.FormatCollection, []peer.AddrInfo{{ID: h.ID(), Addrs: h.Addrs()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// One member the sender lacks: the fetch fails, saying what is here.
	missing := c[17]
	if err := st.Delete(missing.Hash); err != nil {
		t.Fatal(err)
	}
	home := newDeviceHome(t)
	out := filepath.Join(t.TempDir(), "album")
	_, errOut, code := run(t, ctx, "blob", "get", tk.String(), "--home", home, "-o", out)
	if code == 0 || !strings.Contains(errOut, "39 of 40 files (") || !strings.Contains(errOut, missing.Name) {
		t.Fatalf("exit %d, %q: want a failure naming %s and 39 of 40 files here", code, errOut, missing.Name)
	}
	if _, err := st.AddBytes(files[missing.Name]); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run(t, ctx, "blob", "get", tk.String(), "--home", home, "-o", out)
	if code != 0 || !strings.Contains(errOut, "fetched a collection of 40 files (") || !strings.Contains(errOut, "): 1 fetched, 39 already here") {
		t.Fatalf("resumed get: exit %d, %q", code, errOut)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes, %v", name, len(got), err)
		}
	}
	_, errOut, code = run(t, ctx, "blob", "get", tk.String(), "--home", home)
	if code != 0 || !strings.Contains(errOut, "0 fetched, 40 already here") {
		t.Fatalf("third get: exit %d, %q", code, errOut)
	}
}
