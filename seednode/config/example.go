package config

// Example returns a complete configuration file: every setting with its
// default value and one line on what it does. A test keeps it equal to
// Default() and checks that it lists every field.
func Example() string { return example }

const example = `# Seed node configuration (seedfleet seednode --config FILE).
# Every value below is the default; delete a line to keep the default.
# Precedence: built-in defaults < this file < command-line flags.
# Durations are Go durations ("90s", "5m", "1h30m") or whole seconds (90).

# Data directory: the vault store, the blob store and identity.key (the peer ID) unless identityFile is set.
dataDir: seed-data

# The seed's key (PEM, as "seedfleet key create" writes): it must exist and is never created (the operator makes it). Empty: dataDir/identity.key, created on first start.
identityFile: ""

# Start under a new peer ID although the data directory records another: create identity.key in a directory that holds stores, or take an identityFile key that is another peer's. Without it such a start is refused. For one start only (flag --new-identity).
newIdentity: false

# Start although the vault store on disk is not the one this data directory held (its files were lost or replaced): move it aside and rebuild every hosted vault from its other replicas. Without it such a start is refused. For one start only (flag --rebuild-store).
rebuildStore: false

# Addresses the node listens on. Loopback only by default: use 0.0.0.0 (or ::) to serve other machines.
listen:
  # TCP multiaddrs, /ip4/HOST/tcp/PORT (flag --listen).
  tcp: ["/ip4/127.0.0.1/tcp/7400"]
  # QUIC multiaddrs, /ip4/HOST/udp/PORT/quic-v1 (flag --listen-quic).
  quic: ["/ip4/127.0.0.1/udp/7400/quic-v1"]
  # WebSocket multiaddrs, /ip4/HOST/tcp/PORT/ws, for browsers (flag --listen-ws).
  webSocket: ["/ip4/127.0.0.1/tcp/7402/ws"]

# Multiaddrs to announce instead of the listen addresses, without /p2p/ (e.g. /dns4/seed.example.com/tcp/7400).
announce: []

# Namespace IDs (52 base32 characters) of the vaults this seed hosts; it refuses all others.
hostedVaults: []

# A file with more vaults, one per line: a namespace ID, then optionally the multiaddrs (ending in /p2p/<peer ID>) of up to 16 other seeds hosting it, separated by spaces; # comments. Re-read when it changes. Empty: none.
hostedVaultsFile: ""

# How often this seed compares, in one digest exchange per peer, the vaults it shares with the other seeds hosting them (its peers in hostedVaultsFile or the admin API) and syncs those that differ, 1s to 1h. A change is synced at once.
replicateInterval: 10s

# Limits applied to every hosted vault.
limits:
  # Most (key, author) entries one vault may hold.
  maxEntries: 10000000
  # Most value bytes one vault's entries may reference (64 GiB).
  maxBytes: 68719476736
  # Entries timestamped further than this in the future are refused.
  maxClockSkew: 10m

# Admin HTTP endpoint: health, readiness, metrics, status.
admin:
  # host:port to listen on; empty turns the endpoint off. Writes always need the token below.
  listen: 127.0.0.1:7401
  # File holding the bearer token that changes (PUT) must carry; reads stay open. Empty: dataDir/admin.token, generated on first start (0600).
  tokenFile: ""

# Kademlia DHT: devices find the seeds hosting their vaults through it.
dht:
  # Server (answer queries, store records), Client (query only) or Off; any case is accepted.
  mode: Server
  # Protocol prefix (protocols are PREFIX/kad/1.0.0); seeds and devices must use the same one. Not /ipfs, the public IPFS DHT's, whose records a seed does not store.
  protocolPrefix: /seedfleet
  # Peers to join the DHT through: full multiaddrs ending in /p2p/<peer ID>. Empty: none (nothing is dialled).
  bootstrapPeers: []
  # How often provider records of hosted vaults are published again (1m to 48h).
  reprovideInterval: 1h

# Circuit relay v2, for devices behind NAT.
relay:
  # Agents (only keys of hosted agents and allowedKeys may reserve), Public (anyone, within limits) or Off; any case is accepted.
  mode: Agents
  # did:key DIDs that may reserve in Agents mode besides the keys in hosted agents' documents.
  allowedKeys: []
  # Reservations advertise only the seed's public addresses and its announce addresses, as go-libp2p does; true advertises private and loopback ones too (loopback tests, private clusters).
  advertisePrivateAddrs: false
  # Resource limits of the relay service (a peer holds one reservation at a time).
  limits:
    # Most reservations held at once in total.
    maxReservations: 128
    # Most reservations from one IP address.
    maxReservationsPerIP: 8
    # Most reservations from one autonomous system (ASN).
    maxReservationsPerASN: 32
    # Most relayed connections open at once for one peer.
    maxCircuits: 16
    # How long a reservation lasts unless refreshed.
    reservationTTL: 1h
    # How long one relayed connection may stay open.
    circuitDuration: 2m
    # Bytes one relayed connection may carry in each direction (1 MiB).
    circuitBytes: 1048576

# Rendezvous: devices register signed records and look up their agent's other devices.
rendezvous:
  # Run the rendezvous service.
  enabled: true
  # How long a registration lives unless renewed (1m to 72h).
  recordTTL: 2h
  # Most registrations one agent DID may hold.
  maxRecordsPerAgent: 32

# libp2p resource manager limits; 0 keeps libp2p's default, scaled to the machine.
resources:
  # Memory libp2p may use, in MiB.
  maxMemoryMiB: 0
  # File descriptors libp2p may use.
  maxFileDescriptors: 0
  # Inbound connections open at once.
  maxConnsInbound: 0
  # Inbound streams open at once.
  maxStreamsInbound: 0
  # go-libp2p's resource manager metrics (libp2p_rcmgr_*): they trace every
  # stream and reservation, about a sixth of a busy seed's CPU.
  metrics: false

# End a sync whose peer sends nothing for this long.
idleTimeout: 30s

# How often blobs no hosted vault refers to, and vaults no longer hosted, are deleted.
gcInterval: 5m

# How often every hosted vault is verified against its stored sums in the background (also at start when the store is small, and whenever damaged data is found); at least 1m.
scrubInterval: 24h

# Least severe messages logged: Debug, Info, Warn or Error; any case is accepted.
logLevel: Info

# This seed as one pod of a public fleet that answers self-service hosting
# requests (seedfleet host request). The operator writes this section for
# every pod of a SeedNode with spec.hosting.selfService; an empty name turns it off.
fleet:
  # The fleet's name; requests and invites carry it.
  name: ""
  # This pod's ordinal: its index in members.
  self: 0
  # Every pod's full multiaddr, ending in /p2p/<peer ID>, by ordinal. The seed
  # re-reads members, replicas and leaving when this file changes and applies
  # them without a restart; other settings need one.
  members: []
  # Pods holding each agent's vaults (at most the number of members).
  replicas: 3
  # How many of the last members are leaving as the fleet shrinks: they hand
  # their vaults to the others and host nothing new.
  leaving: 0
  # Who may ask: Closed (only vaults an administrator places), Open or Invite.
  admission: Closed
  # The fleet's Ed25519 key (PEM), shared by its pods: checks invites, and
  # signs those the admin API mints. Required for Invite; with Open, invited
  # agents are admitted past admissionsPerSecond.
  keyFile: ""
  # What self-service agents may hold, and how fast they are admitted.
  limits:
    # Vaults one agent may hold.
    maxVaultsPerAgent: 16
    # A vault's quota in bytes when its request asks for none.
    defaultQuotaBytes: 268435456
    # A vault's quota in entries when its request asks for none.
    defaultQuotaEntries: 100000
    # The largest quota in bytes one vault may have.
    maxQuotaBytes: 1073741824
    # The largest quota in entries one vault may have.
    maxQuotaEntries: 1000000
    # The sum of one agent's vault quotas.
    maxAgentBytes: 4294967296
    # Distinct self-service vaults one pod holds.
    maxVaultsPerPod: 200000
    # New agents admitted per second by one pod (bursts of twice as many).
    admissionsPerSecond: 100
    # Requests of any kind from one IPv4 /24 or IPv6 /56, per minute.
    requestsPerRangePerMinute: 60
  # Release a vault no device synced for this long, after a notice period
  # shown by host status (a tenth of it, at least a day); 0s never does.
  idleExpiry: 0s
`
