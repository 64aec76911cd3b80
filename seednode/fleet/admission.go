package fleet

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Admission is a fleet's policy for self-service hosting requests. Its
// values are CamelCase words, as the SeedNode API's enums are; the seed's
// configuration reads them in any case.
type Admission string

const (
	// Closed admits no self-service request: only vaults an administrator
	// places are hosted (AgentVault, the admin API, a vaults file).
	Closed Admission = "Closed"
	// Open admits any agent within the fleet's per-agent, per-address and
	// fleet-wide limits.
	Open Admission = "Open"
	// Invite admits an agent that presents a valid invite ticket of the fleet.
	Invite Admission = "Invite"
)

// Admissions are the policies, in the order of their wire codes.
func Admissions() []Admission { return []Admission{Closed, Open, Invite} }

// Valid reports whether a is one of the defined policies.
func (a Admission) Valid() bool { return slices.Contains(Admissions(), a) }

// ParseAdmission reads a policy name in any letter case.
func ParseAdmission(s string) (Admission, error) {
	for _, a := range Admissions() {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown admission policy %q: want Closed, Open or Invite", s)
}

// UnmarshalJSON reads a policy in any case; an unknown one is kept as it is
// for validation to refuse with the setting's name.
func (a *Admission) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("admission policy: want a string (Closed, Open or Invite)")
	}
	if p, err := ParseAdmission(s); err == nil {
		*a = p
	} else {
		*a = Admission(s)
	}
	return nil
}

// Code is the policy's one-byte wire code (tickets); 255 for an unknown one.
func (a Admission) Code() byte {
	if i := slices.Index(Admissions(), a); i >= 0 {
		return byte(i)
	}
	return 255
}

// AdmissionFromCode is the policy of a wire code.
func AdmissionFromCode(c byte) (Admission, bool) {
	if int(c) < len(Admissions()) {
		return Admissions()[c], true
	}
	return "", false
}
