package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readTar returns a tar's regular files and every entry's header.
func readTar(t *testing.T, b []byte) (map[string][]byte, map[string]*tar.Header) {
	t.Helper()
	files, headers := map[string][]byte{}, map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, headers
		}
		if err != nil {
			t.Fatal(err)
		}
		headers[h.Name] = h
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = data
		}
	}
}

// blob reads a descriptor's blob from the layout and checks its digest and size.
func blob(t *testing.T, files map[string][]byte, d descriptor) []byte {
	t.Helper()
	b, ok := files[blobPath(d)]
	if !ok {
		t.Fatalf("blob %s missing from the archive", d.Digest)
	}
	sum := sha256.Sum256(b)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != d.Digest || int64(len(b)) != d.Size {
		t.Fatalf("blob %s: digest %s size %d, descriptor says size %d", d.Digest, got, len(b), d.Size)
	}
	return b
}

func TestArchiveIsAValidLayout(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	content := []byte("#!not really an ELF\n")
	if err := os.WriteFile(bin, content, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image.tar")
	if err := run(options{binary: bin, path: "/usr/local/bin/prog", name: "docker.io/library/prog:e2e", out: out}); err != nil {
		t.Fatal(err)
	}
	archive, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := readTar(t, archive)
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout = %q", files["oci-layout"])
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v, %d manifests", err, len(index.Manifests))
	}
	md := index.Manifests[0]
	if md.Annotations["io.containerd.image.name"] != "docker.io/library/prog:e2e" || md.Annotations["org.opencontainers.image.ref.name"] != "e2e" {
		t.Fatalf("annotations = %v", md.Annotations)
	}
	var manifest struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := json.Unmarshal(blob(t, files, md), &manifest); err != nil || len(manifest.Layers) != 1 {
		t.Fatalf("manifest: %v, %d layers", err, len(manifest.Layers))
	}
	var config struct {
		Config struct {
			Entrypoint []string
			User       string
		} `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(blob(t, files, manifest.Config), &config); err != nil {
		t.Fatal(err)
	}
	if strings.Join(config.Config.Entrypoint, " ") != "/usr/local/bin/prog" || config.Config.User != "65532:65532" {
		t.Fatalf("config = %+v", config.Config)
	}
	if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != manifest.Layers[0].Digest {
		t.Fatalf("diff IDs %v do not name the uncompressed layer %s", config.RootFS.DiffIDs, manifest.Layers[0].Digest)
	}

	layer, headers := readTar(t, blob(t, files, manifest.Layers[0]))
	if !bytes.Equal(layer["usr/local/bin/prog"], content) || headers["usr/local/bin/prog"].Mode != 0o755 {
		t.Fatalf("binary missing or not executable in the layer: %v", headers["usr/local/bin/prog"])
	}
	for _, d := range []string{"usr/", "usr/local/", "usr/local/bin/", "tmp/", "home/nonroot/"} {
		if h := headers[d]; h == nil || h.Typeflag != tar.TypeDir {
			t.Fatalf("directory %s missing from the layer", d)
		}
	}
	if headers["tmp/"].Mode != 0o1777 || headers["home/nonroot/"].Uid != nonrootUID {
		t.Fatalf("/tmp mode %o, home owner %d", headers["tmp/"].Mode, headers["home/nonroot/"].Uid)
	}
	if !strings.Contains(string(layer["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Fatalf("passwd = %q", layer["etc/passwd"])
	}
}

func TestRefusesBadArguments(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	if err := os.WriteFile(bin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image.tar")
	for _, o := range []options{
		{binary: bin, path: "/prog", name: "docker.io/library/prog", out: out},          // no tag: would mean :latest
		{binary: bin, path: "/prog", name: "localhost:5000/prog", out: out},             // a port is not a tag
		{binary: bin, path: "/prog", name: "prog@sha256:abcd", out: out},                // digests are not tags
		{binary: bin, path: "prog", name: "prog:e2e", out: out},                         // relative
		{binary: bin, path: "/a/../prog", name: "prog:e2e", out: out},                   // not clean
		{binary: filepath.Join(dir, "missing"), path: "/prog", name: "p:e2e", out: out}, // no such binary
	} {
		if err := run(o); err == nil {
			t.Errorf("run(%+v) succeeded", o)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("run(%+v) left %s behind", o, out)
		}
	}
}
