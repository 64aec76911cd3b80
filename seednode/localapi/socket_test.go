package localapi

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestListenMode: the socket is this user's, mode 0600, whatever the
// umask, and Close removes it.
func TestListenMode(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(tempDir(t), "api.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v", fi.Mode())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("the directory holds %d entries, not just the socket", len(entries))
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestListenStaleAndLive: a socket left by a dead process is replaced; one
// a live process answers on is not.
func TestListenStaleAndLive(t *testing.T) {
	path := filepath.Join(tempDir(t), "api.sock")
	dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dead.SetUnlinkOnClose(false)
	dead.Close() // the file stays, nobody answers: what a killed serve leaves
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer ln.Close()
	if _, err := Listen(path); !errors.Is(err, ErrSocketInUse) {
		t.Fatalf("over a live socket: %v", err)
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the live socket stopped answering: %v", err)
	}
	conn.Close()
}

// TestListenRefuses: a directory others may write to, a file that is not
// a socket, a path too long.
func TestListenRefuses(t *testing.T) {
	open := tempDir(t)
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(filepath.Join(open, "api.sock")); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("in a world-writable directory: %v", err)
	}
	if err := os.Chmod(open, 0o770); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(filepath.Join(open, "api.sock")); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("in a group-writable directory: %v", err)
	}
	dir := tempDir(t)
	file := filepath.Join(dir, "api.sock")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("over a file: %v", err)
	}
	if raw, _ := os.ReadFile(file); string(raw) != "keep me" {
		t.Fatal("the file was touched")
	}
	if _, err := Listen(filepath.Join(dir, strings.Repeat("s", 100))); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("a long path: %v", err)
	}
}
