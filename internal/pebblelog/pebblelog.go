// Package pebblelog is the Pebble logger Seedfleet's stores share: quiet
// about routine events (compactions, flushes), loud about errors, and
// counting them, so a damaged file never passes without a trace.
package pebblelog

import (
	"fmt"
	"log/slog"
	"sync/atomic"
)

// Logger passes Pebble's error logs to slog at error level, counts them, and
// drops its informational ones. Fatal logs (broken invariants: Pebble cannot
// go on) are logged and then panic, as Pebble expects; on-disk corruption
// never reaches Fatalf in Seedfleet's stores, whose event listeners handle it.
type Logger struct {
	log    *slog.Logger
	store  string
	errors atomic.Uint64
}

// New returns a logger for the store named store (e.g. "vaults"); a nil log
// means slog.Default().
func New(log *slog.Logger, store string) *Logger {
	if log == nil {
		log = slog.Default()
	}
	return &Logger{log: log, store: store}
}

// Errors is how many errors Pebble logged.
func (l *Logger) Errors() uint64 { return l.errors.Load() }

func (l *Logger) Infof(string, ...any) {}

func (l *Logger) Errorf(format string, args ...any) {
	l.errors.Add(1)
	l.log.Error("store error", "store", l.store, "err", fmt.Sprintf(format, args...))
}

func (l *Logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf("pebble: "+format, args...)
	l.log.Error("store failed", "store", l.store, "err", msg)
	panic(msg)
}
