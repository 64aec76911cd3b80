package config

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// testKey is a deterministic Ed25519 key; n varies it.
func testKey(n byte) ed25519.PublicKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = n
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}

func testNamespace(n byte) string { return vault.NamespaceID(testKey(n)).String() }

func testDID(n byte) string { return identity.DIDKey(testKey(n)) }

func testPeerID(t *testing.T, n byte) string {
	t.Helper()
	pk, err := crypto.UnmarshalEd25519PublicKey(testKey(n))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seed.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// problems splits an errors.Join result into its parts.
func problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if _, isField := err.(*FieldError); !isField {
			var out []error
			for _, e := range j.Unwrap() {
				out = append(out, problems(e)...)
			}
			return out
		}
	}
	return []error{err}
}

// fields lists the Field of every problem in err.
func fields(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	for _, p := range problems(err) {
		var fe *FieldError
		if !errors.As(p, &fe) {
			t.Fatalf("problem %q is not a *FieldError", p)
		}
		out = append(out, fe.Field)
	}
	return out
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// leafPaths lists every setting of Config as its path in the file.
func leafPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		if name == "" {
			continue
		}
		p := joinPath(prefix, name)
		if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(unmarshalerType) {
			out = append(out, leafPaths(f.Type, p)...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

// leafValue returns the value at a leafPaths path.
func leafValue(v reflect.Value, path string) reflect.Value {
	for _, part := range strings.Split(path, ".") {
		t := v.Type()
		for i := range t.NumField() {
			if jsonName(t.Field(i)) == part {
				v = v.Field(i)
				break
			}
		}
	}
	return v
}

func TestLeafPathsSeesEverything(t *testing.T) {
	// The Example and round-trip tests rely on leafPaths seeing nested settings.
	paths := leafPaths(reflect.TypeFor[Config](), "")
	for _, want := range []string{"dataDir", "listen.webSocket", "relay.limits.circuitBytes", "dht.reprovideInterval", "logLevel"} {
		if !slices.Contains(paths, want) {
			t.Errorf("leafPaths misses %s: %v", want, paths)
		}
	}
	if len(paths) < 36 {
		t.Errorf("leafPaths found only %d settings: %v", len(paths), paths)
	}
}
