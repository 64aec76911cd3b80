//go:build unix

package dirlock

import (
	"os"
	"syscall"
)

var errWouldBlock error = syscall.EWOULDBLOCK

// locks says whether Acquire really excludes other holders here.
const locks = true

func tryLock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}

func unlock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
