package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// MaxFileSize is the largest configuration file Load and Parse accept.
const MaxFileSize = 1 << 20

// ErrInvalid is wrapped by every error about the content of a configuration:
// syntax, unknown fields, wrong types (Parse, Load) and values (Validate).
// Errors opening or reading the file do not wrap it.
var ErrInvalid = errors.New("invalid seed node configuration")

// FieldError is one problem with one field. Field is the path as written in
// the file ("relay.limits.maxCircuits", "listen.quic[0]"), or "" for the file
// as a whole. It wraps ErrInvalid and Err.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return e.Field + ": " + e.Err.Error()
}

// Unwrap makes errors.Is(err, ErrInvalid) true, and keeps Err reachable
// (for example identity.ErrInvalidDID).
func (e *FieldError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Load returns Default() overlaid with the YAML file at path. Keys missing
// from the file keep their defaults; unknown keys, keys in the wrong case,
// duplicate keys and values of the wrong type are errors naming the field,
// all reported at once. Load does not call Validate: apply command-line
// overrides first (ApplyFlags), then Validate.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("config file %s: %w", path, err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, nil
}

// Parse is Load for bytes already read. An empty document is Default().
//
// In the file, a key with no value is an error for a single setting, means
// "keep the defaults" for a section, and means an empty list for a list.
func Parse(data []byte) (Config, error) {
	if len(data) > MaxFileSize {
		return Config{}, &FieldError{Err: fmt.Errorf("larger than %d bytes (1 MiB)", MaxFileSize)}
	}
	if multipleDocuments(data) {
		return Config{}, &FieldError{Err: errors.New("more than one YAML document (a line starting with --- or ... after settings)")}
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return Config{}, &FieldError{Err: fmt.Errorf("not valid YAML: %w", err)}
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return Config{}, &FieldError{Err: err}
	}
	// Check the document against the struct first: encoding/json stops at
	// the first problem, matches keys case-insensitively and does not say
	// which field a custom decoder failed on.
	if errs := checkShape(doc, reflect.TypeFor[Config](), ""); len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	cfg := Default()
	dec = json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, &FieldError{Err: err}
	}
	eachStringList(&cfg, func(l *[]string) {
		if len(*l) == 0 {
			*l = nil
		}
	})
	return cfg, nil
}

// Marshal writes c as YAML that Load and Parse read back to an equal Config:
// keys sorted, empty lists written as [] (an empty list replaces the default
// list, it does not fall back to it). For a commented file, see Example.
func (c Config) Marshal() ([]byte, error) {
	eachStringList(&c, func(l *[]string) {
		if len(*l) == 0 {
			*l = []string{}
		}
	})
	return yaml.Marshal(c)
}

// multipleDocuments reports whether data holds settings after a document
// marker that ends the first document: YAMLToJSON would silently read only the
// first one. Markers are only recognised at the start of a line, as in YAML.
func multipleDocuments(data []byte) bool {
	started, ended := false, false // started: a marker or a setting seen
	for line := range bytes.Lines(data) {
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case isMarker(line, "---"):
			if started || ended {
				return true
			}
			started = true
			continue
		case isMarker(line, "..."):
			ended = true
			continue
		}
		if t := bytes.TrimSpace(line); len(t) == 0 || t[0] == '#' || line[0] == '%' {
			continue
		}
		if ended {
			return true
		}
		started = true
	}
	return false
}

func isMarker(line []byte, m string) bool {
	return bytes.HasPrefix(line, []byte(m)) && (len(line) == len(m) || line[len(m)] == ' ' || line[len(m)] == '\t')
}

// eachStringList calls fn on every []string field of c, however deep.
func eachStringList(c *Config, fn func(*[]string)) {
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := range v.NumField() {
			f := v.Field(i)
			switch {
			case f.Kind() == reflect.Struct:
				walk(f)
			case f.Type() == reflect.TypeFor[[]string]():
				fn(f.Addr().Interface().(*[]string))
			}
		}
	}
	walk(reflect.ValueOf(c).Elem())
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkShape compares a decoded JSON document with the type it will be
// decoded into and returns every unknown key and every value of the wrong
// type, named by its path.
func checkShape(v any, t reflect.Type, path string) []error {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return checkLeaf(v, t, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		if v == nil {
			return nil // a section with no value keeps its defaults
		}
		m, ok := v.(map[string]any)
		if !ok {
			return []error{fieldErr(path, "want a mapping of settings, got %s", describe(v))}
		}
		var errs []error
		known := make(map[string]bool)
		for i := range t.NumField() {
			f := t.Field(i)
			name := jsonName(f)
			if name == "" {
				continue
			}
			known[name] = true
			if fv, ok := m[name]; ok {
				errs = append(errs, checkShape(fv, f.Type, joinPath(path, name))...)
			}
		}
		var unknown []string
		for k := range m {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		slices.Sort(unknown)
		for _, k := range unknown {
			hint := ""
			for name := range known {
				if strings.EqualFold(name, k) {
					hint = fmt.Sprintf(" (did you mean %s?)", name)
				}
			}
			errs = append(errs, fieldErr(joinPath(path, k), "unknown field%s", hint))
		}
		return errs
	case reflect.Slice:
		if v == nil {
			return nil // an empty list
		}
		list, ok := v.([]any)
		if !ok {
			return []error{fieldErr(path, "want a list, got %s", describe(v))}
		}
		var errs []error
		for i, e := range list {
			errs = append(errs, checkShape(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	}
	return checkLeaf(v, t, path)
}

func checkLeaf(v any, t reflect.Type, path string) []error {
	if v == nil {
		return []error{fieldErr(path, "no value (delete the line to keep the default)")}
	}
	raw, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(raw, reflect.New(t).Interface())
	}
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		hint := ""
		if t.Kind() == reflect.String {
			hint = " (put it in quotes)"
		}
		return []error{fieldErr(path, "want %s, got %s%s", describeType(t), describe(v), hint)}
	}
	return []error{&FieldError{Field: path, Err: err}}
}

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

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "no value"
	case string:
		return fmt.Sprintf("the text %q", v)
	case json.Number:
		return "the number " + v.String()
	case bool:
		return fmt.Sprint(v)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number (0 or more)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	}
	return t.String()
}
