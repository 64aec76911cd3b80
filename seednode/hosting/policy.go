package hosting

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// Policy is a fleet's admission policy and limits, as the SeedNode spec and
// the seed's configuration give them. Zero fields take the defaults below.
type Policy struct {
	// Fleet is the fleet's name; requests must name it.
	Fleet string
	// Admission is Closed (no self-service; the default), Open or Invite.
	Admission fleet.Admission
	// FleetKey verifies invite tickets; required for Invite.
	FleetKey ed25519.PublicKey

	// MaxVaultsPerAgent bounds the vaults one subject holds. Default 16.
	MaxVaultsPerAgent int
	// DefaultQuotaBytes and DefaultQuotaEntries are a vault's quota when the
	// request asks for none. Defaults 256 MiB and 100,000.
	DefaultQuotaBytes   uint64
	DefaultQuotaEntries uint64
	// MaxQuotaBytes and MaxQuotaEntries bound one vault's quota. Defaults
	// 1 GiB and 1,000,000.
	MaxQuotaBytes   uint64
	MaxQuotaEntries uint64
	// MaxAgentBytes bounds the sum of one subject's vault quotas. Default 4 GiB.
	MaxAgentBytes uint64
	// MaxVaultsPerPod bounds the distinct self-service vaults a pod holds.
	// Default 200,000.
	MaxVaultsPerPod int
	// AdmissionsPerSecond bounds new subjects admitted per second by a pod,
	// with a burst of twice as many. Default 100.
	AdmissionsPerSecond float64
	// RequestsPerRangePerMinute bounds the requests of any kind from one
	// address range (IPv4 /24, IPv6 /56) per minute. Default 60.
	RequestsPerRangePerMinute int
	// IdleExpiry releases a vault nobody synced for this long, after a notice
	// period shown by status (see NoticePeriod). 0 (the default) never does.
	IdleExpiry time.Duration
}

// Policy defaults.
const (
	DefaultMaxVaultsPerAgent         = 16
	DefaultQuotaBytes                = 256 << 20
	DefaultQuotaEntries              = 100_000
	DefaultMaxQuotaBytes             = 1 << 30
	DefaultMaxQuotaEntries           = 1_000_000
	DefaultMaxAgentBytes             = 4 << 30
	DefaultMaxVaultsPerPod           = 200_000
	DefaultAdmissionsPerSecond       = 100
	DefaultRequestsPerRangePerMinute = 60
)

// WithDefaults fills in zero fields.
func (p Policy) WithDefaults() Policy {
	set := func(v *uint64, d uint64) {
		if *v == 0 {
			*v = d
		}
	}
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if p.Admission == "" {
		p.Admission = fleet.Closed
	}
	setInt(&p.MaxVaultsPerAgent, DefaultMaxVaultsPerAgent)
	set(&p.DefaultQuotaBytes, DefaultQuotaBytes)
	set(&p.DefaultQuotaEntries, DefaultQuotaEntries)
	set(&p.MaxQuotaBytes, DefaultMaxQuotaBytes)
	set(&p.MaxQuotaEntries, DefaultMaxQuotaEntries)
	set(&p.MaxAgentBytes, DefaultMaxAgentBytes)
	setInt(&p.MaxVaultsPerPod, DefaultMaxVaultsPerPod)
	setInt(&p.RequestsPerRangePerMinute, DefaultRequestsPerRangePerMinute)
	if p.AdmissionsPerSecond == 0 {
		p.AdmissionsPerSecond = DefaultAdmissionsPerSecond
	}
	return p
}

// Validate reports the first setting that cannot work, naming it.
func (p Policy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.Fleet == "" || len(p.Fleet) > ticket.MaxFleetNameLen {
		bad("fleet name must be 1 to %d bytes", ticket.MaxFleetNameLen)
	}
	if !p.Admission.Valid() {
		bad("unknown admission policy %v", p.Admission)
	}
	if p.Admission == fleet.Invite && len(p.FleetKey) != ed25519.PublicKeySize {
		bad("admission Invite needs the fleet's key to check invites")
	}
	if p.MaxVaultsPerAgent < 1 || p.MaxVaultsPerAgent > MaxRecordVaults {
		bad("maxVaultsPerAgent %d outside 1..%d", p.MaxVaultsPerAgent, MaxRecordVaults)
	}
	if p.DefaultQuotaBytes > p.MaxQuotaBytes || p.DefaultQuotaEntries > p.MaxQuotaEntries {
		bad("the default quota is above the largest quota a vault may have")
	}
	if p.MaxQuotaBytes > p.MaxAgentBytes {
		bad("maxQuotaBytes %d is above maxAgentBytes %d", p.MaxQuotaBytes, p.MaxAgentBytes)
	}
	if p.AdmissionsPerSecond < 0 || p.RequestsPerRangePerMinute < 0 || p.MaxVaultsPerPod < 0 || p.IdleExpiry < 0 {
		bad("limits must not be negative")
	}
	if p.IdleExpiry != 0 && p.IdleExpiry < time.Hour {
		bad("idleExpiry %s is shorter than an hour: devices offline for a night would lose their vaults", p.IdleExpiry)
	}
	return errors.Join(errs...)
}

// NoticePeriod is how long status shows that a vault will be released for
// idleness before it is: a tenth of IdleExpiry, at least a day.
func (p Policy) NoticePeriod() time.Duration {
	return max(p.IdleExpiry/10, 24*time.Hour)
}
