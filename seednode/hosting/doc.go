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
//   - An Open fleet with a key (fleet.keyFile) honours invite tickets too:
//     an invited agent is admitted past the fleet's admissions per second,
//     so a flood of fresh keys cannot starve the agents its operators
//     invited, but not past the invite's uses, the per-agent limits or the
//     pod's vault limit.
//
// Trust between pods: the fleet's pods are the peers the fleet's
// configuration lists (the operator writes every pod's peer ID), and a
// stream's remote peer is authenticated by the libp2p handshake (the peer
// proved it holds that peer ID's key). A home pod that accepted a request
// checked its signature, the signer's authority and the invite before it
// passes the request on; the other home pods take the request from a listed
// pod without checking the signatures again (they still check freshness,
// replays, the agent document they hold, the limits, and that they are
// home pods of the subject), which saves two signature checks per
// admission. This trusts nothing the fleet did not already trust: a pod
// can write any record into its own store, holds replicas of the vaults it
// hosts, and could admit subjects of its own making in an Open fleet
// anyway; it cannot forge entries in anyone's vault, which the namespace
// and author keys sign end to end. The same holds for the records a pod
// sends to a subject's new home pods when the fleet scales, and for the
// vault states pods report to each other, which they answer only to listed
// pods. A pod outside the list is refused all three.
//
// Accepted requests and records travel between pods in batches, one queue
// per peer pod (fanout.go): at thousands of admissions a second that is a
// few streams a second between two pods, not one per admission. A batch
// that fails is not retried: the record exchange (reconcile.go,
// RecordProtocol) finds what a pod missed, by comparing digests of the
// records two pods share, and sends it through the same batches. Only
// listed pods may ask for it, and it reveals to a pod only the versions of
// the records it shares.
package hosting
