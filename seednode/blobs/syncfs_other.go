//go:build !linux

package blobs

// syncFiles makes a batch's files and their directory entries durable.
func (s *Store) syncFiles(batch *pendingBatch) error { return syncFilesEach(batch) }
