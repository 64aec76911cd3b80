// Package fleet holds what every pod of a seed fleet computes alike, with no
// object per vault anywhere: where a vault lives (rendezvous hashing over
// the pods' ordinals, R replicas) and how that changes when the fleet
// scales; a keyed set digest of the (vault, fingerprint) pairs two pods
// share, so they find the vaults that differ in one exchange instead of a
// session per vault, and that exchange's protocol (used for the hosting
// records two pods share too); and the admission policies. The operator places
// administrator-managed vaults (AgentVault) with the same functions that
// pods use for self-service vaults, so both kinds share one placement.
package fleet
