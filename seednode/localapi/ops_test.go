package localapi

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeOps(t *testing.T) {
	ops, err := decodeOps([]byte(` [{"op":"incr","path":"n"},{"op":"text","path":"bio","insert":"x"}]`))
	if err != nil || len(ops) != 2 || *ops[0].Delta != 1 || ops[1].At != nil {
		t.Fatalf("%+v %v", ops, err)
	}
	for _, bad := range []string{``, `[]`, `null`, `{}`, `{"op":"set"}`, `{"op":"set","path":"a..b","value":1}`,
		`{"op":"delete","path":"."}`, `{"op":"text","path":"t","at":-2}`, `{"op":"text","path":"t","delete":-1}`,
		`{"op":"incr","path":"n","delta":1.5}`, `[{"op":"incr","path":"n"}`, `{"op":"incr","path":"n"}x`,
		"[" + strings.Repeat(`{"op":"incr","path":"n"},`, maxOps) + `{"op":"incr","path":"n"}]`,
		`{"op":"set","path":"` + strings.Repeat("a.", maxPathDepth) + `a","value":1}`} {
		if _, err := decodeOps([]byte(bad)); !errors.Is(err, errBadRequest) {
			t.Errorf("decodeOps(%.60q): %v, want a bad request", bad, err)
		}
	}
}

// FuzzDecodeOps: any body is ops that pass their checks or a bad request,
// never a panic.
func FuzzDecodeOps(f *testing.F) {
	for _, s := range []string{`{"op":"set","path":"ui.theme","value":"dark"}`, `[{"op":"incr","path":"n","delta":-3}]`,
		`{"op":"text","path":"bio","at":-1,"delete":2,"insert":"é"}`, `{"op":"patch","value":{"a":null}}`, `[`, `{"op":"delete","path":"a..b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := decodeOps(body)
		if err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("%v is not a bad request", err)
			}
			return
		}
		for _, o := range ops {
			if o.check() != nil || (o.Op == "incr" && o.Delta == nil) {
				t.Fatalf("op %+v passed decoding but not its check", o)
			}
		}
	})
}
