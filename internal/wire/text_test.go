package wire

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":           "plain text",
		"ok\x1b[31m\nnext\xff": "ok\uFFFD[31m next\uFFFD",
		"tab\there\r\n":        "tab here  ",
		"nul\x00 and del\x7f":  "nul\uFFFD and del\uFFFD",
		"bidi \u202eevil":      "bidi \uFFFDevil",
		"émoji 🌱 stays":        "émoji 🌱 stays",
		"cut rune \xe2\x82":    "cut rune \uFFFD",
		"":                     "",
		"\u2028line separator": " line separator",
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"one too long", 11, "one too ..."},
		{"ab\x80\x80\x80\x80\x80cd", 6, "ab\x80..."}, // stray bytes: cut where asked
		{"ab\xe2\x82", 3, "..."},
		{strings.Repeat("é", 10), 8, "éé..."}, // 2+2+3 = 7: a third é would cut
		{strings.Repeat("é", 10), 9, "ééé..."},
		{"日本語のテキスト", 10, "日本..."},
		{"🌱🌱", 6, "..."},
		{"🌱🌱", 7, "🌱..."},
		{"abcdef", 3, "..."},
		{"abcdef", 2, "ab"},
		{"éé", 1, ""},
		{"abc", 0, ""},
		{"abc", -5, ""},
	} {
		got := Truncate(tc.in, tc.max)
		if got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// FuzzTruncate: no panic for any length; the output fits, is valid UTF-8
// when the input is, and is the input itself or a prefix of it (then
// "..." when there is room for it).
func FuzzTruncate(f *testing.F) {
	f.Add("hello, world", 5)
	f.Add(strings.Repeat("é", 10), 8)
	f.Add("🌱🌱", 2)
	f.Add("\x80\x80\x80\x80\x80", 4)
	f.Add("abc", -1)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		got := Truncate(s, limit)
		limit = max(limit, 0) // a limit below 0 is 0
		if len(s) <= limit {
			if got != s {
				t.Fatalf("Truncate(%q, %d) = %q; the text fits", s, limit, got)
			}
			return
		}
		if len(got) > limit {
			t.Fatalf("Truncate(%q, %d) = %q: %d bytes", s, limit, got, len(got))
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Truncate(%q, %d) = %q: invalid UTF-8", s, limit, got)
		}
		kept := got
		if limit >= len(ellipsis) {
			var ok bool
			if kept, ok = strings.CutSuffix(got, ellipsis); !ok {
				t.Fatalf("Truncate(%q, %d) = %q: no %q", s, limit, got, ellipsis)
			}
		}
		if !strings.HasPrefix(s, kept) {
			t.Fatalf("Truncate(%q, %d) = %q: not a prefix", s, limit, got)
		}
		if utf8.ValidString(s) && !utf8.RuneStart(s[len(kept)]) {
			t.Fatalf("Truncate(%q, %d) = %q: cuts a character", s, limit, got)
		}
		room := limit - len(ellipsis)
		if limit < len(ellipsis) {
			room = limit
		}
		if len(kept) < room-(utf8.UTFMax-1) {
			t.Fatalf("Truncate(%q, %d) = %q: gave up more than a character", s, limit, got)
		}
	})
}

// FuzzSanitize: the output is valid UTF-8 and holds nothing but printable
// characters and plain spaces, and printable text passes unchanged.
func FuzzSanitize(f *testing.F) {
	f.Add("ok\x1b[31m\nnext\xff")
	f.Add("émoji 🌱")
	f.Add("\u202e\u2028\x00")
	f.Fuzz(func(t *testing.T, s string) {
		got := Sanitize(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Sanitize(%q) = %q: invalid UTF-8", s, got)
		}
		printable := utf8.ValidString(s)
		for _, r := range s {
			printable = printable && unicode.IsPrint(r)
		}
		if printable && got != s {
			t.Fatalf("Sanitize(%q) = %q; printable text must pass unchanged", s, got)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) && r != ' ' {
				t.Fatalf("Sanitize(%q) = %q: holds %U", s, got, r)
			}
		}
	})
}
