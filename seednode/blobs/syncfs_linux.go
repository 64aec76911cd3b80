package blobs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// syncFiles makes a batch's files and their directory entries durable with
// one syncfs(2) of the store's filesystem: it writes back every dirty page
// and commits the journal, so the new files' names are durable too. Other
// writers' dirty pages on the same filesystem are written back as well;
// per-file fsyncs would instead commit the journal once per file.
func (s *Store) syncFiles(batch *pendingBatch) error {
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	err = unix.Syncfs(int(d.Fd()))
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		return syncFilesEach(batch)
	}
	return err
}
