package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	sigsjson "sigs.k8s.io/json"
)

// Paths of a fleet pod's endpoints.
const (
	// PathFleet answers FleetStatus: this pod's part of a public fleet.
	PathFleet = "/v1/fleet"
	// PathFleetInvites (POST, with the token) mints an invite ticket signed
	// by the fleet's key: InviteRequest in, Invite out.
	PathFleetInvites = "/v1/fleet/invites"
)

// Bounds of an InviteRequest.
const (
	MaxInviteUses    = 1 << 20
	MinInviteExpiry  = time.Minute
	MaxInviteExpiry  = 366 * 24 * time.Hour
	maxInviteBody    = 4 << 10
	defaultInviteUse = 1
)

// Errors a FleetSource returns, answered with 404 and 409.
var (
	// ErrNoFleet: the seed is not a pod of a public fleet.
	ErrNoFleet = errors.New("this seed is not a pod of a public fleet (its configuration has no fleet section; " +
		"on Kubernetes, set spec.hosting.selfService on the SeedNode)")
	// ErrNoInvites: the fleet mints no invites (no key, or its admission is not Invite).
	ErrNoInvites = errors.New("this fleet mints no invites")
	// ErrBadInvite: an InviteRequest out of bounds (answered with 400).
	ErrBadInvite = errors.New("invalid invite request")
)

// FleetSource is a Source that may be a pod of a public fleet. A Source
// without these methods answers PathFleet and PathFleetInvites with 404.
type FleetSource interface {
	// FleetStatus returns this pod's figures, or an error wrapping ErrNoFleet.
	FleetStatus(ctx context.Context) (FleetStatus, error)
	// MintInvite signs an invite with the fleet's key. Errors wrap
	// ErrNoFleet (404), ErrNoInvites (409) or ErrBadInvite (400); others are 500.
	MintInvite(ctx context.Context, req InviteRequest) (Invite, error)
}

// FleetStatus is one pod's part of a public fleet. Every subject (an agent,
// or a plain vault) is counted by one pod only, its first home pod, so the
// sums of Agents, Vaults and Admissions over the pods are the fleet's;
// HostedVaults and Bytes count what this pod holds, replicas included.
type FleetStatus struct {
	// Name of the fleet (<namespace>/<SeedNode> on Kubernetes).
	Name string `json:"name"`
	// Admission is Closed, Open or Invite.
	Admission string `json:"admission"`
	// Self is this pod's ordinal among Pods members, the last Leaving of
	// which are leaving; Replicas is R.
	Self     int `json:"self"`
	Pods     int `json:"pods"`
	Leaving  int `json:"leaving,omitempty"`
	Replicas int `json:"replicas"`
	// Members is the version of the membership this pod places by
	// (fleet.Members.Version): it changes without a restart when the
	// pod's configuration lists new members.
	Members string `json:"members"`
	// Ticket is the fleet ticket ("fleet…") devices use, as this pod tells it.
	Ticket string `json:"ticket"`
	// Invites is true when this pod can mint invites (it holds the fleet's
	// key and the admission is Invite).
	Invites bool `json:"invites"`
	// Agents and Vaults are the subjects whose first home pod this is, and
	// their vaults.
	Agents int `json:"agents"`
	Vaults int `json:"vaults"`
	// HostedVaults is how many self-service vaults this pod holds (its
	// share), and Bytes what they hold.
	HostedVaults int    `json:"hostedVaults"`
	Bytes        uint64 `json:"bytes"`
	// Admissions counts the subjects whose first home pod this is that were
	// admitted since the pod started (and are still hosted).
	Admissions int `json:"admissions"`
	// Refusals count the requests this pod refused since it started, by
	// reason (hosting.Reason names, and "stream" for streams refused before
	// a request was read). A refusal the subject's home pod gave to a
	// request this pod passed on counts here too.
	Refusals map[string]uint64 `json:"refusals,omitempty"`
}

// InviteRequest asks for an invite: Uses admissions (1 if 0), valid for
// ExpiresIn (a Go duration such as "72h", 1m to 366 days).
type InviteRequest struct {
	Uses      int    `json:"uses,omitempty"`
	ExpiresIn string `json:"expiresIn"`
}

// Check returns the request's uses (defaulted) and validity, or an error
// wrapping ErrBadInvite that says what to send.
func (r InviteRequest) Check() (uses int, expiresIn time.Duration, err error) {
	uses = r.Uses
	if uses == 0 {
		uses = defaultInviteUse
	}
	if uses < 1 || uses > MaxInviteUses {
		return 0, 0, fmt.Errorf("%w: uses %d: must be 1 to %d", ErrBadInvite, r.Uses, MaxInviteUses)
	}
	if r.ExpiresIn == "" {
		return 0, 0, fmt.Errorf(`%w: missing "expiresIn", e.g. "72h": an invite always expires`, ErrBadInvite)
	}
	d, err := time.ParseDuration(r.ExpiresIn)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: expiresIn %s: %v", ErrBadInvite, quoteShort(r.ExpiresIn), err)
	}
	if d < MinInviteExpiry || d > MaxInviteExpiry {
		return 0, 0, fmt.Errorf("%w: expiresIn %s: must be %s to %s", ErrBadInvite, r.ExpiresIn, MinInviteExpiry, MaxInviteExpiry)
	}
	return uses, d, nil
}

// Invite is a minted invite ticket.
type Invite struct {
	// Ticket is the invite's text form ("invite…"), for
	// seedfleet host request --invite.
	Ticket string `json:"ticket"`
	// ID is the invite's random ID in hex: the fleet counts its uses by it.
	ID       string    `json:"id"`
	Uses     int       `json:"uses"`
	NotAfter time.Time `json:"notAfter"`
}

func (s *Server) fleetSource(w http.ResponseWriter) (FleetSource, bool) {
	f, ok := s.src.(FleetSource)
	if !ok {
		writeError(w, http.StatusNotFound, ErrNoFleet.Error())
	}
	return f, ok
}

func (s *Server) getFleet(w http.ResponseWriter, r *http.Request) {
	f, ok := s.fleetSource(w)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), sourceTimeout)
	defer cancel()
	st, err := f.FleetStatus(ctx)
	if err != nil {
		s.fleetError(w, "fleet status", err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) postFleetInvite(w http.ResponseWriter, r *http.Request) {
	if !s.allowWrite(w, r) {
		return
	}
	f, ok := s.fleetSource(w)
	if !ok {
		return
	}
	req, err := decodeInviteRequest(http.MaxBytesReader(w, r.Body, maxInviteBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, _, err := req.Check(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), sourceTimeout)
	defer cancel()
	inv, err := f.MintInvite(ctx, req)
	if err != nil {
		s.fleetError(w, "mint invite", err)
		return
	}
	writeJSON(w, http.StatusCreated, inv)
}

// fleetError answers a FleetSource's error with its status code.
func (s *Server) fleetError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, ErrNoFleet):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrNoInvites):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrBadInvite):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.cfg.log.Warn("admin: "+what+" failed", "err", err)
		writeError(w, http.StatusInternalServerError, what+": "+err.Error())
	}
}

// decodeInviteRequest reads an InviteRequest strictly: unknown, repeated or
// miscased keys and trailing data are refused.
func decodeInviteRequest(body io.Reader) (InviteRequest, error) {
	var req InviteRequest
	err := decodeStrict(body, &req, `{"uses": N, "expiresIn": "72h"}`)
	return req, err
}

// decodeStrict reads a JSON body into v strictly: unknown, repeated or
// miscased keys and trailing data are refused; want shows an empty body
// what to send.
func decodeStrict(body io.Reader, v any, want string) error {
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("request body exceeds %d bytes", tooLarge.Limit)
		}
		return fmt.Errorf("reading the body: %v", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return errors.New("empty request body; want " + want)
	}
	strict, err := sigsjson.UnmarshalStrict(raw, v)
	if err != nil {
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("invalid JSON body: %v (keys are case-sensitive and given once)", strict[0])
	}
	return nil
}

// Fleet returns the seed's FleetStatus; a seed outside a fleet answers 404.
func (c *Client) Fleet(ctx context.Context) (FleetStatus, error) {
	var st FleetStatus
	data, err := c.do(ctx, http.MethodGet, PathFleet, nil, false)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return FleetStatus{}, fmt.Errorf("admin: GET %s: decoding response: %w", PathFleet, err)
	}
	return st, nil
}

// MintInvite asks the seed for an invite ticket (with the WithToken token).
// A refusal is an HTTPError carrying the seed's reason: 409 when the fleet
// mints no invites, 404 outside a fleet, 400 for a bad request.
func (c *Client) MintInvite(ctx context.Context, req InviteRequest) (Invite, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Invite{}, fmt.Errorf("admin: POST %s: %w", PathFleetInvites, err)
	}
	data, err := c.do(ctx, http.MethodPost, PathFleetInvites, body, true)
	if err != nil {
		return Invite{}, err
	}
	var inv Invite
	if err := json.Unmarshal(data, &inv); err != nil {
		return Invite{}, fmt.Errorf("admin: POST %s: decoding response: %w", PathFleetInvites, err)
	}
	return inv, nil
}
