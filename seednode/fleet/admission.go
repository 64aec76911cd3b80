package fleet

import (
	"fmt"
	"strings"
)

// Admission is a fleet's policy for self-service hosting requests.
type Admission uint8

const (
	// Closed admits no self-service request: only vaults an administrator
	// places are hosted (AgentVault, the admin API, a vaults file).
	Closed Admission = iota
	// Open admits any agent within the fleet's per-agent, per-address and
	// fleet-wide limits.
	Open
	// Invite admits an agent that presents a valid invite ticket of the fleet.
	Invite
)

var admissionNames = [...]string{Closed: "Closed", Open: "Open", Invite: "Invite"}

// Valid reports whether a is one of the defined policies.
func (a Admission) Valid() bool { return int(a) < len(admissionNames) }

func (a Admission) String() string {
	if a.Valid() {
		return admissionNames[a]
	}
	return fmt.Sprintf("Admission(%d)", uint8(a))
}

// ParseAdmission reads a policy name in any letter case.
func ParseAdmission(s string) (Admission, error) {
	for a, name := range admissionNames {
		if strings.EqualFold(s, name) {
			return Admission(a), nil
		}
	}
	return Closed, fmt.Errorf("unknown admission policy %q: want Closed, Open or Invite", s)
}
