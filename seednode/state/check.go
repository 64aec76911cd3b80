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
// document is validated instead; problems it already had (another device
// wrote them) do not refuse the write.

// check refuses the change just committed when what it wrote does not
// match the document's schema (Change then rolls it back). The caller
// holds d.mu.
func (d *Document) check(before []automerge.ChangeHash, touched []Path) error {
	sch, err := SchemaFor(d.name)
	if sch == nil || err != nil {
		return err
	}
	var probs []problem
	if len(before) == 0 { // a new document: all of it is this write's
		probs, err = validateDoc(d.doc, sch)
	} else if probs, err = scopedProblems(d.doc, sch.sch, outermost(touched)); errors.Is(err, errNotScoped) {
		probs, err = d.addedProblems(sch, before)
	}
	if err != nil {
		return err
	}
	if len(probs) > 0 {
		return &InvalidError{Doc: d.name, Pointer: probs[0].pointer, Problem: probs[0].what, More: len(probs) - 1}
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

// addedProblems validates the whole document and returns the problems it
// did not have at the heads before. The caller holds d.mu.
func (d *Document) addedProblems(sch *Schema, before []automerge.ChangeHash) ([]problem, error) {
	if d.checkedAt == nil || !sameHeads(d.checkedAt, before) {
		old := automerge.New()
		if len(before) > 0 {
			var err error
			if old, err = d.doc.Fork(before...); err != nil {
				return nil, err
			}
		}
		probs, err := validateDoc(old, sch)
		if err != nil {
			return nil, err
		}
		d.checkedAt, d.checked = before, probs
	}
	heads := d.doc.Heads()
	probs, err := validateDoc(d.doc, sch)
	if err != nil {
		return nil, err
	}
	var added []problem
	for _, p := range probs {
		if !slices.Contains(d.checked, p) {
			added = append(added, p)
		}
	}
	if len(added) == 0 {
		d.checkedAt, d.checked = heads, probs
	}
	return added, nil
}

func validateDoc(doc *automerge.Doc, sch *Schema) ([]problem, error) {
	v, err := toJSON(doc.Root())
	if err != nil {
		return nil, err
	}
	return sch.problems(v)
}

// errNotScoped: a schema on the way needs the whole document (see above).
var errNotScoped = errors.New("the schema checks the whole document")

// scopedProblems validates what is at each path against the schemas that
// apply there.
func scopedProblems(doc *automerge.Doc, root *jsonschema.Schema, paths []Path) ([]problem, error) {
	var probs []problem
	for _, p := range paths {
		ps, err := checkAt(doc, root, p)
		if err != nil {
			return nil, err
		}
		probs = append(probs, ps...)
	}
	return probs, nil
}

// checkAt walks the schema along p, the document's values alongside, and
// validates the value at p.
func checkAt(doc *automerge.Doc, root *jsonschema.Schema, p Path) ([]problem, error) {
	if len(p) == 0 {
		return nil, errNotScoped
	}
	schemas, err := applicable(root, nil)
	if err != nil {
		return nil, err
	}
	cur := doc.Root()
	var probs []problem
	for i, seg := range p {
		if len(schemas) == 0 {
			return probs, nil // anything goes here
		}
		s, err := childSlot(cur, seg, p[:i])
		if err != nil {
			return nil, err
		}
		if cur, err = s.get(); err != nil {
			return nil, err
		}
		var ps []problem
		if schemas, ps, err = childSchemas(schemas, s.m != nil, p[:i], seg, cur.IsVoid()); err != nil {
			return nil, err
		}
		probs = append(probs, ps...)
		if cur.IsVoid() {
			return probs, nil // deleted: only its container's schema had a say
		}
	}
	v, err := toJSON(cur)
	if err != nil {
		return nil, err
	}
	for _, s := range schemas {
		ps, err := (&Schema{sch: s}).problems(v)
		if err != nil {
			return nil, err
		}
		for _, x := range ps {
			probs = append(probs, problem{pointer: jsonPointer(p) + x.pointer, what: x.what})
		}
	}
	return probs, nil
}

// childSchemas returns the schemas that apply to member seg (a key when
// inMap, else an index) of the container at at that schemas apply to, and
// the problems they have with the member being there or missing;
// errNotScoped when one of them relates members to each other.
func childSchemas(schemas []*jsonschema.Schema, inMap bool, at Path, seg string, missing bool) ([]*jsonschema.Schema, []problem, error) {
	var children []*jsonschema.Schema
	var probs []problem
	for _, sch := range schemas {
		if !walkable(sch) {
			return nil, nil, errNotScoped
		}
		child := sch.Items2020
		if inMap {
			var ps []problem
			child, ps = memberSchema(sch, at, seg, missing)
			probs = append(probs, ps...)
		}
		var err error
		if children, err = applicable(child, children); err != nil {
			return nil, nil, err
		}
	}
	return children, probs, nil
}

// memberSchema is the schema of member key of an object that sch applies
// to (nil: none), and the problems sch has with the member being there or
// missing.
func memberSchema(sch *jsonschema.Schema, at Path, key string, missing bool) (*jsonschema.Schema, []problem) {
	if missing {
		if slices.Contains(sch.Required, key) {
			return nil, []problem{{pointer: jsonPointer(at), what: fmt.Sprintf("missing property '%s'", key)}}
		}
		return nil, nil
	}
	var probs []problem
	if sch.PropertyNames != nil {
		ps, _ := (&Schema{sch: sch.PropertyNames}).problems(key)
		for _, x := range ps {
			probs = append(probs, problem{pointer: jsonPointer(append(slices.Clone(at), key)), what: "property name: " + x.what})
		}
	}
	if child := sch.Properties[key]; child != nil {
		return child, probs
	}
	switch ap := sch.AdditionalProperties.(type) {
	case *jsonschema.Schema:
		return ap, probs
	case bool:
		if !ap {
			probs = append(probs, problem{pointer: jsonPointer(at), what: fmt.Sprintf("additional properties '%s' not allowed", key)})
		}
	}
	return nil, probs
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
