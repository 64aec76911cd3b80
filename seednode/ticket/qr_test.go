package ticket

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"rsc.io/qr"
)

// readHalfBlocks turns QR's output back into a module grid (true = dark),
// checking the colour escapes around every line.
func readHalfBlocks(t *testing.T, out string) [][]bool {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatal("output does not end with a line break")
	}
	var grid [][]bool
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		body, ok := strings.CutPrefix(line, "\x1b[30;47m")
		if !ok {
			t.Fatalf("line %d does not start by setting black on white: %q", i, line)
		}
		if body, ok = strings.CutSuffix(body, "\x1b[0m"); !ok {
			t.Fatalf("line %d does not end by resetting the colours: %q", i, line)
		}
		top, bottom := []bool{}, []bool{}
		for _, r := range body {
			switch r {
			case ' ':
				top, bottom = append(top, false), append(bottom, false)
			case '▀':
				top, bottom = append(top, true), append(bottom, false)
			case '▄':
				top, bottom = append(top, false), append(bottom, true)
			case '█':
				top, bottom = append(top, true), append(bottom, true)
			default:
				t.Fatalf("line %d has %q", i, r)
			}
		}
		grid = append(grid, top, bottom)
	}
	return grid
}

func TestQR(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		// Expected size from the QR capacity tables at level L:
		// columns = 4·version + 17 + 2·4 (quiet zone), lines = ⌈columns/2⌉.
		cols, lines int
	}{
		{"hello: version 1", "hello", 29, 15},
		{"doc ticket, bytes: version 7", goldenDocText, 53, 27},
		{"doc ticket upper case, alphanumeric: version 5", strings.ToUpper(goldenDocText), 45, 23},
		{"empty", "", 29, 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := QR(&buf, tc.text); err != nil {
				t.Fatal(err)
			}
			out := buf.String()

			// Deterministic.
			var again bytes.Buffer
			if err := QR(&again, tc.text); err != nil || again.String() != out {
				t.Fatalf("second rendering differs (err %v)", err)
			}

			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != tc.lines {
				t.Fatalf("%d lines, want %d", len(lines), tc.lines)
			}
			for i, l := range lines {
				if n := utf8.RuneCountInString(strings.TrimSuffix(strings.TrimPrefix(l, "\x1b[30;47m"), "\x1b[0m")); n != tc.cols {
					t.Fatalf("line %d is %d columns, want %d", i, n, tc.cols)
				}
			}
			// The top-left finder pattern, drawn independently of readHalfBlocks:
			// module rows 4-5 are its solid top edge over "dark, 5 light, dark",
			// rows 6-7 are "dark, light, 3 dark, light, dark" twice.
			quiet := strings.Repeat(" ", tc.cols)
			if lines[0] != "\x1b[30;47m"+quiet+"\x1b[0m" || lines[1] != lines[0] {
				t.Fatalf("no quiet zone on top: %q", lines[:2])
			}
			if !strings.HasPrefix(lines[2], "\x1b[30;47m    █▀▀▀▀▀█ ") || !strings.HasPrefix(lines[3], "\x1b[30;47m    █ ███ █ ") {
				t.Fatalf("finder pattern not where expected:\n%s\n%s", lines[2], lines[3])
			}

			// Every module matches the library's matrix; the margins are light.
			code, err := qr.Encode(tc.text, qr.L)
			if err != nil {
				t.Fatal(err)
			}
			if want := code.Size + 8; want != tc.cols {
				t.Fatalf("library made a %d-module code, test expects %d columns", code.Size, tc.cols)
			}
			grid := readHalfBlocks(t, out)
			if len(grid) != 2*tc.lines {
				t.Fatalf("%d module rows", len(grid))
			}
			for y, row := range grid {
				for x, dark := range row {
					mx, my := x-4, y-4
					want := 0 <= mx && mx < code.Size && 0 <= my && my < code.Size && code.Black(mx, my)
					if dark != want {
						t.Fatalf("module (%d, %d): dark = %v, want %v", mx, my, dark, want)
					}
				}
			}
		})
	}
}

func TestQRTooLong(t *testing.T) {
	var buf bytes.Buffer
	if err := QR(&buf, strings.Repeat("x", 3000)); err == nil {
		t.Fatal("3000 bytes do not fit in a QR code")
	}
	if buf.Len() != 0 {
		t.Fatal("QR wrote part of a code before failing")
	}
}
