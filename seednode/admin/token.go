package admin

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

// maxTokenFileSize bounds what ReadToken reads: a token is a line of text.
const maxTokenFileSize = 4 << 10

// ErrNoToken is returned by New for a listener that is not on loopback when
// no token is set: anyone who reaches the port would be one guess from the
// API's writes.
var ErrNoToken = errors.New("admin: no bearer token")

// ReadToken reads a bearer token from a file (surrounding whitespace is
// dropped): a seed's admin.tokenFile, the admin.token a seed generates in its
// data directory, or an operator's token Secret.
func ReadToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFileSize+1))
	if err != nil {
		return "", fmt.Errorf("admin token: %s: %w", path, err)
	}
	if len(data) > maxTokenFileSize {
		return "", fmt.Errorf("admin token: %s is larger than %d bytes, not a token file", path, maxTokenFileSize)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("admin token: %s is empty; write the token into it, or remove it so the seed generates one", path)
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("admin token: %s holds more than one word; a token is one line without spaces", path)
	}
	return token, nil
}

// IsLoopback reports whether a listen address (host:port) can only be
// reached from this machine: a loopback IP or "localhost". An empty host
// (every interface), any other IP and a host name are not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
