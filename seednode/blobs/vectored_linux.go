package blobs

import (
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// readVectored fills iov from r at off: with one preadv per call (looping
// only on short reads) when r is a file, else with a ReadAt per buffer.
func readVectored(r io.ReaderAt, iov [][]byte, off uint64) error {
	f, ok := r.(syscall.Conn) // *os.File, storedData
	if !ok {
		return readAtAll(r, iov, off)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return readAtAll(r, iov, off)
	}
	for len(iov) > 0 {
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			for {
				n, rerr = unix.Preadv(int(fd), iov, int64(off))
				if rerr != unix.EINTR {
					return true
				}
			}
		}); err != nil {
			return err
		}
		if rerr != nil {
			return rerr
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		off += uint64(n)
		for n > 0 {
			if n < len(iov[0]) {
				iov[0] = iov[0][n:]
				break
			}
			n -= len(iov[0])
			iov = iov[1:]
		}
	}
	return nil
}
