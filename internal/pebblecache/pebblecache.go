// Package pebblecache sizes the block caches of the Pebble databases of a
// seed and a device. Pebble counts its memtables against the block cache
// (each memtable reserves its size there while it exists), so a cache no
// larger than the memtables holds no table block at all once the database
// has taken writes, and every read goes to the files: Pebble's own default
// (an 8 MiB cache, two 4 MiB memtables) is such a cache.
package pebblecache

import "github.com/cockroachdb/pebble/v2"

// Attach gives o a block cache that holds blockBytes of table blocks on top
// of what o's memtables may take (MemTableSize times
// MemTableStopWritesThreshold, Pebble's defaults where o leaves them zero).
// Call release once pebble.Open has returned: the database holds its own
// reference.
func Attach(o *pebble.Options, blockBytes int64) (release func()) {
	d := &pebble.Options{MemTableSize: o.MemTableSize, MemTableStopWritesThreshold: o.MemTableStopWritesThreshold}
	d.EnsureDefaults()
	c := pebble.NewCache(blockBytes + int64(d.MemTableSize)*int64(d.MemTableStopWritesThreshold))
	o.Cache = c
	return c.Unref
}
