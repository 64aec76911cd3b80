// js-libp2p as an outside client of a Seedfleet seed's circuit relay.
//
// For each transport named in SEED_ADDRS ({"tcp": "<multiaddr>/p2p/<seed>", "ws": …}) it starts a
// listener node that reserves a slot on the seed, and a dialer node that reaches the listener through
// the circuit, pings it and echoes bytes over the relayed connection. It prints one JSON line per
// transport: {"transport", "reserved", "error", "pingMs", "echo", "seedAgent"} and exits 0; the Go test
// decides what was expected. Node 20 lacks Promise.withResolvers, which libp2p 3.x calls.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { webSockets } = await import('@libp2p/websockets')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { circuitRelayTransport } = await import('@libp2p/circuit-relay-v2')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { multiaddr } = await import('@multiformats/multiaddr')

const ECHO = '/seedfleet-interop/echo/1.0.0'
const RESERVE_TIMEOUT_MS = Number(process.env.RESERVE_TIMEOUT_MS ?? 10000)

function node (transport, listen) {
  return createLibp2p({
    addresses: { listen },
    transports: [transport === 'ws' ? webSockets() : tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Loopback only: allow dialing private addresses, and never dial anything but what we name.
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify(), ping: ping() }
  })
}

function withTimeout (promise, ms, what) {
  return Promise.race([promise, new Promise((_resolve, reject) =>
    setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))])
}

async function waitForCircuitAddr (n) {
  const deadline = Date.now() + RESERVE_TIMEOUT_MS
  while (Date.now() < deadline) {
    const addr = n.getMultiaddrs().find((a) => a.toString().includes('/p2p-circuit'))
    if (addr !== undefined) return addr
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return undefined
}

async function echoOver (conn, payload) {
  const stream = await conn.newStream(ECHO, { runOnLimitedConnection: true })
  stream.send(payload)
  await stream.close()
  const chunks = []
  for await (const chunk of stream) chunks.push(chunk.subarray ? chunk.subarray() : chunk)
  return Buffer.concat(chunks)
}

async function run (transport, seedAddr) {
  const result = { transport, reserved: false }
  const seed = multiaddr(seedAddr)
  const seedID = seed.getComponents().findLast((c) => c.name === 'p2p').value
  let listener, dialer
  try {
    listener = await node(transport, [`${seedAddr}/p2p-circuit`])
    await listener.handle(ECHO, async (stream) => {
      for await (const chunk of stream) stream.send(chunk.subarray ? chunk.subarray() : chunk)
      await stream.close()
    }, { runOnLimitedConnection: true })
    const circuit = await waitForCircuitAddr(listener)
    const seedPeer = await listener.peerStore.get(listener.getPeers().find((p) => p.toString() === seedID)).catch(() => undefined)
    result.seedAgent = seedPeer?.metadata?.get('AgentVersion') !== undefined
      ? new TextDecoder().decode(seedPeer.metadata.get('AgentVersion'))
      : undefined
    if (circuit === undefined) {
      result.error = 'no reservation within the timeout'
      return result
    }
    result.reserved = true

    dialer = await node(transport, [])
    const target = multiaddr(`${seedAddr}/p2p-circuit/p2p/${listener.peerId.toString()}`)
    const conn = await withTimeout(dialer.dial(target), 10000, 'relayed dial')
    result.limited = conn.limits !== undefined
    const start = Date.now()
    const rtt = await withTimeout(dialer.services.ping.ping(conn.remoteAddr, { runOnLimitedConnection: true }).catch(async () => {
      // Older ping services dial by address; fall back to a timed echo on the relayed connection.
      await echoOver(conn, new Uint8Array([1]))
      return Date.now() - start
    }), 10000, 'ping')
    result.pingMs = rtt
    const payload = new Uint8Array(64 * 1024)
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251
    const back = await withTimeout(echoOver(conn, payload), 10000, 'echo')
    result.echo = back.length === payload.length && Buffer.compare(back, Buffer.from(payload)) === 0
  } catch (err) {
    result.error = `${err.name ?? 'Error'}: ${err.message}`
  } finally {
    await dialer?.stop().catch(() => {})
    await listener?.stop().catch(() => {})
  }
  return result
}

const addrs = JSON.parse(process.env.SEED_ADDRS)
for (const [transport, addr] of Object.entries(addrs)) {
  console.log(JSON.stringify(await run(transport, addr)))
}
process.exit(0)
