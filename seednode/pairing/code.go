package pairing

import (
	"crypto/rand"
	"errors"
	"fmt"
)

// Code is a pairing code: 8 symbols of Crockford's base32 (40 bits), kept
// in canonical form (upper case, no separator) and displayed as
// "XXXX-XXXX". It is a low-entropy secret: the PAKE makes each guess cost an
// online attempt, and the new device allows MaxAttempts of them.
type Code string

// codeSymbols is the number of symbols of a code; codeBytes its binary size.
const (
	codeSymbols = 8
	codeBytes   = codeSymbols * 5 / 8
	// maxCodeInput bounds the text ParseCode looks at, separators included.
	maxCodeInput = 64
)

// crockford is Crockford's base32 alphabet: digits and upper-case letters
// without I, L, O and U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ErrInvalidCode is wrapped by every error of ParseCode.
var ErrInvalidCode = errors.New("invalid pairing code")

// NewCode returns a random code.
func NewCode() (Code, error) {
	var b [codeBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pairing: new code: %w", err)
	}
	return codeFromBytes(b), nil
}

// ParseCode parses a code as a user types it: letter case, '-' and
// whitespace are ignored, and the letters Crockford's base32 leaves out
// because they look like digits are read as those digits (O as 0, I and L
// as 1). The error says which character is wrong or how many are missing;
// it wraps ErrInvalidCode.
func ParseCode(s string) (Code, error) {
	if len(s) > maxCodeInput {
		return "", fmt.Errorf("%w: %d characters is too long for a code (%d symbols, like ABCD-EFGH)", ErrInvalidCode, len(s), codeSymbols)
	}
	out := make([]byte, 0, codeSymbols)
	pos := 0 // in characters as typed, separators included
	for _, r := range s {
		pos++
		switch {
		case r == '-' || r == ' ' || r == '\t' || r == '\n' || r == '\r':
			continue
		case 'a' <= r && r <= 'z':
			r -= 'a' - 'A'
		}
		switch r {
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		case 'U':
			return "", fmt.Errorf("%w: the letter U at position %d is not used in codes", ErrInvalidCode, pos)
		}
		if r >= 0x80 || symbolValue(byte(r)) < 0 {
			return "", fmt.Errorf("%w: character %q at position %d is not used in codes (they use 0-9 and A-Z without U)", ErrInvalidCode, r, pos)
		}
		out = append(out, byte(r))
	}
	switch {
	case len(out) == 0:
		return "", fmt.Errorf("%w: empty code", ErrInvalidCode)
	case len(out) < codeSymbols:
		return "", fmt.Errorf("%w: %d symbols, a code has %d: some are missing", ErrInvalidCode, len(out), codeSymbols)
	case len(out) > codeSymbols:
		return "", fmt.Errorf("%w: %d symbols, a code has %d: some are extra", ErrInvalidCode, len(out), codeSymbols)
	}
	return Code(out), nil
}

// String returns the code as it is displayed, "XXXX-XXXX". A Code that is
// not canonical is first parsed; one that does not parse is returned as is.
func (c Code) String() string {
	p, err := ParseCode(string(c))
	if err != nil {
		return string(c)
	}
	return string(p[:codeSymbols/2]) + "-" + string(p[codeSymbols/2:])
}

// canonical returns c in canonical form, or an error saying why it is not a
// code.
func (c Code) canonical() (Code, error) {
	if len(c) == codeSymbols && c.isCanonical() {
		return c, nil
	}
	return ParseCode(string(c))
}

func (c Code) isCanonical() bool {
	for i := 0; i < len(c); i++ {
		if symbolValue(c[i]) < 0 {
			return false
		}
	}
	return len(c) == codeSymbols
}

// bytes returns the 40 bits of a canonical code, big-endian.
func (c Code) bytes() [codeBytes]byte {
	var v uint64
	for i := 0; i < codeSymbols; i++ {
		v = v<<5 | uint64(symbolValue(c[i]))
	}
	var b [codeBytes]byte
	for i := codeBytes - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

func codeFromBytes(b [codeBytes]byte) Code {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	out := make([]byte, codeSymbols)
	for i := codeSymbols - 1; i >= 0; i-- {
		out[i] = crockford[v&31]
		v >>= 5
	}
	return Code(out)
}

// symbolValue returns the value of a canonical symbol, or -1.
func symbolValue(c byte) int {
	for i := 0; i < len(crockford); i++ {
		if crockford[i] == c {
			return i
		}
	}
	return -1
}
