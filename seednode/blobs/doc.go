// Package blobs is Seedfleet's content-addressed blob store and its verified
// streaming protocol /seedfleet/blobs/1.0.0. Blobs are named by their BLAKE3
// hash; beside each one the store keeps a Bao outboard (the hash tree at
// 16 KiB chunk-group granularity), so any set of byte ranges can be sent with
// the tree nodes that let the receiver verify every 16 KiB group before it
// writes it. Partial blobs remember which groups are verified, across
// restarts, so a transfer resumes where it stopped.
//
// A receiver reads each group from the stream straight into its write
// buffer, verifies it there and hands whole buffers to a writer goroutine;
// on Linux, where the filesystem allows it, the writer uses direct I/O
// (O_DIRECT) for the aligned part of each buffer, so a transfer spends no CPU
// copying into the page cache or writing it back. Every 4 MiB the data and
// outboard are fsynced, in the background, before the bitmap pages that
// changed are recorded, so a crash never marks a group that is not on disk
// and makes a resumed transfer fetch again at most 16 MiB of verified groups.
//
// A collection (a blob listing named members) is fetched with its small
// members pipelined on one stream, /seedfleet/blobs/pipeline/1.0.0, and
// made durable a batch at a time: appended to one pack file per batch,
// which is fsynced before one Pebble batch records its members complete
// (see batchWriter), so a member costs neither a round trip nor a sync.
//
// A Scrubber verifies complete blobs against their hash at a bounded rate,
// and WriteStream checks what it sends from the store; a group that fails
// makes the blob partial again without that group (see Damage), so it is
// neither served nor reported complete until fetched again.
//
// Two BLAKE3 libraries, each for what the other lacks: github.com/zeebo/blake3
// (SIMD assembly) hashes whole inputs everywhere in Seedfleet, blob content
// included; lukechampine.com/blake3's guts and bao packages give the
// chunk-group and parent compressions that build and check an outboard tree
// at 16 KiB groups, which zeebo/blake3 does not expose.
package blobs
