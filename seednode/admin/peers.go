package admin

import "errors"

// MaxPeersPerVault bounds the replica peer addresses listed for one vault
// (HostedVaults.Peers, and a line of the seed's hosted vaults file).
const MaxPeersPerVault = 16

// ErrInvalid is wrapped by a Source's SetHostedVaults error when the input
// itself is wrong (for example, the seed's own peer ID listed as a replica
// peer): the Server answers 400 with the error's text instead of 500.
var ErrInvalid = errors.New("invalid hosted vaults")
