package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// The schema is the shape of the file: which keys a section holds, in the
// order of Config's fields, and which settings are lists. Parse reads it to
// tell a setting with no value from a section with none, to name the key an
// unknown one may have meant, and to report problems in the file's order. It
// is read from Default() written as JSON, so it follows Config by itself.

type nodeKind int

const (
	leaf nodeKind = iota
	section
	list
)

type node struct {
	kind     nodeKind
	keys     []string         // a section's keys, in field order
	children map[string]*node // a section's settings by key
}

var schema = sync.OnceValue(func() *node {
	c := Default()
	eachStringList(&c, func(l *[]string) { *l = []string{} }) // [] rather than null: a list
	j, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("config: Default() does not marshal: %v", err))
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	n, err := readNode(dec)
	if err != nil {
		panic(fmt.Sprintf("config: reading Default() as JSON: %v", err))
	}
	return n
})

// readNode reads the next JSON value of dec as a schema node.
func readNode(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		n := &node{kind: section, children: map[string]*node{}}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := key.(string)
			child, err := readNode(dec)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k)
			n.children[k] = child
		}
		_, err := dec.Token() // }
		return n, err
	case json.Delim('['):
		for dec.More() {
			if _, err := readNode(dec); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token() // ]
		return &node{kind: list}, err
	}
	return &node{kind: leaf}, nil
}

// item is the node of a list's items (every list holds settings).
func (n *node) item() *node {
	if n == nil || n.kind != list {
		return nil
	}
	return &node{kind: leaf}
}

// at returns the node at path, or nil if there is none.
func (n *node) at(path []step) *node {
	for _, s := range path {
		switch {
		case n == nil:
			return nil
		case s.list:
			n = n.item()
		case n.kind == section:
			n = n.children[s.key]
		default:
			return nil
		}
	}
	return n
}

// compare orders paths as the file's settings are ordered: a section's keys
// in field order, unknown keys after them by name, list items by index, a
// setting before what is inside it.
func (n *node) compare(a, b []step) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		sa, sb := a[i], b[i]
		switch {
		case sa.list && sb.list:
			if c := sa.index - sb.index; c != 0 {
				return c
			}
			n = n.item()
			continue
		case sa.list != sb.list:
			if sa.list {
				return -1
			}
			return 1
		}
		if sa.key != sb.key {
			ra, rb := n.rank(sa.key), n.rank(sb.key)
			if ra != rb {
				return ra - rb
			}
			return strings.Compare(sa.key, sb.key)
		}
		n = n.at([]step{sa})
	}
	return len(a) - len(b)
}

// rank is key's position in the section n, or after every known key.
func (n *node) rank(key string) int {
	if n == nil {
		return 0
	}
	if i := slices.Index(n.keys, key); i >= 0 {
		return i
	}
	return len(n.keys)
}
