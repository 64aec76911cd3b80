package fleet

import "testing"

func TestParseAdmission(t *testing.T) {
	for _, a := range []Admission{Closed, Open, Invite} {
		for _, s := range []string{a.String(), lower(a.String())} {
			got, err := ParseAdmission(s)
			if err != nil || got != a {
				t.Fatalf("ParseAdmission(%q) = %v, %v; want %v", s, got, err, a)
			}
		}
	}
	if _, err := ParseAdmission("public"); err == nil {
		t.Fatal("an unknown policy parsed")
	}
	if Admission(7).Valid() || Admission(7).String() != "Admission(7)" {
		t.Fatal("an undefined policy is reported as valid")
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
