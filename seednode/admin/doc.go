// Package admin is a seed node's small admin HTTP API and its client, used by
// the operator to read each pod's state and to tell it which vaults to host.
//
// Endpoints (paths in paths.go):
//
//	GET  /healthz           200 "ok" while the process is alive
//	GET  /readyz            200 "ready", or 503 with the reason as text
//	GET  /metrics           Prometheus metrics of the registry given to New
//	GET  /status            Status as JSON (500 with an ErrorResponse on error)
//	GET  /v1/hosted-vaults  HostedVaults as JSON
//	PUT  /v1/hosted-vaults  replace the placement → 204:
//	                        {"vaults": ["<namespace ID>", ...],
//	                         "peers": {"<namespace ID>": ["<multiaddr>/p2p/<peer ID>", ...]},
//	                         "options": {"<namespace ID>": {"maxEntries": N, "maxBytes": N, "noRelay": true}}}
//	GET  /v1/fleet          FleetStatus as JSON: this pod's part of a public fleet (404 outside one)
//	POST /v1/fleet/invites  mint an invite ticket → 201 Invite: {"uses": N, "expiresIn": "72h"}
//	                        (token required; 409 when the fleet has no key or does not admit by invite)
//	PUT  /v1/fleet/members  apply a membership now → 200 {"members": version}: FleetMembers
//	                        {"self", "members", "leaving", "replicas"} (token required; 400 when it is
//	                        not this pod's or cannot be used)
//
// Other methods get 405 with an Allow header. PUT bodies are limited to 1 MiB,
// unknown fields are refused, every vault must be a canonical namespace ID
// (52 lowercase base32 characters), and "peers" (optional) may name only
// listed vaults, each with at most MaxPeersPerVault full multiaddrs of the
// other seeds hosting it; "options" (optional) may name only listed vaults
// (see VaultOptions); bad input gets 400 with an ErrorResponse naming the
// problem and changes nothing. PUT requires "Authorization: Bearer <token>"
// with the WithToken token (401 otherwise); a Server without a token answers
// every PUT with 403 and refuses (ErrNoToken) to listen anywhere but on
// loopback. GET endpoints stay open: the kubelet and Prometheus read them. A
// seed always has a token: its admin.tokenFile, or one it generates into its
// data directory; ReadToken reads either.
//
// The Client retries connection errors and 5xx answers (3 attempts, backoff
// from 100 ms doubling), never 4xx, and bounds every request with a timeout
// (5 s by default) and every response to 4 MiB. Its errors name the method,
// the endpoint and the status code; see HTTPError and ErrNotReady.
package admin
