package admin

import (
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Option configures a Server (New). An option given an invalid argument
// makes New fail with an error that says so.
type Option interface{ applyServer(*serverConfig) error }

// ClientOption configures a Client (NewClient).
type ClientOption interface{ applyClient(*clientConfig) }

type serverOptionFunc func(*serverConfig) error

func (f serverOptionFunc) applyServer(c *serverConfig) error { return f(c) }

type clientOptionFunc func(*clientConfig)

func (f clientOptionFunc) applyClient(c *clientConfig) { f(c) }

// TokenOption is returned by WithToken; it is both an Option and a ClientOption.
type TokenOption struct{ token string }

func (o TokenOption) applyServer(c *serverConfig) error {
	if o.token == "" {
		return errors.New("admin: empty bearer token: pass the token the API's writes must carry to WithToken " +
			"(leave WithToken out for a loopback API that accepts no writes)")
	}
	c.token, c.tokenSet = o.token, true
	return nil
}
func (o TokenOption) applyClient(c *clientConfig) { c.token = o.token }

// WithToken sets the bearer token. On a Server, PUT requests must carry
// "Authorization: Bearer <token>" (New refuses an empty token); GET endpoints
// stay open. A Server without a token accepts no writes at all and listens on
// loopback only. On a Client, the token is sent with SetHostedVaults.
func WithToken(token string) TokenOption { return TokenOption{token: token} }

// WithRuntimeMetrics registers the Go runtime and process collectors on the
// Server's registry (collectors already registered there are kept).
func WithRuntimeMetrics() Option {
	return serverOptionFunc(func(c *serverConfig) error { c.runtimeMetrics = true; return nil })
}

// WithLogger sets the logger for HTTP server errors and failed Source calls
// (default slog.Default()); a nil logger is refused.
func WithLogger(l *slog.Logger) Option {
	return serverOptionFunc(func(c *serverConfig) error {
		if l == nil {
			return errors.New("admin: WithLogger: nil logger")
		}
		c.log = l
		return nil
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
