// Package client is what a device embeds: a home directory holding the
// device's key, the vaults it created (their namespace keys) and a local
// replica store; signed writes; and sync with seeds or other devices.
package client
