// Package client is what a device embeds: a home directory holding the
// device's key, the vaults it created (their namespace keys) and a local
// replica store; signed writes; and sync with seeds or other devices.
//
// One process at a time holds a home (Open takes a lock whose file names the
// holder, so the next one is told which process to stop), and MustExist keeps
// a mistyped directory from becoming a new device. The home also remembers
// which peers served each vault and the addresses that reached each peer, so
// a stale address of a known peer still finds it.
package client
