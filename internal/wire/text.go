package wire

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sanitize keeps a peer's text printable: invalid UTF-8 and every
// character that is neither printable nor white space become U+FFFD, and
// white space (a newline, a tab) becomes a plain space, so that no terminal
// escape or forged log line of a peer's making reaches a user's screen or
// a log.
func Sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsPrint(r):
			return r
		case unicode.IsSpace(r):
			return ' '
		}
		return '\uFFFD'
	}, s)
}

// ellipsis marks text that Truncate cut.
const ellipsis = "..."

// Truncate cuts s to at most limit bytes, "..." included, on a character
// boundary: valid UTF-8 stays valid. Text that fits is returned as is; a
// limit below 0 is 0. It bounds a peer's text, or an error quoting it,
// before it is sent, shown or logged.
func Truncate(s string, limit int) string {
	limit = max(limit, 0)
	if len(s) <= limit {
		return s
	}
	if limit < len(ellipsis) {
		return cutAtRune(s, limit)
	}
	return cutAtRune(s, limit-len(ellipsis)) + ellipsis
}

// cutAtRune returns s cut to at most n bytes (0 <= n < len(s)), backing up
// over the start of a valid character that would not fit whole: at most
// utf8.UTFMax-1 bytes, so stray continuation bytes of a hostile string do
// not make it give up everything before them.
func cutAtRune(s string, n int) string {
	for start := n; start >= 0 && start > n-utf8.UTFMax; start-- {
		if utf8.RuneStart(s[start]) {
			if _, size := utf8.DecodeRuneInString(s[start:]); start+size > n {
				return s[:start]
			}
			break
		}
	}
	return s[:n]
}
