package blobs

import (
	"os"
	"syscall"
)

// openDirect opens path for writing with direct I/O, or returns nil where
// the filesystem does not offer it (tmpfs on older kernels, some FUSE and
// network filesystems): the writer then goes through the page cache only.
func openDirect(path string) *os.File {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}
