// Package benchutil holds what Seedfleet's benchmark drivers share: the
// BENCH line format (and the crash suite's CRASH lines), medians, CPU and
// memory accounting from /proc, load average, CPU profiles of child
// processes, and a build of the seedfleet binary to run as one.
package benchutil

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ClockTicks is USER_HZ, the unit of /proc times (100 on Linux).
const ClockTicks = 100

// Bench prints one figure as "BENCH <name> <value> <unit>".
func Bench(name string, value float64, unit string) {
	fmt.Printf("BENCH %s %s %s\n", name, strconv.FormatFloat(value, 'f', -1, 64), unit)
}

// Loadavg is the machine's load average (1, 5 and 15 minutes).
func Loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// MachineCPU is the user+system CPU seconds of all CPUs since boot
// (/proc/stat; interrupts and steal not included).
func MachineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle ...
	var busy float64
	for _, v := range f[1:4] {
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	return busy / ClockTicks
}

// Median is the middle value of xs (xs is not modified).
func Median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// ProcStatus returns a "Vm..." field of /proc/<pid>/status in bytes.
func ProcStatus(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// Round rounds v to digits decimals.
func Round(v float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return f
}

// SelfCPU is this process's user+sys CPU seconds, at microsecond resolution.
func SelfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// StartProfile writes a CPU profile to prefix.name.PID.pprof until the
// returned function is called (a no-op when prefix is empty).
func StartProfile(prefix, name string) func() {
	if prefix == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%s.%d.pprof", prefix, name, os.Getpid()))
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// ProcCPU is the user+sys CPU seconds of a whole process (all threads); 0
// for pid 0.
func ProcCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatalf("cpu time of %d: %v", pid, err)
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, _ := strconv.ParseFloat(f[11], 64) // field 14
	stime, _ := strconv.ParseFloat(f[12], 64) // field 15
	return (utime + stime) / ClockTicks
}

// Settle flushes dirty pages left by earlier steps and lets writeback
// finish, so each measured run starts from the same state instead of paying
// for its predecessors' writes.
func Settle() {
	syscall.Sync()
	time.Sleep(300 * time.Millisecond)
}

// MiB converts bytes to MiB.
func MiB(b int64) float64 { return float64(b) / (1 << 20) }

// Label names a size as the BENCH names do: 1g, 256m, 8m.
func Label[T int64 | uint64](size T) string {
	if size >= 1<<30 && size%(1<<30) == 0 {
		return fmt.Sprintf("%dg", size>>30)
	}
	return fmt.Sprintf("%dm", size>>20)
}

// RunsLine prints the runs of a figure (digits decimals) as a # line.
func RunsLine(name string, xs []float64, unit string, digits int) {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', digits, 64)
	}
	fmt.Printf("# %s runs: %s %s (median reported)\n", name, strings.Join(parts, " "), unit)
}

// Count prints a count as "<TAG> <name> <n>": the crash suite's CRASH lines,
// read like BENCH lines.
func Count(tag, name string, n int) {
	fmt.Printf("%s %s %d\n", tag, name, n)
}

// BuildSeedfleet builds the seedfleet binary of the module the caller runs
// in (static, CGO_ENABLED=0, -trimpath) into dir and returns its path, for
// drivers that run the real binary as separate processes.
func BuildSeedfleet(dir string) (string, error) {
	bin := filepath.Join(dir, "seedfleet")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/seedfleet/seedfleet")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// Parts reads a driver's -only flag (parts separated by commas; none: all
// of them) and reports whether a part runs.
func Parts(only string) func(part string) bool {
	parts := map[string]bool{}
	for _, p := range strings.Split(only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts[p] = true
		}
	}
	return func(p string) bool { return len(parts) == 0 || parts[p] }
}
