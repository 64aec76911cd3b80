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
	"strconv"
	"strings"

	sigsjson "sigs.k8s.io/json"
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
// all reported at once (the first 100). Load does not call Validate: apply command-line
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
//
// The YAML becomes JSON (sigs.k8s.io/yaml, which refuses duplicate keys) and
// the JSON is decoded strictly by sigs.k8s.io/json, which names every unknown
// field by its path. That decoder stops at the first value of the wrong type
// and, for a value whose own decoder (Duration, the modes) failed, does not
// say where it was: when a value is wrong, the values are decoded again on
// their own, within the sections that fail, to name each bad one
// (problemList.values).
func Parse(data []byte) (Config, error) {
	if len(data) > MaxFileSize {
		return Config{}, &FieldError{Err: fmt.Errorf("larger than %d bytes (1 MiB)", MaxFileSize)}
	}
	if multipleDocuments(data) {
		return Config{}, &FieldError{Err: errors.New("more than one YAML document (a line starting with --- or ... after settings)")}
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return Config{}, yamlError(err)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber() // numbers are quoted back as written
	if err := dec.Decode(&doc); err != nil {
		return Config{}, &FieldError{Err: fmt.Errorf("not valid YAML: %w", err)}
	}

	cfg := Default()
	strict, err := decodeStrict(j, &cfg)
	var found problemList
	found.nulls(nil, doc, schema())
	if err != nil {
		var values problemList
		values.values(nil, doc, schema())
		if len(values.list) == 0 { // cannot happen: the value alone failed above
			values.add(problem{msg: err.Error(), err: err})
		}
		// Decode what is left for the unknown fields, which the decoder
		// reports only when every value decoded.
		for _, p := range values.list {
			doc = without(doc, p.path)
		}
		if j, merr := json.Marshal(doc); merr == nil {
			var scratch Config
			strict, _ = decodeStrict(j, &scratch)
		}
		found.merge(values)
	}
	for _, e := range strict {
		found.add(strictProblem(e))
	}
	if err := found.err(); err != nil {
		return Config{}, err
	}
	eachStringList(&cfg, func(l *[]string) {
		if len(*l) == 0 {
			*l = nil
		}
	})
	return cfg, nil
}

// decodeStrict decodes JSON into v, refusing unknown and duplicate fields;
// strict lists those (sigs.k8s.io/json FieldErrors, at most 100), err the
// first value that does not fit (then strict is empty).
func decodeStrict(j []byte, v any) (strict []error, err error) {
	return sigsjson.UnmarshalStrict(j, v, sigsjson.DisallowUnknownFields, sigsjson.DisallowDuplicateFields)
}

// yamlError turns a YAML syntax or duplicate key error into problems, one
// per line the YAML library reports.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	head, rest, multi := strings.Cut(msg, "unmarshal errors:\n")
	if !multi {
		return &FieldError{Err: fmt.Errorf("not valid YAML: %w", err)}
	}
	var ps problemList
	for line := range strings.Lines(rest) {
		if line = strings.TrimSpace(line); line != "" {
			ps.add(problem{msg: "not valid YAML: " + line, err: err})
		}
	}
	if len(ps.list) == 0 {
		return &FieldError{Err: fmt.Errorf("not valid YAML: %s", head)}
	}
	return ps.err()
}

// maxProblems bounds the problems one Parse reports.
const maxProblems = 100

// removedFields are settings that no longer exist, with what to do instead.
var removedFields = map[string]string{
	"relay.limits.maxReservationsPerPeer": "it was removed: a circuit v2 relay holds one reservation per " +
		"peer (a new one replaces the old), so there is no per-peer limit to set; delete the line",
}

// problem is one thing wrong with the document, at path.
type problem struct {
	path []step
	msg  string
	err  error // the cause, kept reachable by errors.Is/As
}

// step is one part of a path in the document: a key, or an index in a list.
type step struct {
	key   string
	index int  // when list
	list  bool // an index in a list, not a key
}

func (p problem) field() string { return formatPath(p.path) }

func formatPath(path []step) string {
	var b strings.Builder
	for _, s := range path {
		if s.list {
			fmt.Fprintf(&b, "[%d]", s.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

// parsePath reads a path as sigs.k8s.io/json writes it ("a.b[2].c"). A key
// containing . or [ reads as several; the path only orders the problem.
func parsePath(s string) []step {
	var out []step
	for part := range strings.SplitSeq(s, ".") {
		key, indexes, _ := strings.Cut(part, "[")
		out = append(out, step{key: key})
		if indexes == "" {
			continue
		}
		for ix := range strings.SplitSeq(strings.TrimSuffix(indexes, "]"), "][") {
			n, err := strconv.Atoi(ix)
			if err != nil {
				break
			}
			out = append(out, step{index: n, list: true})
		}
	}
	return out
}

// problemList collects what is wrong with a document, up to maxProblems of
// each kind: a file with thousands of bad lines is refused as quickly as one
// with a few, with the first ones named.
type problemList struct {
	list []problem
	more bool // some were left out
}

func (ps *problemList) full() bool { return len(ps.list) >= maxProblems }

func (ps *problemList) add(p problem) {
	if ps.full() {
		ps.more = true
		return
	}
	ps.list = append(ps.list, p)
}

func (ps *problemList) merge(o problemList) {
	ps.list = append(ps.list, o.list...)
	ps.more = ps.more || o.more
}

// err returns the problems in the file's order, at most maxProblems, as
// *FieldErrors joined by errors.Join; nil if there are none.
func (ps *problemList) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := slices.Clone(ps.list)
	slices.SortStableFunc(list, func(a, b problem) int { return schema().compare(a.path, b.path) })
	more := ps.more
	if len(list) > maxProblems {
		list, more = list[:maxProblems], true
	}
	errs := make([]error, 0, len(list)+1)
	for _, p := range list {
		var cause error = errors.New(p.msg)
		if p.err != nil {
			cause = &detailErr{p.msg, p.err}
		}
		errs = append(errs, &FieldError{Field: p.field(), Err: cause})
	}
	if more {
		errs = append(errs, &FieldError{Err: fmt.Errorf("more problems not shown (only the first %d are)", maxProblems)})
	}
	return errors.Join(errs...)
}

// strictProblem names an unknown or duplicate field that sigs.k8s.io/json
// found, with the key it may have meant.
func strictProblem(e error) problem {
	fe, ok := e.(sigsjson.FieldError)
	if !ok {
		return problem{msg: e.Error(), err: e}
	}
	path := parsePath(fe.FieldPath())
	p := problem{path: path, err: e}
	if !strings.HasPrefix(e.Error(), "unknown field") {
		p.msg = "given twice (each setting may appear once)"
		return p
	}
	p.msg = "unknown field"
	if why, ok := removedFields[fe.FieldPath()]; ok {
		p.msg += ": " + why
	} else if sec := schema().at(path[:len(path)-1]); sec != nil {
		last := path[len(path)-1].key
		for _, k := range sec.keys {
			if strings.EqualFold(k, last) {
				p.msg += fmt.Sprintf(" (did you mean %s?)", k)
			}
		}
	}
	return p
}

// nulls finds settings and list items given with no value: the decoder
// would keep the default without a word. A section with no value keeps its
// defaults, and a list with none is empty.
func (ps *problemList) nulls(path []step, v any, n *node) {
	switch {
	case n == nil || ps.more:
		return // unknown: strictProblem reports it
	case v == nil:
		if n.kind == leaf {
			ps.add(problem{path: path, msg: "no value (delete the line to keep the default)"})
		}
		return
	}
	switch n.kind {
	case section:
		m, _ := v.(map[string]any)
		for _, k := range n.keys {
			if sub, ok := m[k]; ok {
				ps.nulls(with(path, step{key: k}), sub, n.children[k])
			}
		}
	case list:
		items, _ := v.([]any)
		for i, item := range items {
			if ps.more {
				return
			}
			if item == nil {
				ps.add(problem{path: with(path, step{index: i, list: true}), msg: "no value"})
			}
		}
	}
}

// values finds the values under path that do not decode: it decodes v alone
// at path and, if that fails, the values inside v (in the file's order), so
// that each problem names the innermost setting or list item at fault.
func (ps *problemList) values(path []step, v any, n *node) {
	if n == nil || ps.more {
		return // unknown fields decode as nothing
	}
	err := decodeAlone(path, v)
	if err == nil {
		return
	}
	before := len(ps.list)
	switch v := v.(type) {
	case map[string]any:
		if n.kind == section {
			for _, k := range n.keys {
				if sub, ok := v[k]; ok {
					ps.values(with(path, step{key: k}), sub, n.children[k])
				}
			}
		}
	case []any:
		if n.kind == list {
			mid := len(v) / 2
			ps.items(path, v[:mid], 0, n.item())
			ps.items(path, v[mid:], mid, n.item())
		}
	}
	if len(ps.list) == before && !ps.more {
		ps.add(problem{path: path, msg: describeError(err, v), err: err})
	}
}

// items finds the bad items among items, which are the list at path from
// index first on, by halves: a half that decodes is skipped whole, so one
// bad item in a long list costs a few decodes of the list, not one per item.
func (ps *problemList) items(path []step, items []any, first int, n *node) {
	switch {
	case len(items) == 0 || ps.more:
	case len(items) == 1:
		ps.values(with(path, step{index: first, list: true}), items[0], n)
	case decodeAlone(path, items) != nil:
		mid := len(items) / 2
		ps.items(path, items[:mid], first, n)
		ps.items(path, items[mid:], first+mid, n)
	}
}

// decodeAlone decodes a document holding only v, at path, into a Config.
func decodeAlone(path []step, v any) error {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i].list {
			v = []any{v}
		} else {
			v = map[string]any{path[i].key: v}
		}
	}
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var c Config
	_, err = decodeStrict(j, &c)
	return err
}

// without returns doc with the value at path removed (a list item becomes
// null, so the other items keep their indexes).
func without(doc any, path []step) any {
	if len(path) == 0 {
		return nil
	}
	switch d := doc.(type) {
	case map[string]any:
		if path[0].list {
			return doc
		}
		if len(path) == 1 {
			delete(d, path[0].key)
		} else if sub, ok := d[path[0].key]; ok {
			d[path[0].key] = without(sub, path[1:])
		}
	case []any:
		if !path[0].list || path[0].index >= len(d) {
			return doc
		}
		if len(path) == 1 {
			d[path[0].index] = nil
		} else {
			d[path[0].index] = without(d[path[0].index], path[1:])
		}
	}
	return doc
}

func with(path []step, s step) []step { return append(slices.Clip(path), s) }

// describeError says what is wrong with v, which failed to decode with err.
func describeError(err error, v any) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Type == nil {
		return err.Error() // from the setting's own decoder, e.g. Duration's
	}
	hint := ""
	if te.Type.Kind() == reflect.String {
		hint = " (put it in quotes)"
	}
	return fmt.Sprintf("want %s, got %s%s", describeType(te.Type), describe(v), hint)
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
	// yaml.Marshal writes JSON, then reads it as YAML to write YAML, and
	// the YAML reader refuses characters that encoding/json leaves as they
	// are (DEL, C1 controls) or takes as line breaks (U+0085): escape them.
	j, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(escapeNonPrintable(j))
}

// escapeNonPrintable writes the characters of JSON text j that YAML does not
// allow as they are (outside #x9, #xA, #xD, #x20-#x7E, #xA0-#xD7FF,
// #xE000-#xFFFD and #x10000 up, and the byte order mark) as \u escapes. Such
// characters can only be inside JSON strings.
func escapeNonPrintable(j []byte) []byte {
	printable := func(r rune) bool {
		return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r >= 0xa0 && r <= 0xd7ff ||
			r >= 0xe000 && r <= 0xfffd && r != 0xfeff || r >= 0x10000
	}
	var b bytes.Buffer
	for _, r := range string(j) {
		if printable(r) {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.Bytes()
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

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "no value"
	case string:
		return fmt.Sprintf("the text %q", shorten(v))
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
	case reflect.Struct:
		return "a mapping of settings"
	case reflect.Slice:
		return "a list"
	}
	return t.String()
}
