package ticket

import (
	"fmt"
	"io"
	"strings"

	"rsc.io/qr"
)

// Terminal rendering of QR codes.
const (
	// qrQuietZone is the light margin around the code, in modules (the QR
	// specification asks for 4).
	qrQuietZone = 4
	// qrColors sets black ink on a white background for the rest of the line;
	// qrReset restores the terminal's colours before each line break.
	qrColors = "\x1b[30;47m"
	qrReset  = "\x1b[0m"
)

// QR writes text as a QR code (error correction level L) drawn with Unicode
// half blocks, two modules per character row, with a 4-module quiet zone.
//
// The code is always black on white, whatever the terminal's theme: each line
// sets black foreground on white background with an ANSI colour escape and
// resets it before its line break. Light modules and the quiet zone are spaces
// (the white background); dark modules are the black ink of "▀", "▄" and "█".
// Drawing with the terminal's default colours instead would show the code
// inverted on either light or dark terminals, which many scanners cannot read.
//
// Tickets parse in any letter case, so strings.ToUpper(ticket) makes a smaller
// code: upper-case base32 fits the QR alphanumeric mode. QR writes nothing if
// the text does not fit in a QR code.
func QR(w io.Writer, text string) error {
	code, err := qr.Encode(text, qr.L)
	if err != nil {
		return fmt.Errorf("cannot draw a QR code of %d bytes: %w", len(text), err)
	}
	_, err = io.WriteString(w, renderHalfBlocks(code.Size, code.Black))
	return err
}

// renderHalfBlocks draws a size×size module matrix (dark(x, y) is true for a
// dark module) with a quiet zone, two module rows per line.
func renderHalfBlocks(size int, dark func(x, y int) bool) string {
	dim := size + 2*qrQuietZone
	at := func(x, y int) bool {
		x, y = x-qrQuietZone, y-qrQuietZone
		return 0 <= x && x < size && 0 <= y && y < size && dark(x, y)
	}
	var b strings.Builder
	b.Grow((dim + 1) / 2 * (len(qrColors) + 3*dim + len(qrReset) + 1))
	for y := 0; y < dim; y += 2 {
		b.WriteString(qrColors)
		for x := range dim {
			top, bottom := at(x, y), at(x, y+1) // row dim is past the end: light
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteString(qrReset)
		b.WriteByte('\n')
	}
	return b.String()
}
