package config

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

// FuzzParse checks what every configuration file gets: Parse never panics,
// refuses with problems that are *FieldErrors wrapping ErrInvalid, and a
// file it accepts either validates or has problems each naming its field;
// the values with a fixed set of words are in their canonical spelling; and
// Marshal writes a file that Parse reads back to the same Config.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Example()))
	for _, c := range []Config{Default(), allChanged()} {
		data, err := c.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"---\nlogLevel: debug\n...\n",
		"dht: {mode: off}\nrelay: {mode: PUBLIC, advertisePrivateAddrs: true}\nlogLevel: WARN\n",
		"relay:\n  limits:\n    maxReservationsPerPeer: 1\n",
		"dataDir: 1\nfoo: 1\nlimits: {maxEntries: x, bar: 2}\nidleTimeout: later\n",
		"listen:\n  tcp:\n  quic: [null, 3, /ip4/0.0.0.0/udp/1/quic-v1]\nrelay:\n",
		"DataDir: x\nlisten: {websocket: []}\n",
		"a: &x [1, 2]\nb: *x\n",
		"- a\n- b\n",
		"logLevel: info\nlogLevel: debug\n",
		"dht: {protocolPrefix: /ipfs, mode: on}\n",
		"idleTimeout: 9223372037\ngcInterval: 1.5\nscrubInterval: \"1h\"\n",
		"limits: {maxEntries: 18446744073709551616, maxBytes: -1}\n",
		"hostedVaults: abc\nannounce: {a: 1}\nrendezvous: [1]\n",
		"dataDir: \"\\x7f\\u0085\\ufeff\"\nidentityFile: '\u00a0'\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			checkProblems(t, "Parse", err, false)
			return
		}
		if err := cfg.Validate(); err != nil {
			checkProblems(t, "Validate", err, true)
		}
		if !canonicalOrUnknown(cfg.DHT.Mode, DHTModes()) || !canonicalOrUnknown(cfg.Relay.Mode, RelayModes()) ||
			!canonicalOrUnknown(cfg.LogLevel, LogLevels()) {
			t.Fatalf("a value is not in its canonical case: %q %q %q", cfg.DHT.Mode, cfg.Relay.Mode, cfg.LogLevel)
		}
		out, err := cfg.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v", err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal()) refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, cfg) {
			t.Fatalf("Parse(Marshal()) differs:\n got %+v\nwant %+v\n%s", back, cfg, out)
		}
	})
}

// checkProblems wants err to wrap ErrInvalid and every problem in it to be a
// *FieldError (naming a field, if named).
func checkProblems(t *testing.T, what string, err error, named bool) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("%s: error does not wrap ErrInvalid: %v", what, err)
	}
	for _, p := range problems(err) {
		var fe *FieldError
		if !errors.As(p, &fe) {
			t.Fatalf("%s: problem %q is not a *FieldError", what, p)
		}
		if named && fe.Field == "" {
			t.Fatalf("%s: problem %q names no field", what, p)
		}
	}
}

// canonicalOrUnknown reports whether v is one of values, or equal to none of
// them in any case (left for Validate to refuse).
func canonicalOrUnknown[T ~string](v T, values []T) bool {
	return slices.Contains(values, v) || canonical(string(v), values) == v
}
