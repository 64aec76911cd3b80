//go:build cgo

package state

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/automerge/automerge-go"
)

// A Path addresses a value inside a document: map keys, and list indexes
// (a segment of digits, where the container is a list). The empty path is
// the document's root, which is always a map.
type Path []string

// ParsePath reads a dotted path ("ui.theme", "messages.0.text"); "" and
// "." are the root.
func ParsePath(s string) Path {
	if s == "" || s == "." {
		return nil
	}
	return strings.Split(s, ".")
}

func (p Path) String() string {
	if len(p) == 0 {
		return "(root)"
	}
	return strings.Join(p, ".")
}

// ErrNotFound: nothing is at the path.
var ErrNotFound = errors.New("no value at this path")

// Tx is one transaction: its operations become one Automerge change when
// the function given to Document.Change returns nil, and none of them
// happened when it returns an error.
type Tx struct {
	doc *automerge.Doc
	ops []string
	// touched are the places the transaction wrote, each holding only
	// what it wrote (a map made on the way, a value set, an element
	// appended, a map key deleted, a list an element was deleted from):
	// what the document's schema checks.
	touched []Path
}

// touch records that the transaction wrote at p.
func (tx *Tx) touch(p Path) { tx.touched = append(tx.touched, slices.Clone(p)) }

// slot is a place in a map or a list.
type slot struct {
	m     *automerge.Map
	l     *automerge.List
	key   string
	index int
}

func (s slot) get() (*automerge.Value, error) {
	if s.m != nil {
		return s.m.Get(s.key)
	}
	return s.l.Get(s.index)
}

func (s slot) put(v any) error {
	if s.m != nil {
		return putMap(s.m, s.key, v)
	}
	return putList(s.l, s.index, v)
}

func (s slot) delete() error {
	if s.m != nil {
		return s.m.Delete(s.key)
	}
	return s.l.Delete(s.index)
}

// container returns the map or list at p; with create, missing maps on
// the way are made.
func (tx *Tx) container(p Path, create bool) (*automerge.Value, error) {
	cur := tx.doc.Root()
	for i, seg := range p {
		s, err := childSlot(cur, seg, p[:i])
		if err != nil {
			return nil, err
		}
		next, err := s.get()
		if err != nil {
			return nil, err
		}
		if next.IsVoid() && create && s.m != nil {
			if err := s.m.Set(seg, automerge.NewMap()); err != nil {
				return nil, err
			}
			tx.touch(p[:i+1])
			if next, err = s.get(); err != nil {
				return nil, err
			}
		}
		if next.IsVoid() {
			return nil, fmt.Errorf("%s: %w", p[:i+1], ErrNotFound)
		}
		cur = next
	}
	return cur, nil
}

// childSlot is the place named seg inside the container c (at path at).
func childSlot(c *automerge.Value, seg string, at Path) (slot, error) {
	switch c.Kind() {
	case automerge.KindMap:
		return slot{m: c.Map(), key: seg}, nil
	case automerge.KindList:
		i, err := strconv.Atoi(seg)
		l := c.List()
		if err != nil || i < 0 || i > l.Len() {
			return slot{}, fmt.Errorf("%s is a list of %d: %q is not an index in it", at, l.Len(), seg)
		}
		return slot{l: l, index: i}, nil
	default:
		return slot{}, fmt.Errorf("%s is a %s, not a map or a list", at, kindName(c.Kind()))
	}
}

// target is the slot p names, its parents made as maps where missing.
func (tx *Tx) target(p Path, create bool) (slot, error) {
	if len(p) == 0 {
		return slot{}, errors.New("the root itself is not a slot")
	}
	parent, err := tx.container(p[:len(p)-1], create)
	if err != nil {
		return slot{}, err
	}
	return childSlot(parent, p[len(p)-1], p[:len(p)-1])
}

// Set writes the JSON value of v (anything encoding/json marshals) at p.
// Setting the root replaces every key of the document.
func (tx *Tx) Set(p Path, v any) error {
	x, err := normalizeJSON(v)
	if err != nil {
		return fmt.Errorf("set %s: %w", p, err)
	}
	tx.ops = append(tx.ops, "set "+p.String())
	return tx.set(p, x)
}

func (tx *Tx) set(p Path, x any) error {
	tx.touch(p)
	if len(p) == 0 {
		obj, ok := x.(map[string]any)
		if !ok {
			return errors.New("the root of a document is a map: set it to a JSON object")
		}
		root := tx.doc.RootMap()
		keys, err := root.Keys()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if _, keep := obj[k]; !keep {
				if err := root.Delete(k); err != nil {
					return err
				}
			}
		}
		return fillMap(root, obj)
	}
	s, err := tx.target(p, true)
	if err != nil {
		return fmt.Errorf("set %s: %w", p, err)
	}
	return s.put(x)
}

// Delete removes the value at p.
func (tx *Tx) Delete(p Path) error {
	tx.ops = append(tx.ops, "delete "+p.String())
	s, err := tx.target(p, false)
	if err != nil {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	if v, err := s.get(); err != nil || v.IsVoid() {
		return fmt.Errorf("delete %s: %w", p, ErrNotFound)
	}
	if s.l != nil {
		tx.touch(p[:len(p)-1]) // the later elements move
	} else {
		tx.touch(p)
	}
	return s.delete()
}

// MergePatch applies a JSON merge patch (RFC 7396) at p: members set to
// null are removed, objects merge key by key, anything else replaces.
func (tx *Tx) MergePatch(p Path, patch any) error {
	x, err := normalizeJSON(patch)
	if err != nil {
		return fmt.Errorf("merge patch: %w", err)
	}
	tx.ops = append(tx.ops, "patch "+p.String())
	return tx.mergePatch(p, x)
}

func (tx *Tx) mergePatch(p Path, x any) error {
	obj, ok := x.(map[string]any)
	if !ok {
		return tx.set(p, x)
	}
	c, err := tx.container(p, true)
	if err == nil && c.Kind() != automerge.KindMap {
		err = tx.set(p, map[string]any{})
	}
	if err != nil {
		return fmt.Errorf("merge patch at %s: %w", p, err)
	}
	for k, v := range obj {
		child := append(append(Path(nil), p...), k)
		if v == nil {
			if err := tx.Delete(child); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			continue
		}
		if err := tx.mergePatch(child, v); err != nil {
			return err
		}
	}
	return nil
}

// Append adds the JSON value of v at the end of the list at p (made when
// missing).
func (tx *Tx) Append(p Path, v any) error {
	x, err := normalizeJSON(v)
	if err != nil {
		return fmt.Errorf("append to %s: %w", p, err)
	}
	tx.ops = append(tx.ops, "append "+p.String())
	s, err := tx.target(p, true)
	if err != nil {
		return fmt.Errorf("append to %s: %w", p, err)
	}
	cur, err := s.get()
	if err != nil {
		return err
	}
	switch cur.Kind() {
	case automerge.KindVoid:
		tx.touch(p)
		return s.put([]any{x})
	case automerge.KindList:
		l := cur.List()
		tx.touch(append(slices.Clone(p), strconv.Itoa(l.Len())))
		return putList(l, l.Len(), x)
	default:
		return fmt.Errorf("append to %s: it is a %s, not a list", p, kindName(cur.Kind()))
	}
}

// EditText replaces del characters (Unicode code points) at pos of the text
// at p with insert; a missing text is made (pos and del 0).
func (tx *Tx) EditText(p Path, pos, del int, insert string) error {
	tx.ops = append(tx.ops, "edit text "+p.String())
	tx.touch(p)
	s, err := tx.target(p, true)
	if err != nil {
		return fmt.Errorf("edit text %s: %w", p, err)
	}
	cur, err := s.get()
	if err != nil {
		return err
	}
	switch cur.Kind() {
	case automerge.KindVoid:
		if pos != 0 || del != 0 {
			return fmt.Errorf("edit text %s: %w (only an insert at 0 makes it)", p, ErrNotFound)
		}
		return s.put(insert)
	case automerge.KindText:
		t := cur.Text()
		if n := t.Len(); pos < 0 || del < 0 || pos > n || del > n-pos {
			return fmt.Errorf("edit text %s: %d characters from %d is outside its %d", p, del, pos, n)
		}
		return t.Splice(pos, del, insert)
	default:
		return fmt.Errorf("edit text %s: it is a %s, not text", p, kindName(cur.Kind()))
	}
}

// Increment adds delta to the counter at p (made when missing).
func (tx *Tx) Increment(p Path, delta int64) error {
	tx.ops = append(tx.ops, "increment "+p.String())
	tx.touch(p)
	s, err := tx.target(p, true)
	if err != nil {
		return fmt.Errorf("increment %s: %w", p, err)
	}
	cur, err := s.get()
	if err != nil {
		return err
	}
	switch cur.Kind() {
	case automerge.KindVoid:
		if s.m != nil {
			return s.m.Set(s.key, automerge.NewCounter(delta))
		}
		return s.l.Append(automerge.NewCounter(delta))
	case automerge.KindCounter:
		return cur.Counter().Inc(delta)
	default:
		return fmt.Errorf("increment %s: it is a %s, not a counter", p, kindName(cur.Kind()))
	}
}

func kindName(k automerge.Kind) string {
	switch k {
	case automerge.KindMap:
		return "map"
	case automerge.KindList:
		return "list"
	case automerge.KindText, automerge.KindStr:
		return "string"
	case automerge.KindCounter:
		return "counter"
	case automerge.KindVoid:
		return "missing value"
	case automerge.KindNull:
		return "null"
	case automerge.KindBool:
		return "boolean"
	default:
		return "number or other scalar"
	}
}

// TextLen is the length, in characters, of the text at p (0 when missing).
func (tx *Tx) TextLen(p Path) (int, error) {
	s, err := tx.target(p, false)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	cur, err := s.get()
	if err != nil {
		return 0, err
	}
	switch cur.Kind() {
	case automerge.KindVoid:
		return 0, nil
	case automerge.KindText:
		return cur.Text().Len(), nil
	default:
		return 0, fmt.Errorf("%s is a %s, not text", p, kindName(cur.Kind()))
	}
}
