package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// PathFleetMembers (PUT, with the token) gives a fleet pod the fleet's
// membership, which it applies at once, without a restart: FleetMembers
// in, MembersApplied out. The operator sends it when a public fleet scales,
// so that the pods need not wait for the kubelet to update the members in
// their configuration files (which they apply too, when it comes).
const PathFleetMembers = "/v1/fleet/members"

// maxMembersBody bounds a FleetMembers body: 32 pods of a few hundred bytes
// each fit many times over.
const maxMembersBody = 64 << 10

// ErrBadMembers: a membership that is not this pod's or cannot be used
// (answered with 400).
var ErrBadMembers = errors.New("invalid fleet membership")

// FleetMembers is a fleet's membership as one pod is told it, in the terms
// of the fleet section of its configuration: its ordinal, every pod's full
// multiaddr (with /p2p/) by ordinal, how many of the last are leaving, and
// R.
type FleetMembers struct {
	Self     int      `json:"self"`
	Members  []string `json:"members"`
	Leaving  int      `json:"leaving"`
	Replicas int      `json:"replicas"`
}

// MembersApplied answers PathFleetMembers: the version of the membership
// the pod places by now (FleetStatus.Members).
type MembersApplied struct {
	Members string `json:"members"`
}

// MembersSource is a FleetSource that takes a new membership while it
// runs. A FleetSource without it answers PathFleetMembers with 404.
type MembersSource interface {
	// SetFleetMembers applies m and returns its version. Errors wrap
	// ErrNoFleet (404) or ErrBadMembers (400); others are 500.
	SetFleetMembers(ctx context.Context, m FleetMembers) (string, error)
}

func (s *Server) putFleetMembers(w http.ResponseWriter, r *http.Request) {
	if !s.allowWrite(w, r) {
		return
	}
	src, ok := s.src.(MembersSource)
	if !ok {
		writeError(w, http.StatusNotFound, ErrNoFleet.Error())
		return
	}
	var m FleetMembers
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, maxMembersBody), &m, `{"self": N, "members": [...], "leaving": N, "replicas": N}`); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), sourceTimeout)
	defer cancel()
	version, err := src.SetFleetMembers(ctx, m)
	if errors.Is(err, ErrBadMembers) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		s.fleetError(w, "set fleet members", err)
		return
	}
	writeJSON(w, http.StatusOK, MembersApplied{Members: version})
}

// SetFleetMembers gives the seed the fleet's membership (with the token)
// and returns the version it places by now.
func (c *Client) SetFleetMembers(ctx context.Context, m FleetMembers) (string, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("admin: PUT %s: %w", PathFleetMembers, err)
	}
	data, err := c.do(ctx, http.MethodPut, PathFleetMembers, body, true)
	if err != nil {
		return "", err
	}
	var got MembersApplied
	if err := json.Unmarshal(data, &got); err != nil {
		return "", fmt.Errorf("admin: PUT %s: decoding response: %w", PathFleetMembers, err)
	}
	return got.Members, nil
}
