//go:build !linux

package blobs

import "io"

// readVectored fills iov from r at off, a ReadAt per buffer.
func readVectored(r io.ReaderAt, iov [][]byte, off uint64) error {
	return readAtAll(r, iov, off)
}
