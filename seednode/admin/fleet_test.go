package admin

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// inviteBodies are request bodies with what decodeInviteRequest and Check
// make of them: the uses and validity, or a part of the error.
var inviteBodies = []struct {
	body    string
	uses    int
	expires time.Duration
	err     string
}{
	{`{"uses": 3, "expiresIn": "72h"}`, 3, 72 * time.Hour, ""},
	{`{"expiresIn": "1m"}`, 1, time.Minute, ""},
	{`{"uses": 3}`, 0, 0, `missing "expiresIn"`},
	{`{"uses": 0, "expiresIn": "59s"}`, 0, 0, "must be 1m0s to"},
	{`{"uses": 2000000, "expiresIn": "1h"}`, 0, 0, "uses 2000000: must be 1 to"},
	{`{"uses": -1, "expiresIn": "1h"}`, 0, 0, "uses -1"},
	{`{"uses": 1, "expiresIn": "9000h"}`, 0, 0, "must be 1m0s to"},
	{`{"uses": 1, "expiresIn": "tomorrow"}`, 0, 0, "expiresIn \"tomorrow\""},
	{`{"uses": 1, "expiresIn": "1h", "Uses": 5}`, 0, 0, "keys are case-sensitive"},
	{`{"uses": 1, "expiresIn": "1h", "fleet": "x"}`, 0, 0, "unknown field"},
	{`{"uses": 1, "expiresIn": "1h"} {}`, 0, 0, "invalid JSON body"},
	{`{"uses": "1", "expiresIn": "1h"}`, 0, 0, "invalid JSON body"},
	{``, 0, 0, "empty request body"},
}

func TestDecodeInviteRequest(t *testing.T) {
	for _, tc := range inviteBodies {
		t.Run(tc.body, func(t *testing.T) {
			req, err := decodeInviteRequest(strings.NewReader(tc.body))
			var uses int
			var expires time.Duration
			if err == nil {
				uses, expires, err = req.Check()
				if err != nil && !errors.Is(err, ErrBadInvite) {
					t.Fatalf("Check's error does not wrap ErrBadInvite: %v", err)
				}
			}
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("got %v, want an error saying %q", err, tc.err)
			case tc.err == "" && (uses != tc.uses || expires != tc.expires):
				t.Fatalf("got %d uses for %s, want %d for %s", uses, expires, tc.uses, tc.expires)
			}
		})
	}
}

// FuzzDecodeInviteRequest: any body is decoded or refused with an error,
// never a panic, and what is accepted is within the bounds.
func FuzzDecodeInviteRequest(f *testing.F) {
	for _, tc := range inviteBodies {
		f.Add(tc.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decodeInviteRequest(strings.NewReader(body))
		if err != nil {
			return
		}
		uses, d, err := req.Check()
		if err != nil {
			return
		}
		if uses < 1 || uses > MaxInviteUses || d < MinInviteExpiry || d > MaxInviteExpiry {
			t.Fatalf("accepted %q as %d uses for %s", body, uses, d)
		}
	})
}
