package dirlock

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestHelperHoldLock is run as a child process by TestHeldByAnotherProcess:
// flock locks belong to open files, so a second process is the real case.
func TestHelperHoldLock(t *testing.T) {
	dir := os.Getenv("DIRLOCK_HOLD")
	if dir == "" {
		t.Skip("only run as a child process")
	}
	l, err := Acquire(dir, "seedfleet sync --live")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	defer l.Release()
	fmt.Println("held")
	os.Stdin.Read(make([]byte, 1)) // hold until the parent closes stdin
}

func TestHeldByAnotherProcess(t *testing.T) {
	if !locks {
		t.Skip("no advisory file locks on this system")
	}
	dir := filepath.Join(t.TempDir(), "home")
	child := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	child.Env = append(os.Environ(), "DIRLOCK_HOLD="+dir)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	defer stdin.Close()
	buf := make([]byte, 64)
	n, _ := stdout.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "held") {
		t.Fatalf("child did not take the lock: %q", buf[:n])
	}

	_, err = Acquire(dir, "seedfleet list")
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second holder: %v, want a HeldError", err)
	}
	if held.Kind != "seedfleet sync --live" || held.PID != child.Process.Pid {
		t.Fatalf("holder %q pid %d, want seedfleet sync --live pid %d", held.Kind, held.PID, child.Process.Pid)
	}
	if want := "in use by seedfleet sync --live (pid " + strconv.Itoa(child.Process.Pid) + ")"; !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q lacks %q", err, want)
	}

	stdin.Close()
	if err := child.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	l, err := Acquire(dir, "seedfleet list")
	if err != nil {
		t.Fatalf("after the holder ended: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
}

// TestReadHolderHostile: the lock file is another process's writing; any
// content gives a message, never a panic or a line of garbage.
func TestReadHolderHostile(t *testing.T) {
	for name, content := range map[string]string{
		"empty":      "",
		"garbage":    "\x00\xff\xfe pid -3\nkind \x1b[31mred\n",
		"huge":       "kind " + strings.Repeat("x", 10000) + "\npid 7\n",
		"no newline": "pid 12",
		"bad pid":    "pid 99999999999999999999999\n",
	} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), FileName))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(content); err != nil {
				t.Fatal(err)
			}
			kind, pid := readHolder(f)
			if pid < 0 || len(kind) > 80 || strings.ContainsAny(kind, "\x00\x1b\n") {
				t.Fatalf("kind %q pid %d", kind, pid)
			}
			_ = (&HeldError{Dir: "d", Kind: kind, PID: pid}).Error()
		})
	}
}

func TestSameProcessTwice(t *testing.T) {
	if !locks {
		t.Skip("no advisory file locks on this system")
	}
	dir := t.TempDir()
	l, err := Acquire(dir, "seed node")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("pid %d\nkind seed node\n", os.Getpid()); string(b) != want {
		t.Fatalf("lock file %q, want %q", b, want)
	}
	// flock locks belong to the open file: a second open in the same
	// process is refused as well, as a second command would be.
	if _, err := Acquire(dir, "seed node"); !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire: %v, want ErrHeld", err)
	}
}
