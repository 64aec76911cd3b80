package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	// DefaultClientTimeout bounds each request (each attempt) of a Client.
	DefaultClientTimeout = 5 * time.Second
	// MaxResponseBody bounds every response a Client reads.
	MaxResponseBody = 4 << 20

	defaultAttempts = 3
	defaultBackoff  = 100 * time.Millisecond
	maxErrorMessage = 512 // bytes of a server's error text kept in an HTTPError
)

// ErrNotReady matches (errors.Is) the error Client.Ready returns when the seed
// answers 503; the HTTPError carries the seed's reason.
var ErrNotReady = errors.New("seed not ready")

// HTTPError is an unexpected status from the admin API.
type HTTPError struct {
	Method     string
	Endpoint   string // the path, e.g. /readyz
	StatusCode int
	Message    string // the server's reason or error message, if any
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("admin: %s %s: %d %s", e.Method, e.Endpoint, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Is makes errors.Is(err, ErrNotReady) true for a 503 from /readyz.
func (e *HTTPError) Is(target error) bool {
	return target == ErrNotReady && e.Endpoint == PathReadyz && e.StatusCode == http.StatusServiceUnavailable
}

type clientConfig struct {
	hc       *http.Client
	timeout  time.Duration
	token    string
	attempts int
	backoff  time.Duration
}

// Client talks to one seed's admin API. It is safe for concurrent use.
type Client struct {
	base string
	cfg  clientConfig
}

// NewClient returns a client for the admin API at baseURL, e.g.
// "http://10.1.2.3:8081" (a missing scheme means http).
func NewClient(baseURL string, opts ...ClientOption) *Client {
	cfg := clientConfig{
		timeout:  DefaultClientTimeout,
		attempts: defaultAttempts,
		backoff:  defaultBackoff,
	}
	for _, o := range opts {
		if o != nil {
			o.applyClient(&cfg)
		}
	}
	if cfg.hc == nil {
		cfg.hc = &http.Client{
			// The API never redirects; following one would be a surprise.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	base := strings.TrimRight(strings.TrimSpace(baseURL), "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{base: base, cfg: cfg}
}

// Healthy returns nil if the seed answers /healthz with 200.
func (c *Client) Healthy(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, PathHealthz, nil, false)
	return err
}

// Ready returns nil if the seed is ready. A 503 is the seed's answer, not a
// failure, so it is not retried: the error matches ErrNotReady and, as an
// *HTTPError, carries the seed's reason in Message.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, PathReadyz, nil, false)
	return err
}

// Status returns the seed's Status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	data, err := c.do(ctx, http.MethodGet, PathStatus, nil, false)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return Status{}, fmt.Errorf("admin: GET %s: decoding response: %w", PathStatus, err)
	}
	return st, nil
}

// HostedVaults returns the vaults the seed hosts and their replica peers.
func (c *Client) HostedVaults(ctx context.Context) (HostedVaults, error) {
	var hv HostedVaults
	data, err := c.do(ctx, http.MethodGet, PathHostedVaults, nil, false)
	if err != nil {
		return HostedVaults{}, err
	}
	if err := json.Unmarshal(data, &hv); err != nil {
		return HostedVaults{}, fmt.Errorf("admin: GET %s: decoding response: %w", PathHostedVaults, err)
	}
	return hv, nil
}

// SetHostedVaults replaces the seed's hosted vaults and their replica peers
// (nil or empty Vaults: host nothing), sending the WithToken token if one
// was set. PUT is idempotent, so it is retried like the reads; a 400 (bad
// input, e.g. peers of a vault not in Vaults) is not, and its HTTPError
// carries the seed's reason.
func (c *Client) SetHostedVaults(ctx context.Context, hv HostedVaults) error {
	if hv.Vaults == nil {
		hv.Vaults = []string{}
	}
	body, err := json.Marshal(hv)
	if err != nil {
		return fmt.Errorf("admin: PUT %s: %w", PathHostedVaults, err)
	}
	_, err = c.do(ctx, http.MethodPut, PathHostedVaults, body, true)
	return err
}

// Verify asks the seed to verify its vault replicas now (with the token);
// Status.Integrity.LastPass moves past the request's time when it is done.
func (c *Client) Verify(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPost, PathVerify, nil, true)
	return err
}

// Profile returns the seed's runtime profile name (heap, goroutine, ...;
// see PathDebugPprof) in pprof's format. It needs the token.
func (c *Client) Profile(ctx context.Context, name string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, PathDebugPprof+name, nil, true)
}

// Metrics returns the seed's Prometheus text exposition.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodGet, PathMetrics, nil, false)
}

// do sends a request with retries and returns the body of a 2xx answer.
func (c *Client) do(ctx context.Context, method, path string, body []byte, auth bool) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		data, retry, err := c.once(ctx, method, path, body, auth)
		if err == nil {
			return data, nil
		}
		if !retry || attempt >= c.cfg.attempts {
			if attempt > 1 {
				err = fmt.Errorf("%w (after %s)", err, attempts(attempt))
			}
			return nil, err
		}
		t := time.NewTimer(c.cfg.backoff << (attempt - 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (after %s; then: %w)", err, attempts(attempt), ctx.Err())
		case <-t.C:
		}
	}
}

var errAttemptTimeout = errors.New("admin: request timeout")

// once makes one attempt; retry says whether another may succeed
// (connection errors and 5xx).
func (c *Client) once(ctx context.Context, method, path string, body []byte, auth bool) (data []byte, retry bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("admin: %s %s: %w", method, path, err)
	}
	actx, cancel := context.WithTimeoutCause(ctx, c.cfg.timeout, errAttemptTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, c.base+path, rd)
	if err != nil {
		return nil, false, fmt.Errorf("admin: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json, text/plain")
	req.Header.Set("User-Agent", "seedfleet-admin-client")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth && c.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.token)
	}

	// transportErr classifies an error of the request or of reading the body.
	transportErr := func(err error) (bool, error) {
		switch {
		case ctx.Err() != nil:
			return false, fmt.Errorf("admin: %s %s: %w", method, path, ctx.Err())
		case errors.Is(context.Cause(actx), errAttemptTimeout):
			return false, fmt.Errorf("admin: %s %s: no response within %v: %w", method, path, c.cfg.timeout, context.DeadlineExceeded)
		default:
			return true, fmt.Errorf("admin: %s %s: %w", method, path, err)
		}
	}
	resp, err := c.cfg.hc.Do(req)
	if err != nil {
		retry, err = transportErr(err)
		return nil, retry, err
	}
	defer resp.Body.Close()
	data, err = io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		retry, err = transportErr(err)
		return nil, retry, err
	}
	if len(data) > MaxResponseBody {
		return nil, false, fmt.Errorf("admin: %s %s: response (status %d) exceeds %d bytes", method, path, resp.StatusCode, MaxResponseBody)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return data, false, nil
	}
	herr := &HTTPError{Method: method, Endpoint: path, StatusCode: resp.StatusCode, Message: errorMessage(data)}
	// A 503 from /readyz is the answer, not a failure.
	retry = resp.StatusCode >= 500 && !herr.Is(ErrNotReady)
	return nil, retry, herr
}

// errorMessage extracts the server's message from an ErrorResponse or text body.
func errorMessage(data []byte) string {
	var er ErrorResponse
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &er) == nil && er.Error != "" {
		msg = er.Error
	}
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage] + "…"
	}
	return msg
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}
