// Command ociimage writes a single-layer OCI image archive around one static
// binary, with no base image and no registry: the e2e cluster imports it with
// `ctr images import`. The layer holds the binary, a passwd and group file for
// the nonroot user 65532, its home and a world-writable /tmp — the same root
// filesystem as the Dockerfile's scratch stage.
//
//	go run ./hack/e2e/ociimage -binary ./seedfleet -path /seedfleet \
//	    -name docker.io/library/seedfleet:e2e -o seedfleet.tar
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"time"
)

const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// The nonroot user of the Dockerfile's final stage.
const nonrootUID = 65532

type options struct {
	binary string // file to put in the image
	path   string // where it goes, also the entrypoint
	name   string // full image reference, e.g. docker.io/library/seedfleet:e2e
	out    string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "static binary to put in the image (required)")
	flag.StringVar(&o.path, "path", "", "absolute path of the binary in the image, also the entrypoint (required)")
	flag.StringVar(&o.name, "name", "", "image reference with a tag, e.g. docker.io/library/seedfleet:e2e (required)")
	flag.StringVar(&o.out, "o", "", "archive to write (required)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.binary == "" || o.path == "" || o.name == "" || o.out == "" {
		return errors.New("-binary, -path, -name and -o are all required")
	}
	if !path.IsAbs(o.path) || path.Clean(o.path) != o.path || o.path == "/" {
		return fmt.Errorf("-path %q: want a clean absolute file path such as /seedfleet", o.path)
	}
	tag, err := tagOf(o.name)
	if err != nil {
		return err
	}
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return err
	}
	f, err := os.Create(o.out)
	if err != nil {
		return err
	}
	if err := write(f, o, tag, bin); err != nil {
		f.Close()
		os.Remove(o.out)
		return err
	}
	return f.Close()
}

// tagOf returns the tag of a reference, which must have one: an untagged
// name would mean :latest and a pull policy of Always.
func tagOf(name string) (string, error) {
	slash := strings.LastIndex(name, "/")
	colon := strings.LastIndex(name, ":")
	if colon <= slash || colon == len(name)-1 || strings.Contains(name, "@") {
		return "", fmt.Errorf("-name %q: want a reference with a tag, e.g. docker.io/library/seedfleet:e2e", name)
	}
	return name[colon+1:], nil
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

func describe(media string, b []byte) descriptor {
	sum := sha256.Sum256(b)
	return descriptor{MediaType: media, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b))}
}

// write emits an OCI image layout as a tar: oci-layout, index.json and the
// blobs (layer, config, manifest) under blobs/sha256/.
func write(w io.Writer, o options, tag string, bin []byte) error {
	layer, err := rootfs(o.path, bin)
	if err != nil {
		return err
	}
	layerDesc := describe(mediaLayer, layer)
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC(),
		"config": map[string]any{
			"Entrypoint": []string{o.path},
			"User":       fmt.Sprintf("%d:%d", nonrootUID, nonrootUID),
			"Env":        []string{"HOME=/home/nonroot"},
			"WorkingDir": "/home/nonroot",
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
	})
	if err != nil {
		return err
	}
	configDesc := describe(mediaConfig, config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        configDesc,
		"layers":        []descriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	manifestDesc := describe(mediaManifest, manifest)
	manifestDesc.Annotations = map[string]string{
		"io.containerd.image.name":          o.name,
		"org.opencontainers.image.ref.name": tag,
	}
	manifestDesc.Platform = &platform{Architecture: runtime.GOARCH, OS: "linux"}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaIndex,
		"manifests":     []descriptor{manifestDesc},
	})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(layerDesc), layer},
		{blobPath(configDesc), config},
		{blobPath(manifestDesc), manifest},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := writeFile(tw, &tar.Header{Name: f.name, Mode: 0o644}, f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func blobPath(d descriptor) string {
	return "blobs/sha256/" + strings.TrimPrefix(d.Digest, "sha256:")
}

// rootfs is the image's one layer, uncompressed (its digest is its diff ID).
func rootfs(binPath string, bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid})
	}
	steps := []error{
		dir("etc", 0o755, 0),
		writeFile(tw, &tar.Header{Name: "etc/passwd", Mode: 0o644},
			fmt.Appendf(nil, "nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonrootUID, nonrootUID)),
		writeFile(tw, &tar.Header{Name: "etc/group", Mode: 0o644}, fmt.Appendf(nil, "nonroot:x:%d:\n", nonrootUID)),
		dir("home", 0o755, 0),
		dir("home/nonroot", 0o700, nonrootUID),
		dir("tmp", 0o1777, 0),
	}
	// Parents of the binary (e.g. /usr/local/bin) that the steps above lack.
	parent := path.Dir(binPath)
	var parents []string
	for p := parent; p != "/"; p = path.Dir(p) {
		parents = append([]string{p}, parents...)
	}
	for _, p := range parents {
		if p != "/etc" && p != "/home" && p != "/tmp" && p != "/home/nonroot" {
			steps = append(steps, dir(strings.TrimPrefix(p, "/"), 0o755, 0))
		}
	}
	steps = append(steps, writeFile(tw, &tar.Header{Name: strings.TrimPrefix(binPath, "/"), Mode: 0o755}, bin), tw.Close())
	if err := errors.Join(steps...); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeFile(tw *tar.Writer, h *tar.Header, data []byte) error {
	h.Typeflag = tar.TypeReg
	h.Size = int64(len(data))
	h.ModTime = time.Unix(0, 0)
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
