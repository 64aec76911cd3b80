package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"
)

// The settings that take one of a few words (dht.mode, relay.mode, logLevel)
// are named string types whose values are CamelCase, as the SeedNode API's
// enums are. The file, the flags and the Parse functions below accept a value
// in any case and store it in its canonical spelling ("server" and "SERVER"
// become DHTServer), so a file written when the values were lower case still
// works. Validate wants the canonical spelling: code that sets a Config
// directly uses the constants, and the node compares with them.

// DHTMode is how the node takes part in the DHT.
type DHTMode string

const (
	// DHTServer answers DHT queries and stores records (seeds are servers).
	DHTServer DHTMode = "Server"
	// DHTClient queries the DHT but answers nothing.
	DHTClient DHTMode = "Client"
	// DHTOff runs no DHT at all.
	DHTOff DHTMode = "Off"
)

// DHTModes are the valid DHT modes.
func DHTModes() []DHTMode { return []DHTMode{DHTServer, DHTClient, DHTOff} }

// ParseDHTMode returns the DHT mode s names, in any case. Any other s is
// returned as it is, for Validate to refuse with the field's name.
func ParseDHTMode(s string) DHTMode { return canonical(s, DHTModes()) }

// UnmarshalJSON accepts a string in any case, and false as Off: YAML 1.1
// reads an unquoted off as a boolean. Whether the value is a known mode is
// checked by Validate, which names the field.
func (m *DHTMode) UnmarshalJSON(b []byte) error { return unmarshalEnum(b, m, DHTModes(), DHTOff) }

// RelayMode decides who may reserve a relay slot.
type RelayMode string

const (
	// RelayAgents lets only keys of hosted agents (and AllowedKeys) reserve.
	RelayAgents RelayMode = "Agents"
	// RelayPublic lets anyone reserve, within the per-IP and per-ASN limits.
	RelayPublic RelayMode = "Public"
	// RelayOff runs no relay service.
	RelayOff RelayMode = "Off"
)

// RelayModes are the valid relay modes.
func RelayModes() []RelayMode { return []RelayMode{RelayAgents, RelayPublic, RelayOff} }

// ParseRelayMode returns the relay mode s names, in any case. Any other s is
// returned as it is, for Validate to refuse with the field's name.
func ParseRelayMode(s string) RelayMode { return canonical(s, RelayModes()) }

// UnmarshalJSON: see DHTMode.UnmarshalJSON.
func (m *RelayMode) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, m, RelayModes(), RelayOff)
}

// LogLevel is the least severe level the seed logs.
type LogLevel string

// The log levels, from the most verbose.
const (
	LogDebug LogLevel = "Debug"
	LogInfo  LogLevel = "Info"
	LogWarn  LogLevel = "Warn"
	LogError LogLevel = "Error"
)

// LogLevels are the valid log levels, most verbose first.
func LogLevels() []LogLevel { return []LogLevel{LogDebug, LogInfo, LogWarn, LogError} }

// ParseLogLevel returns the log level s names, in any case. Any other s is
// returned as it is, for Validate to refuse with the field's name.
func ParseLogLevel(s string) LogLevel { return canonical(s, LogLevels()) }

// UnmarshalJSON accepts a string in any case; Validate checks the value.
func (l *LogLevel) UnmarshalJSON(b []byte) error { return unmarshalEnum(b, l, LogLevels(), "") }

// Level makes a LogLevel a slog.Leveler; a value Validate refuses is Info.
func (l LogLevel) Level() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// SlogLevel returns LogLevel as a slog.Level (Info for anything Validate refuses).
func (c *Config) SlogLevel() slog.Level { return c.LogLevel.Level() }

// canonical returns the value of values that equals s in any case, else s.
func canonical[T ~string](s string, values []T) T {
	for _, v := range values {
		if strings.EqualFold(s, string(v)) {
			return v
		}
	}
	return T(s)
}

// unmarshalEnum reads a JSON string into *dst in its canonical case. null
// leaves *dst as it is; false is off unless off is "" (no value stands for
// off).
func unmarshalEnum[T ~string](b []byte, dst *T, values []T, off T) error {
	v := bytes.TrimSpace(b)
	switch {
	case string(v) == "null":
		return nil
	case string(v) == "false" && off != "":
		*dst = off
		return nil
	case len(v) > 0 && v[0] == '"':
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			*dst = canonical(s, values)
			return nil
		}
	}
	return fmt.Errorf("want %s, got %s", orList(values), shorten(string(v)))
}

// orList is "A, B or C".
func orList[T ~string](values []T) string {
	var b strings.Builder
	for i, v := range values {
		switch {
		case i == 0:
		case i == len(values)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(string(v))
	}
	return b.String()
}

// maxQuoted bounds the bytes of a bad value that a message quotes.
const maxQuoted = 80

// shorten cuts s to maxQuoted bytes at a character boundary, marking the cut.
func shorten(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
