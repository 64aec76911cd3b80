//go:build e2e

/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Timeouts of the commands the test runs.
const (
	cliTimeout     = 30 * time.Second // key, vault, put, get of inline values
	syncTimeout    = 2 * time.Minute  // sync, and get of a blob from a seed
	kubectlTimeout = 30 * time.Second
)

// runCommand runs name with args, killed after timeout. It returns the
// standard output alone (what callers parse) and stdout and stderr
// interleaved as written (what a failure message shows).
func runCommand(ctx context.Context, timeout time.Duration, name string, args ...string) (stdout, combined string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	all := &lockedBuffer{}
	cmd.Stdout = io.MultiWriter(&out, all)
	cmd.Stderr = all
	// A child that keeps the pipes open must not hold the test past the timeout.
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%w (killed after %s)", err, timeout)
	}
	return out.String(), all.String(), err
}

// commandLine renders a command for messages, quoting what needs it.
func commandLine(name string, args []string) string {
	parts := []string{filepath.Base(name)}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// lockedBuffer is a bytes.Buffer that two copying goroutines (os/exec's
// stdout and stderr) may write at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// device is one device of the walk-through: the seedfleet CLI with its own
// home directory (device key, vault keys, local replica, blobs).
type device struct {
	name string
	home string
	bin  string
}

// run runs a seedfleet subcommand as this device and returns its standard
// output; an error carries the command line and everything it printed.
func (d *device) run(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	args = append(args, "--home", d.home)
	stdout, combined, err := runCommand(ctx, timeout, d.bin, args...)
	if err != nil {
		return stdout, fmt.Errorf("device %s: %s: %w\n--- output ---\n%s", d.name, commandLine(d.bin, args), err, combined)
	}
	return stdout, nil
}

// must is run, failing the test on error.
func (d *device) must(t *testing.T, ctx context.Context, timeout time.Duration, args ...string) string {
	t.Helper()
	out, err := d.run(ctx, timeout, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
