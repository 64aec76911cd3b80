package localapi

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultSocketName is the socket's name inside the device's home.
const DefaultSocketName = "api.sock"

// DefaultSocket is the socket path for the device home dir.
func DefaultSocket(home string) string { return filepath.Join(home, DefaultSocketName) }

// maxSocketPath leaves room, within the 104 bytes of the smallest
// sockaddr_un, for the temporary name the socket is created under.
const maxSocketPath = 90

// ErrSocketInUse: a live process answers on the socket path.
var ErrSocketInUse = errors.New("a live process answers on this socket")

// Listener is the API's Unix socket. Close removes the socket file if it is
// still the one Listen made.
type Listener struct {
	*net.UnixListener
	path string
	made os.FileInfo
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket file.
func (l *Listener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.made) {
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Listen makes a Unix socket at path that only this user may connect to
// (mode 0600). It refuses a directory others may write to (they could
// swap the socket for their own), removes a stale socket a dead process
// left, and refuses one a live process answers on (ErrSocketInUse). The
// socket is made under a temporary name in a private directory, restricted,
// then linked into place: it is never reachable with looser permissions,
// and a socket another process puts at path meanwhile is never replaced.
func Listen(path string) (*Listener, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("socket path %s: %d bytes, at most %d for a Unix socket here: choose a shorter one", path, len(path), maxSocketPath)
	}
	if err := checkParent(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".api-")
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	ln, err := bindPrivate(filepath.Join(tmp, "s"))
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	made, err := place(filepath.Join(tmp, "s"), path)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Listener{UnixListener: ln, path: path, made: made}, nil
}

// bindPrivate listens at tmp and restricts the socket file to this user.
func bindPrivate(tmp string) (*net.UnixListener, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // the file moves: Listener.Close removes it
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// place links the socket at tmp to path (failing if anything is there) and
// checks what path then is: this user's socket, mode 0600.
func place(tmp, path string) (os.FileInfo, error) {
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("socket %s: another process made it just now: %w", path, ErrSocketInUse)
		}
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	if err := checkOwnSocket(path, fi); err != nil {
		os.Remove(path)
		return nil, err
	}
	return fi, nil
}

// checkOwnSocket: path is a socket of this user's, mode 0600.
func checkOwnSocket(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 || !ok || int(st.Uid) != os.Getuid() {
		return fmt.Errorf("socket %s is %v after creation, not this user's socket with mode 0600: refusing it", path, fi.Mode())
	}
	return nil
}

// checkParent refuses a directory that other users may write to, or that
// another user (but root) owns.
func checkParent(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("socket directory %s is writable by other users (mode %v): another user could replace the socket; choose a directory only you can write to", dir, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() && st.Uid != 0 {
		return fmt.Errorf("socket directory %s belongs to another user (uid %d): choose one of yours", dir, st.Uid)
	}
	return nil
}

// clearStale removes a socket at path that no process answers on, and
// refuses anything else there.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket: remove it or choose another socket path", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
		return fmt.Errorf("socket %s belongs to another user: choose another socket path", path)
	}
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("socket %s: %w (another seedfleet serve?): stop it, or choose another socket path", path, ErrSocketInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stale socket %s: %w", path, err)
	}
	return nil
}
