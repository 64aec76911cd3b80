package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("90s", "5m",
// "1h30m") or as whole seconds (90). It is written back as a string.
type Duration struct{ time.Duration }

// String is the shortest form: "1h", "2m", "1h30m", "90ms".
func (d Duration) String() string { return formatDuration(d.Duration) }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string or whole seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a duration (want e.g. \"90s\", \"5m\", \"1h\" or whole seconds)", s)
		}
		d.Duration = v
		return nil
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return fmt.Errorf("%s seconds is too long", b)
			}
			return fmt.Errorf("%s is not whole seconds (write fractions as a string, e.g. \"1.5s\")", b)
		}
		if n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
			return fmt.Errorf("%d seconds is too long", n)
		}
		d.Duration = time.Duration(n) * time.Second
		return nil
	}
	return fmt.Errorf("want a duration such as \"90s\" or whole seconds, got %s", b)
}

// formatDuration drops zero minutes and seconds: 1h, 2m, 1h30m, 1m30s, 0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
