package fleet

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAdmission(t *testing.T) {
	for i, a := range Admissions() {
		for _, s := range []string{string(a), strings.ToLower(string(a)), strings.ToUpper(string(a))} {
			got, err := ParseAdmission(s)
			if err != nil || got != a {
				t.Fatalf("ParseAdmission(%q) = %v, %v; want %v", s, got, err, a)
			}
			var u Admission
			if err := json.Unmarshal([]byte(`"`+s+`"`), &u); err != nil || u != a {
				t.Fatalf("unmarshal %q = %v, %v", s, u, err)
			}
		}
		if a.Code() != byte(i) {
			t.Fatalf("%v has code %d, want %d", a, a.Code(), i)
		}
		if back, ok := AdmissionFromCode(byte(i)); !ok || back != a {
			t.Fatalf("code %d reads back as %v", i, back)
		}
	}
	if _, err := ParseAdmission("public"); err == nil {
		t.Fatal("an unknown policy parsed")
	}
	var u Admission
	if err := json.Unmarshal([]byte(`"Public"`), &u); err != nil || u.Valid() {
		t.Fatalf("an unknown policy unmarshals as valid %q (%v)", u, err)
	}
	if Admission("x").Code() != 255 {
		t.Fatal("an unknown policy has a code")
	}
	if _, ok := AdmissionFromCode(3); ok {
		t.Fatal("code 3 names a policy")
	}
}
