// The server's clock (protocol.md §6.6): the shared timer and the laser
// pointer go by it, never by this page's own clock, which may be minutes off.
//
// A first estimate comes with each `room:state` (`serverTime`, off by the
// time it took to arrive); then `time:now` is asked a few times and the
// answer with the shortest round trip counts: the server answered about
// half-way through it. Elapsed time is measured with performance.now(), a
// monotonic clock that starts with the page, so Date.now() is never read:
// a skewed or adjusted system clock changes nothing.

/** Round trips measured per estimate. */
const SAMPLES = 3
/** How long a time:now may take before it is given up (ms). */
const ASK_TIMEOUT_MS = 5000
/** Measure again this often (ms): the two clocks drift apart slowly. */
const RESYNC_MS = 5 * 60 * 1000

export class ServerClock {
  constructor () {
    // The best estimate: server time `server` at performance.now() `perf`,
    // from a round trip of `rtt` ms (Infinity: from room:state).
    this.base = null
    this.timer = 0
    this.listeners = new Set()
  }

  /** Whether the server's time is known (a room:state or a time:now arrived). */
  get known () {
    return this.base !== null
  }

  /** The server's time now (ms since the Unix epoch); NaN until known. */
  now () {
    return this.base ? this.base.server + (performance.now() - this.base.perf) : NaN
  }

  /** Call `fn` whenever the estimate changes; returns the unsubscribe. */
  onChange (fn) {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  set (base) {
    this.base = base
    for (const fn of this.listeners) fn()
  }

  /** A room:state: its `serverTime` is a first estimate, until a round trip gives a better one. */
  fromState (state) {
    const at = state && state.serverTime
    if (!Number.isFinite(at) || (this.base && this.base.rtt !== Infinity)) return
    this.set({ server: at, perf: performance.now(), rtt: Infinity })
  }

  /** Estimate over `socket` (connected) with `time:now`; the shortest round trip counts. */
  async measure (socket) {
    let best = null
    for (let i = 0; i < SAMPLES && socket.connected; i++) {
      const sent = performance.now()
      let ack
      try {
        ack = await socket.timeout(ASK_TIMEOUT_MS).emitWithAck('time:now', {})
      } catch {
        return
      }
      const received = performance.now()
      if (!ack || !ack.ok || !Number.isFinite(ack.now)) return
      const rtt = received - sent
      if (!best || rtt < best.rtt) best = { server: ack.now + rtt / 2, perf: received, rtt }
    }
    if (best) this.set(best)
  }

  /** Follow one socket of the room: its room:state, and a measurement at each connect. */
  watch (socket) {
    socket.on('room:state', (state) => this.fromState(state))
    const measure = () => { this.measure(socket) }
    socket.on('connect', measure)
    if (socket.connected) measure()
    clearInterval(this.timer)
    this.timer = setInterval(() => { if (socket.connected) measure() }, RESYNC_MS)
  }

  stop () {
    clearInterval(this.timer)
    this.listeners.clear()
  }
}
