package admin

import (
	"log/slog"
	"net/http"
	"time"
)

// Option configures a Server (New).
type Option interface{ applyServer(*serverConfig) }

// ClientOption configures a Client (NewClient).
type ClientOption interface{ applyClient(*clientConfig) }

type serverOptionFunc func(*serverConfig)

func (f serverOptionFunc) applyServer(c *serverConfig) { f(c) }

type clientOptionFunc func(*clientConfig)

func (f clientOptionFunc) applyClient(c *clientConfig) { f(c) }

// TokenOption is returned by WithToken; it is both an Option and a ClientOption.
type TokenOption struct{ token string }

func (o TokenOption) applyServer(c *serverConfig) { c.token, c.tokenSet = o.token, true }
func (o TokenOption) applyClient(c *clientConfig) { c.token = o.token }

// WithToken sets the bearer token. On a Server, PUT requests must carry
// "Authorization: Bearer <token>" (New refuses an empty token); GET endpoints
// stay open. A Server without a token accepts no writes at all and listens on
// loopback only. On a Client, the token is sent with SetHostedVaults.
func WithToken(token string) TokenOption { return TokenOption{token: token} }

// WithRuntimeMetrics registers the Go runtime and process collectors on the
// Server's registry (collectors already registered there are kept).
func WithRuntimeMetrics() Option {
	return serverOptionFunc(func(c *serverConfig) { c.runtimeMetrics = true })
}

// WithLogger sets the logger for HTTP server errors and failed Source calls
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return serverOptionFunc(func(c *serverConfig) {
		if l != nil {
			c.log = l
		}
	})
}

// WithTimeout sets the Client's per-request (per-attempt) timeout; default 5 s.
// Values <= 0 are ignored.
func WithTimeout(d time.Duration) ClientOption {
	return clientOptionFunc(func(c *clientConfig) {
		if d > 0 {
			c.timeout = d
		}
	})
}

// WithRetry sets the Client's number of attempts (>= 1; default 3) and the
// first backoff (default 100 ms, doubled after each attempt).
func WithRetry(attempts int, base time.Duration) ClientOption {
	return clientOptionFunc(func(c *clientConfig) {
		if attempts >= 1 {
			c.attempts = attempts
		}
		if base >= 0 {
			c.backoff = base
		}
	})
}

// WithHTTPClient sets the http.Client the Client uses (default: one that does
// not follow redirects). Its own Timeout, if any, also applies.
func WithHTTPClient(hc *http.Client) ClientOption {
	return clientOptionFunc(func(c *clientConfig) {
		if hc != nil {
			c.hc = hc
		}
	})
}
