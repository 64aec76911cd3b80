package cmd

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/seedfleet/seedfleet/seednode/vault"
)

func byteText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progressPrinter draws one updating status line on a terminal, and a line
// every few seconds otherwise (logs of a long first sync).
type progressPrinter struct {
	w        io.Writer
	ns       vault.NamespaceID
	quiet    bool
	tty      bool
	drawn    bool
	lastLine time.Time
}

func newProgressPrinter(w io.Writer, ns vault.NamespaceID, quiet bool) *progressPrinter {
	// Non-terminal output gets its first line after 2 s: short syncs stay quiet.
	return &progressPrinter{w: w, ns: ns, quiet: quiet, lastLine: time.Now(), tty: isTerminal(w)}
}

// isTerminal reports whether w is a terminal (progress redraws one line)
// rather than a file or pipe (progress prints a line every few seconds).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *progressPrinter) update(pr vault.Progress) {
	if p.quiet || pr.Phase == "done" {
		return
	}
	line := fmt.Sprintf("%s vault %s: received %d entries (%s), sent %d (%s)",
		pr.Phase, p.ns.Short(), pr.ItemsReceived, byteText(pr.BytesReceived), pr.ItemsSent, byteText(pr.BytesSent))
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	if time.Since(p.lastLine) >= 2*time.Second {
		p.lastLine = time.Now()
		fmt.Fprintln(p.w, line)
	}
}

func (p *progressPrinter) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// barPrinter draws a progress bar on a terminal, a line every few seconds otherwise.
type barPrinter struct {
	w     io.Writer
	label string
	tty   bool
	drawn bool
	last  time.Time
	start time.Time
}

func newBarPrinter(w io.Writer, label string) *barPrinter {
	return &barPrinter{w: w, label: label, last: time.Now(), start: time.Now(), tty: isTerminal(w)}
}

func (p *barPrinter) update(done, total uint64) { p.updateItems(done, total, 0, 0, "") }

// updateItems is update with a count of items (a collection's files)
// after the bytes: "12/40 files".
func (p *barPrinter) updateItems(done, total, items, itemsTotal uint64, itemName string) {
	now := time.Now()
	if (p.tty && now.Sub(p.last) < 100*time.Millisecond) || (!p.tty && now.Sub(p.last) < 2*time.Second) {
		return
	}
	p.last = now
	fmt.Fprint(p.w, p.line(now, done, total, items, itemsTotal, itemName))
}

// line is the bar's text: "\r\033[K<bar>" on a terminal, "<bar>\n" otherwise.
func (p *barPrinter) line(now time.Time, done, total, items, itemsTotal uint64, itemName string) string {
	frac := 0.0
	if total > 0 {
		frac = min(1, float64(done)/float64(total))
	}
	const width = 30
	filled := int(frac * width)
	rate := float64(done) / (1 << 20) / max(now.Sub(p.start).Seconds(), 1e-9)
	line := fmt.Sprintf("%s [%s%s] %5.1f%% %s / %s", p.label,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), 100*frac,
		byteText(int64(done)), byteText(int64(total)))
	if itemName != "" {
		line += fmt.Sprintf("  %d/%d %s", items, itemsTotal, itemName)
	}
	line += fmt.Sprintf("  %.0f MiB/s", rate)
	if p.tty {
		p.drawn = true
		return "\r\033[K" + line
	}
	return line + "\n"
}

func (p *barPrinter) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
