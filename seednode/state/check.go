//go:build cgo

package state

import (
	"errors"
	"fmt"
	"slices"

	"github.com/automerge/automerge-go"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Checking a write against the document's schema. Reading a whole document
// out of Automerge and validating it costs about a second for a
// conversation of 10,000 messages, so a write is checked where it wrote:
// each place the transaction touched is validated against the schemas that
// apply there, found by walking the schema along the path (through $ref),
// plus what its container's schema says of that key (required, property
// names, additional properties). Where a schema on the way relates members
// to each other or offers alternatives (allOf, anyOf, oneOf, not, if,
// enum, const, min/max properties or items, contains, unique items,
// prefix items, pattern properties, dependencies, unevaluated members,
// dynamic references), that walk cannot decide alone, and the whole
// document is validated instead; mismatches it already had (another device
// wrote them) do not refuse the write.

// check refuses the change just committed when what it wrote does not
// match the document's schema (Change then rolls it back). The caller
// holds d.mu.
func (d *Document) check(before []automerge.ChangeHash, touched []Path) error {
	sch, err := SchemaFor(d.name)
	if sch == nil || err != nil {
		return err
	}
	var found []mismatch
	if len(before) == 0 { // a new document: all of it is this write's
		found, err = validateDoc(d.doc, sch)
	} else if found, err = scopedMismatches(d.doc, sch.sch, outermost(touched)); errors.Is(err, errNotScoped) {
		found, err = d.addedMismatches(sch, before)
	}
	if err != nil {
		return err
	}
	if len(found) > 0 {
		return &InvalidError{Doc: d.name, Pointer: found[0].pointer, Problem: found[0].what, More: len(found) - 1}
	}
	return nil
}

// outermost drops the paths of ps under another one of them (validating
// that one covers them) and the repeated ones.
func outermost(ps []Path) []Path {
	var out []Path
	for i, p := range ps {
		covered := false
		for j, q := range ps {
			if len(q) < len(p) && slices.Equal(q, p[:len(q)]) || len(q) == len(p) && j < i && slices.Equal(q, p) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

// addedMismatches validates the whole document and returns the mismatches it
// did not have at the heads before. The caller holds d.mu.
func (d *Document) addedMismatches(sch *Schema, before []automerge.ChangeHash) ([]mismatch, error) {
	if d.checkedAt == nil || !sameHeads(d.checkedAt, before) {
		old := automerge.New()
		if len(before) > 0 {
			var err error
			if old, err = d.doc.Fork(before...); err != nil {
				return nil, err
			}
		}
		found, err := validateDoc(old, sch)
		if err != nil {
			return nil, err
		}
		d.checkedAt, d.checked = before, found
	}
	heads := d.doc.Heads()
	found, err := validateDoc(d.doc, sch)
	if err != nil {
		return nil, err
	}
	var added []mismatch
	for _, p := range found {
		if !slices.Contains(d.checked, p) {
			added = append(added, p)
		}
	}
	if len(added) == 0 {
		d.checkedAt, d.checked = heads, found
	}
	return added, nil
}

func validateDoc(doc *automerge.Doc, sch *Schema) ([]mismatch, error) {
	v, err := toJSON(doc.Root())
	if err != nil {
		return nil, err
	}
	return sch.mismatches(v)
}

// errNotScoped: a schema on the way needs the whole document (see above).
var errNotScoped = errors.New("the schema checks the whole document")

// scopedMismatches validates what is at each path against the schemas that
// apply there.
func scopedMismatches(doc *automerge.Doc, root *jsonschema.Schema, paths []Path) ([]mismatch, error) {
	var found []mismatch
	for _, p := range paths {
		ps, err := checkAt(doc, root, p)
		if err != nil {
			return nil, err
		}
		found = append(found, ps...)
	}
	return found, nil
}

// checkAt walks the schema along p, the document's values alongside, and
// validates the value at p.
func checkAt(doc *automerge.Doc, root *jsonschema.Schema, p Path) ([]mismatch, error) {
	if len(p) == 0 {
		return nil, errNotScoped
	}
	schemas, err := applicable(root, nil)
	if err != nil {
		return nil, err
	}
	cur := doc.Root()
	var found []mismatch
	for i, seg := range p {
		if len(schemas) == 0 {
			return found, nil // anything goes here
		}
		s, err := childSlot(cur, seg, p[:i])
		if err != nil {
			return nil, err
		}
		if cur, err = s.get(); err != nil {
			return nil, err
		}
		var ps []mismatch
		if schemas, ps, err = childSchemas(schemas, s.m != nil, p[:i], seg, cur.IsVoid()); err != nil {
			return nil, err
		}
		found = append(found, ps...)
		if cur.IsVoid() {
			return found, nil // deleted: only its container's schema had a say
		}
	}
	v, err := toJSON(cur)
	if err != nil {
		return nil, err
	}
	for _, s := range schemas {
		ps, err := (&Schema{sch: s}).mismatches(v)
		if err != nil {
			return nil, err
		}
		for _, x := range ps {
			found = append(found, mismatch{pointer: jsonPointer(p) + x.pointer, what: x.what})
		}
	}
	return found, nil
}

// childSchemas returns the schemas that apply to member seg (a key when
// inMap, else an index) of the container at at that schemas apply to, and
// the mismatches they have with the member being there or missing;
// errNotScoped when one of them relates members to each other.
func childSchemas(schemas []*jsonschema.Schema, inMap bool, at Path, seg string, missing bool) ([]*jsonschema.Schema, []mismatch, error) {
	var children []*jsonschema.Schema
	var found []mismatch
	for _, sch := range schemas {
		if !walkable(sch) {
			return nil, nil, errNotScoped
		}
		child := sch.Items2020
		if inMap {
			var ps []mismatch
			child, ps = memberSchema(sch, at, seg, missing)
			found = append(found, ps...)
		}
		var err error
		if children, err = applicable(child, children); err != nil {
			return nil, nil, err
		}
	}
	return children, found, nil
}

// memberSchema is the schema of member key of an object that sch applies
// to (nil: none), and the mismatches sch has with the member being there or
// missing.
func memberSchema(sch *jsonschema.Schema, at Path, key string, missing bool) (*jsonschema.Schema, []mismatch) {
	if missing {
		if slices.Contains(sch.Required, key) {
			return nil, []mismatch{{pointer: jsonPointer(at), what: fmt.Sprintf("missing property '%s'", key)}}
		}
		return nil, nil
	}
	var found []mismatch
	if sch.PropertyNames != nil {
		ps, _ := (&Schema{sch: sch.PropertyNames}).mismatches(key)
		for _, x := range ps {
			found = append(found, mismatch{pointer: jsonPointer(append(slices.Clone(at), key)), what: "property name: " + x.what})
		}
	}
	if child := sch.Properties[key]; child != nil {
		return child, found
	}
	switch ap := sch.AdditionalProperties.(type) {
	case *jsonschema.Schema:
		return ap, found
	case bool:
		if !ap {
			found = append(found, mismatch{pointer: jsonPointer(at), what: fmt.Sprintf("additional properties '%s' not allowed", key)})
		}
	}
	return nil, found
}

// applicable adds s and the schemas it refers to with $ref to out
// (errNotScoped for a dynamic reference, which depends on the way there).
func applicable(s *jsonschema.Schema, out []*jsonschema.Schema) ([]*jsonschema.Schema, error) {
	for ; s != nil; s = s.Ref {
		if s.DynamicRef != nil || s.RecursiveRef != nil {
			return nil, errNotScoped
		}
		if s.Bool != nil && *s.Bool {
			continue // true: allows anything
		}
		out = append(out, s)
	}
	return out, nil
}

// walkable reports whether a schema of a container decides on each member
// alone, so a write is checked where it wrote.
func walkable(s *jsonschema.Schema) bool {
	return s.Bool == nil && s.Not == nil && s.AllOf == nil && s.AnyOf == nil && s.OneOf == nil &&
		s.If == nil && s.Enum == nil && s.Const == nil &&
		s.MinProperties == nil && s.MaxProperties == nil && s.PatternProperties == nil &&
		s.Dependencies == nil && s.DependentRequired == nil && s.DependentSchemas == nil &&
		s.UnevaluatedProperties == nil && s.MinItems == nil && s.MaxItems == nil && !s.UniqueItems &&
		s.Contains == nil && s.Items == nil && s.AdditionalItems == nil && s.PrefixItems == nil &&
		s.UnevaluatedItems == nil && s.Extensions == nil
}
