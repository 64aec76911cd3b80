package admin

// The admin API's paths, shared by Server and Client (and the operator).
const (
	// PathHealthz answers 200 "ok" while the process is alive.
	PathHealthz = "/healthz"
	// PathReadyz answers 200 "ready", or 503 with the reason as text.
	PathReadyz = "/readyz"
	// PathMetrics serves the Prometheus text exposition of the given registry.
	PathMetrics = "/metrics"
	// PathStatus answers the seed's Status as JSON.
	PathStatus = "/status"
	// PathHostedVaults reads (GET) and replaces (PUT) the hosted vault list as
	// HostedVaults JSON.
	PathHostedVaults = "/v1/hosted-vaults"
	// PathVerify (POST, with the token) starts a verification of every vault
	// replica the seed holds; Status.Integrity tells when it ended.
	PathVerify = "/v1/verify"
	// PathDebugPprof (GET, with the token) serves Go's runtime profiles as
	// net/http/pprof does: heap, goroutine, profile?seconds=N (N < 30), ...
	PathDebugPprof = "/debug/pprof/"
)
