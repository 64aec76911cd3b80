package localapi

import "time"

// Options tune the API; zero values take the defaults.
type Options struct {
	// MaxBody bounds a request body (default 8 MiB).
	MaxBody int64
	// Heartbeat is how often a watch stream sends a comment line when
	// nothing changed (default 15 s), so clients and proxies see it alive.
	Heartbeat time.Duration
	// MaxDocuments bounds the documents open at once (default 256); the
	// least recently used one nobody holds is closed to open another.
	MaxDocuments int
	// Logf reports what goes wrong outside a request.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() Options {
	if o.MaxBody <= 0 {
		o.MaxBody = 8 << 20
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.MaxDocuments <= 0 {
		o.MaxDocuments = 256
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}
