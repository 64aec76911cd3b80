package state

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The standard documents: every app of an agent reads and writes them
// alike, so each has a JSON Schema (draft 2020-12) that Change checks.
const (
	DocProfile     = "profile"
	DocPreferences = "preferences"
	DocTools       = "tools"
	// DocConversations is the prefix of conversation documents:
	// conversations/<id>, one document per conversation.
	DocConversations = "conversations/"
)

// A StandardSchema names a standard document (or, ending in "/*", every
// document one segment under a prefix) and its schema file.
type StandardSchema struct {
	Pattern string
	File    string // under schemas/ in this package
}

// StandardSchemas lists the standard documents, as the README's table does.
var StandardSchemas = []StandardSchema{
	{DocProfile, "profile.json"},
	{DocPreferences, "preferences.json"},
	{DocConversations + "*", "conversation.json"},
	{DocTools, "tools.json"},
}

//go:embed schemas/*.json
var schemaFiles embed.FS

// SchemaFile returns the text of an embedded schema file.
func SchemaFile(file string) ([]byte, error) { return schemaFiles.ReadFile("schemas/" + file) }

// ErrInvalid marks a write refused because the document it would leave
// does not match the document's schema.
var ErrInvalid = errors.New("does not match its schema")

// InvalidError is a refused write: the field, as a JSON pointer (""
// for the document itself), and what the schema expected there.
type InvalidError struct {
	Doc     string
	Pointer string
	Problem string
	More    int // further fields that do not match
}

func (e *InvalidError) Error() string {
	more := ""
	if e.More > 0 {
		more = fmt.Sprintf(" (and %d more)", e.More)
	}
	return fmt.Sprintf("document %s %v: at %s: %s%s", e.Doc, ErrInvalid, fieldName(e.Pointer), e.Problem, more)
}

func (e *InvalidError) Unwrap() error { return ErrInvalid }

// fieldName shows a JSON pointer as the dotted path the commands take,
// unless a key is empty or holds a '.', '/' or '~' (then the pointer
// itself).
func fieldName(ptr string) string {
	if ptr == "" {
		return "(root)"
	}
	segs := strings.Split(ptr[1:], "/")
	for _, seg := range segs {
		if seg == "" || strings.ContainsAny(seg, ".~") {
			return ptr
		}
	}
	return strings.Join(segs, ".")
}

// A Schema is a compiled JSON Schema that checks the documents it is
// registered for.
type Schema struct {
	pattern string
	sch     *jsonschema.Schema
}

// Pattern is the document name (or "prefix/*") the schema applies to.
func (s *Schema) Pattern() string { return s.pattern }

// mismatch is one place where a document does not match its schema.
type mismatch struct {
	pointer string
	what    string
}

var englishPrinter = message.NewPrinter(language.English)

// mismatches validates v, a document in encoding/json's generic form (or with
// int64, uint64 and float64 numbers), and lists where it does not match,
// each leaf of the validator's error tree once.
func (s *Schema) mismatches(v any) (_ []mismatch, err error) {
	defer recoverInto(&err)
	err = s.sch.Validate(v)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, err
	}
	var out []mismatch
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			p := mismatch{pointer: jsonPointer(e.InstanceLocation), what: e.ErrorKind.LocalizedString(englishPrinter)}
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out, nil
}

func jsonPointer(loc []string) string {
	var b strings.Builder
	for _, seg := range loc {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(seg))
	}
	return b.String()
}

// CompileSchema compiles a JSON Schema (draft 2020-12 unless it names
// another draft in $schema) for the documents pattern names. Formats
// (date-time, …) are asserted.
func CompileSchema(pattern string, schema []byte) (_ *Schema, err error) {
	defer recoverInto(&err)
	if err := checkPattern(pattern); err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("schema for %s: not JSON: %w", pattern, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	const url = "mem:///state/schema.json" // hierarchical, so relative references resolve (to noLoader)
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema for %s: %w", pattern, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema for %s: %w", pattern, err)
	}
	return &Schema{pattern: pattern, sch: sch}, nil
}

// recoverInto turns a panic of the validator on a hostile schema or
// document into *err.
func recoverInto(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("json schema: %v", r)
	}
}

// noLoader refuses every schema a schema refers to outside itself: a
// document's check must not depend on files or the network.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s: schemas here are self-contained (use $defs)", url)
}

// checkPattern: a document name, or a name followed by "/*".
func checkPattern(pattern string) error {
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		return CheckName(prefix)
	}
	return CheckName(pattern)
}

// registry holds the schemas by pattern: the standard ones, compiled
// once, and those apps registered.
var registry struct {
	once     sync.Once
	mu       sync.RWMutex
	schemas  map[string]*Schema
	standard map[string]bool
	err      error
}

func loadStandard() {
	registry.schemas = map[string]*Schema{}
	registry.standard = map[string]bool{}
	for _, s := range StandardSchemas {
		text, err := SchemaFile(s.File)
		if err == nil {
			var sch *Schema
			if sch, err = CompileSchema(s.Pattern, text); err == nil {
				registry.schemas[s.Pattern] = sch
				registry.standard[s.Pattern] = true
				continue
			}
		}
		registry.err = errors.Join(registry.err, fmt.Errorf("standard schema %s: %w", s.File, err))
	}
}

// RegisterSchema makes Change check the documents pattern names (a
// document name, or "prefix/*" for every document one segment under
// prefix) against schema, a JSON Schema: an app's own documents. A
// second registration of a pattern replaces the first. The standard
// documents keep their schemas: an app extends them with members of its
// own, which they allow.
func RegisterSchema(pattern string, schema []byte) error {
	registry.once.Do(loadStandard)
	sch, err := CompileSchema(pattern, schema)
	if err != nil {
		return err
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.standard[pattern] || standardFor(pattern) != nil {
		return fmt.Errorf("%s is a standard document: its schema is fixed (apps add members of their own to it)", pattern)
	}
	registry.schemas[pattern] = sch
	return nil
}

// standardFor is the standard schema of the document name, if any. The
// caller holds registry.mu.
func standardFor(name string) *Schema {
	if s := lookup(name); s != nil && registry.standard[s.pattern] {
		return s
	}
	return nil
}

// SchemaFor returns the schema Change checks the document name against:
// the one registered for the name, or else for "prefix/*" where prefix is
// the name without its last segment; nil when there is none.
func SchemaFor(name string) (*Schema, error) {
	registry.once.Do(loadStandard)
	if registry.err != nil {
		return nil, registry.err
	}
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	return lookup(name), nil
}

// lookup: the caller holds registry.mu.
func lookup(name string) *Schema {
	if s := registry.schemas[name]; s != nil {
		return s
	}
	if i := strings.LastIndexByte(name, '/'); i > 0 {
		return registry.schemas[name[:i]+"/*"]
	}
	return nil
}
