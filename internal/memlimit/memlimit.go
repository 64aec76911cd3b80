// Package memlimit gives the Go runtime a soft memory limit from the
// container's: a seed in a pod with a memory limit (or a container run with
// one) collects garbage harder as it nears the limit instead of being
// killed for exceeding it, which drops every live session and relayed
// circuit it holds.
//
// Decisions: the limit set is nine tenths of the cgroup's, leaving room for
// what the runtime does not count (cgo allocations, the kernel's page cache
// charged to the cgroup, thread stacks outside the heap); GOMEMLIMIT, when
// set, wins, as the Go runtime documents; the cgroup read is the process's
// own view (/sys/fs/cgroup in its cgroup namespace, as containers have it),
// cgroup v2 first, then v1.
package memlimit

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// CgroupRoot is where the process's cgroup files are mounted.
const CgroupRoot = "/sys/fs/cgroup"

// v1Unlimited: cgroup v1 reports no limit as a huge page-aligned number;
// anything past this is taken for none.
const v1Unlimited = math.MaxInt64 / 2

// FromCgroup reads the memory limit of the cgroup mounted at root: v2's
// memory.max, else v1's memory/memory.limit_in_bytes. ok is false when
// there is none (no file, "max", or v1's unlimited value).
func FromCgroup(root string) (limit int64, ok bool, err error) {
	for _, name := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		raw, err := os.ReadFile(filepath.Join(root, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		s := strings.TrimSpace(string(raw))
		if s == "max" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return 0, false, fmt.Errorf("%s holds %q, not a memory limit", filepath.Join(root, name), s)
		}
		if n >= v1Unlimited {
			return 0, false, nil
		}
		return n, true, nil
	}
	return 0, false, nil
}

// Apply sets the runtime's soft memory limit to nine tenths of the
// cgroup's at root unless GOMEMLIMIT is set. It returns the limit it set (0:
// none) and why it set none.
func Apply(root string) (set int64, why string, err error) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return 0, "GOMEMLIMIT=" + v + " is set", nil
	}
	limit, ok, err := FromCgroup(root)
	if err != nil {
		return 0, "", err
	}
	if !ok {
		return 0, "the cgroup has no memory limit", nil
	}
	set = limit / 10 * 9
	debug.SetMemoryLimit(set)
	return set, "", nil
}
