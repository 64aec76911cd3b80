package localapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// An op is one operation of a change request (POST), or what PUT, PATCH
// and DELETE stand for. Every op of a request is one transaction.
type op struct {
	Op    string          `json:"op"`    // set, delete, patch, append, incr, text
	Path  string          `json:"path"`  // dotted; "" or "." is the root
	Value json.RawMessage `json:"value"` // set, patch, append
	// incr: the amount (default 1, may be negative).
	Delta *int64 `json:"delta"`
	// text: the position in characters (absent or -1: the end), how many
	// to delete there, and what to insert.
	At     *int   `json:"at"`
	Delete int    `json:"delete"`
	Insert string `json:"insert"`
}

const (
	maxOps        = 1000
	maxPathLen    = 4096
	maxPathDepth  = 64
	opKindsString = "set, delete, patch, append, incr or text"
)

// errBadRequest marks what a request got wrong (a 400 answer).
var errBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// decodeOps reads a POST body: one op object, or an array of them.
func decodeOps(body []byte) ([]op, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	many := len(trimmed) > 0 && trimmed[0] == '['
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	var ops []op
	var err error
	if many {
		err = dec.Decode(&ops)
	} else {
		var o op
		err = dec.Decode(&o)
		ops = []op{o}
	}
	if err != nil {
		return nil, badRequest("the body is not an op object or an array of them: %v", err)
	}
	if dec.More() {
		return nil, badRequest("the body holds more than one JSON value: send one op, or an array of ops")
	}
	if len(ops) == 0 || len(ops) > maxOps {
		return nil, badRequest("%d ops: send 1 to %d", len(ops), maxOps)
	}
	for i := range ops {
		if err := ops[i].check(); err != nil {
			if many {
				return nil, fmt.Errorf("op %d: %w", i, err)
			}
			return nil, err
		}
	}
	return ops, nil
}

// check validates an op's fields for its kind.
func (o *op) check() error {
	if err := checkPath(o.Path); err != nil {
		return err
	}
	switch o.Op {
	case "set", "patch", "append":
		if o.Value == nil {
			return badRequest("%s needs a \"value\" (any JSON; null too)", o.Op)
		}
	case "delete":
		if isRoot(o.Path) {
			return badRequest("delete needs a \"path\": the root cannot be removed (set it to {} to empty it)")
		}
	case "incr":
		if o.Delta == nil {
			one := int64(1)
			o.Delta = &one
		}
	case "text":
		if o.At != nil && *o.At < -1 {
			return badRequest("text: \"at\" %d: a position from 0, or -1 for the end", *o.At)
		}
		if o.Delete < 0 {
			return badRequest("text: \"delete\" %d: how many characters to delete, from 0", o.Delete)
		}
		if isRoot(o.Path) {
			return badRequest("text needs a \"path\": the root is a map")
		}
	case "":
		return badRequest("an op needs \"op\": %s", opKindsString)
	default:
		return badRequest("op %q: one of %s", o.Op, opKindsString)
	}
	return nil
}

func isRoot(path string) bool { return path == "" || path == "." }

// checkPath refuses a dotted path no document could hold a value at.
func checkPath(path string) error {
	if isRoot(path) {
		return nil
	}
	if len(path) > maxPathLen {
		return badRequest("path of %d bytes: at most %d", len(path), maxPathLen)
	}
	if n := strings.Count(path, ".") + 1; n > maxPathDepth {
		return badRequest("path of %d segments: at most %d", n, maxPathDepth)
	}
	for seg := range strings.SplitSeq(path, ".") {
		if seg == "" {
			return badRequest("path %q has an empty segment: keys are joined by single dots (ui.theme, messages.0.text)", path)
		}
	}
	return nil
}
