// Package dirlock lets one process at a time use a directory (a device home,
// a seed's data directory) and tells the next one who holds it. Pebble's own
// lock only says "resource temporarily unavailable"; this lock is taken first
// and its file records the holder's kind and PID, so the refusal names the
// process to stop.
package dirlock
