//go:build cgo

package state

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/automerge/automerge-go"
)

// ErrAutomerge wraps a panic of the Automerge binding: a hostile document
// must end an operation with an error, never the process.
var ErrAutomerge = errors.New("automerge")

// guard turns a panic of the binding into *err. Every exported method that
// touches Automerge defers it.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrAutomerge, r)
	}
}

// toJSON reads v by its kind into encoding/json's generic form. Strings and
// text both read as strings (Automerge's JS library writes plain strings as
// text); bytes as base64, timestamps as RFC 3339, counters as numbers, and
// floats JSON cannot carry (NaN, ±Inf) as null.
func toJSON(v *automerge.Value) (any, error) {
	switch v.Kind() {
	case automerge.KindMap:
		vals, err := v.Map().Values()
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(vals))
		for k, x := range vals {
			if out[k], err = toJSON(x); err != nil {
				return nil, err
			}
		}
		return out, nil
	case automerge.KindList:
		vals, err := v.List().Values()
		if err != nil {
			return nil, err
		}
		out := make([]any, len(vals))
		for i, x := range vals {
			if out[i], err = toJSON(x); err != nil {
				return nil, err
			}
		}
		return out, nil
	case automerge.KindText:
		return v.Text().Get()
	case automerge.KindCounter:
		return v.Counter().Get()
	case automerge.KindStr:
		return v.Str(), nil
	case automerge.KindBool:
		return v.Bool(), nil
	case automerge.KindInt64:
		return v.Int64(), nil
	case automerge.KindUint64:
		return v.Uint64(), nil
	case automerge.KindFloat64:
		if f := v.Float64(); !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, nil
		}
		return nil, nil
	case automerge.KindBytes:
		return base64.StdEncoding.EncodeToString(v.Bytes()), nil
	case automerge.KindTime:
		return v.Time().UTC().Format(time.RFC3339Nano), nil
	default: // null, void, and kinds this binding does not know
		return nil, nil
	}
}

// normalizeJSON turns any value encoding/json can marshal into the generic
// form (numbers as json.Number) that the writers below take.
func normalizeJSON(v any) (any, error) {
	raw, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	return decodeJSON(raw)
}

// decodeJSON parses one JSON value with numbers kept exact.
func decodeJSON(raw []byte) (any, error) {
	var out any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&out); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d.More() {
		return nil, errors.New("not JSON: more than one value")
	}
	return out, nil
}

// scalar converts a generic JSON scalar to what Automerge stores: integers
// that fit as int64, other numbers as float64, strings as text (as the JS
// library does, so they can be edited as text).
func scalar(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool:
		return x, nil
	case string:
		return automerge.NewText(x), nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return f, nil
	default:
		return nil, fmt.Errorf("unsupported value of type %T", v)
	}
}

// putMap writes the JSON value v at key of m, building maps and lists.
func putMap(m *automerge.Map, key string, v any) error {
	switch x := v.(type) {
	case map[string]any:
		nm := automerge.NewMap()
		if err := m.Set(key, nm); err != nil {
			return err
		}
		return fillMap(nm, x)
	case []any:
		nl := automerge.NewList()
		if err := m.Set(key, nl); err != nil {
			return err
		}
		return fillList(nl, x)
	}
	s, err := scalar(v)
	if err != nil {
		return err
	}
	return m.Set(key, s)
}

// putList writes v at index i of l (i == Len appends).
func putList(l *automerge.List, i int, v any) error {
	set := func(x any) error {
		if i == l.Len() {
			return l.Append(x)
		}
		return l.Set(i, x)
	}
	switch x := v.(type) {
	case map[string]any:
		nm := automerge.NewMap()
		if err := set(nm); err != nil {
			return err
		}
		return fillMap(nm, x)
	case []any:
		nl := automerge.NewList()
		if err := set(nl); err != nil {
			return err
		}
		return fillList(nl, x)
	}
	s, err := scalar(v)
	if err != nil {
		return err
	}
	return set(s)
}

func fillMap(m *automerge.Map, x map[string]any) error {
	for k, v := range x {
		if err := putMap(m, k, v); err != nil {
			return err
		}
	}
	return nil
}

func fillList(l *automerge.List, x []any) error {
	for _, v := range x {
		if err := putList(l, l.Len(), v); err != nil {
			return err
		}
	}
	return nil
}
