package pairing

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestNewCode(t *testing.T) {
	display := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)
	seen := map[Code]bool{}
	for range 100 {
		c := mustCode(t)
		if !display.MatchString(c.String()) {
			t.Fatalf("code displays as %q", c)
		}
		if p, err := ParseCode(c.String()); err != nil || p != c {
			t.Fatalf("ParseCode(%q) = %q, %v", c.String(), p, err)
		}
		if seen[c] {
			t.Fatalf("code %s repeated within 100", c)
		}
		seen[c] = true
	}
}

func TestParseCode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Code
	}{
		{"ABCD-EFGH", "ABCDEFGH"},
		{"abcd-efgh", "ABCDEFGH"},
		{"abcdefgh", "ABCDEFGH"},
		{" AB CD - EF GH \n", "ABCDEFGH"},
		{"o1il-OILZ", "0111011Z"},
		{"0000-0000", "00000000"},
		{"ZZZZ-ZZZZ", "ZZZZZZZZ"},
		{"--ab-cd-ef-gh--", "ABCDEFGH"},
	} {
		got, err := ParseCode(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseCode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseCodeRejects(t *testing.T) {
	for _, tc := range []struct {
		in, wantMsg string
	}{
		{"", "empty"},
		{"----", "empty"},
		{"ABCD-EFG", "7 symbols"},
		{"ABCD-EFGHJ", "9 symbols"},
		{"ABCU-EFGH", "letter U at position 4"},
		{"abcd-efgu", "letter U at position 9"},
		{"ABC!-EFGH", `'!' at position 4`},
		{"ÄBCD-EFGH", `'Ä' at position 1`},
		{"ABCD_EFGH", `'_'`},
		{"ABCD\x00EFGH", `'\x00'`},
		{"\xffBCD-EFGH", "position 1"},
		{strings.Repeat("A", maxCodeInput+1), "too long"},
	} {
		_, err := ParseCode(tc.in)
		if !errors.Is(err, ErrInvalidCode) || !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("ParseCode(%q) = %v; want ErrInvalidCode mentioning %q", tc.in, err, tc.wantMsg)
		}
	}
}

func TestCodeString(t *testing.T) {
	for _, tc := range []struct {
		c    Code
		want string
	}{
		{"ABCDEFGH", "ABCD-EFGH"},
		{"abcd-efgh", "ABCD-EFGH"}, // not canonical but parses
		{"nope", "nope"},           // not a code: shown as is
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("Code(%q).String() = %q, want %q", string(tc.c), got, tc.want)
		}
	}
}

func TestCodeBytesRoundTrip(t *testing.T) {
	for _, b := range [][codeBytes]byte{{}, {0xff, 0xff, 0xff, 0xff, 0xff}, {1, 2, 3, 4, 5}, {0x80, 0, 0, 0, 1}} {
		c := codeFromBytes(b)
		if !c.isCanonical() || c.bytes() != b {
			t.Errorf("%x → %q → %x", b, c, c.bytes())
		}
	}
	if got := codeFromBytes([codeBytes]byte{}); got != "00000000" {
		t.Errorf("zero bytes give %q", got)
	}
	if got := codeFromBytes([codeBytes]byte{0xff, 0xff, 0xff, 0xff, 0xff}); got != "ZZZZZZZZ" {
		t.Errorf("all-ones bytes give %q", got)
	}
}
