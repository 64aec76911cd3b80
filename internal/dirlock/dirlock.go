package dirlock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// FileName is the lock file inside a locked directory.
const FileName = "lock"

// maxHolderBytes bounds how much of a lock file is read back: the file is
// written by another process and may be anything.
const maxHolderBytes = 512

// ErrHeld is what a HeldError matches with errors.Is.
var ErrHeld = errors.New("directory in use")

// HeldError says which process holds a directory. Kind and PID are what the
// holder wrote; they are empty and 0 when its lock file was unreadable.
type HeldError struct {
	Dir  string
	Kind string
	PID  int
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s is in use by %s", e.Dir, e.Holder())
}

// Holder names the holder for a message: "seedfleet sync --live (pid 42)".
func (e *HeldError) Holder() string {
	kind := e.Kind
	if kind == "" {
		kind = "another process"
	}
	if e.PID > 0 {
		return fmt.Sprintf("%s (pid %d)", kind, e.PID)
	}
	return kind
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Lock is a held directory lock; Release gives it up. The operating system
// releases it too when the process ends, so a crash leaves no stale lock.
type Lock struct {
	f *os.File
}

// Acquire locks dir (created with mode 0700 if missing) for this process and
// records kind (what the process is, e.g. "seed node") and its PID in the
// lock file. It does not wait: a directory another process holds returns a
// *HeldError naming that process.
func Acquire(dir, kind string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := tryLock(f); err != nil {
		defer f.Close()
		if errors.Is(err, errWouldBlock) {
			held := &HeldError{Dir: dir}
			held.Kind, held.PID = readHolder(f)
			return nil, held
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := writeHolder(f, kind); err != nil {
		unlock(f)
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release unlocks the directory. It is safe to call more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// The holder's lines stay in the file: only the lock says whether a
	// process holds the directory, and the next holder rewrites them.
	return errors.Join(unlock(f), f.Close())
}

func writeHolder(f *os.File, kind string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(fmt.Sprintf("pid %d\nkind %s\n", os.Getpid(), clean(kind))), 0)
	return err
}

// readHolder parses what writeHolder wrote; anything else yields "", 0.
func readHolder(f *os.File) (kind string, pid int) {
	b, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, 0, maxHolderBytes), maxHolderBytes))
	if err != nil {
		return "", 0
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch k {
		case "pid":
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				pid = n
			}
		case "kind":
			kind = clean(v)
		}
	}
	return kind, pid
}

// clean keeps a holder's kind printable and short: it ends up in messages.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > 80 {
		s = strings.ToValidUTF8(s[:80], "")
	}
	return strings.TrimSpace(s)
}
