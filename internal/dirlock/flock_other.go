//go:build !unix

package dirlock

import (
	"errors"
	"os"
)

// Elsewhere there is no advisory lock here: the stores' own locks still
// refuse a second process, without naming it.
var errWouldBlock = errors.New("would block")

const locks = false

func tryLock(*os.File) error { return nil }

func unlock(*os.File) error { return nil }
