// Package blobs is Seedfleet's content-addressed blob store and its verified
// streaming protocol /seedfleet/blobs/1.0.0. Blobs are named by their BLAKE3
// hash; beside each one the store keeps a Bao outboard (the hash tree at
// 16 KiB chunk-group granularity), so any set of byte ranges can be sent with
// the tree nodes that let the receiver verify every 16 KiB group before it
// writes it. Partial blobs remember which groups are verified, across
// restarts, so a transfer resumes where it stopped.
package blobs
