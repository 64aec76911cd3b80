// Package hosting is self-service hosting on a public fleet: the signed
// request a device sends to ask a fleet to keep an agent's vaults (or to
// report on them, or release them), the answer it gets, and the checks a seed
// makes before it believes a request (signature by the agent's root key, a
// device key its agent document lists, or a plain vault's namespace key;
// freshness; no replay).
//
// Decisions:
//   - An agent's self-service vaults are placed by the agent's root key, not
//     by each vault: the same R pods hold all of them, so per-agent quotas and
//     the replay check have one home and need no coordination between pods.
//     A plain vault (no agent) is placed by its namespace key.
//   - A request names the fleet it is for, so a request signed for one fleet
//     cannot be replayed at another; within a fleet a (subject, nonce) is
//     accepted once, and only within MaxClockSkew of the seed's clock.
//   - A device key is checked against the newest agent document the fleet
//     knows: the one the request carries, or a newer one the agent's vault
//     already holds. A revoked key is refused whatever the request's time.
//   - An agent may ask the fleet to host any vault namespace it names: hosting
//     only lets the seeds hold entries the namespace's own key signed, and the
//     vault counts against the asking agent's quota.
package hosting
