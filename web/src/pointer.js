// The laser pointer (protocol.md §3.1, §6.6): press and move on the board to
// point; the last points go out in awareness (`pointer`, throttled) and are
// drawn for everyone as a trail that fades. Nothing is written to the board.
import { el, svg } from './util.js'
import { t } from './i18n.js'

/** How often the trail goes out while it moves (ms): well within the awareness rate (§8.2). */
const SEND_EVERY_MS = 60
/** How long a trail stays on screen after its last point (ms). */
const FADE_MS = 1500
/** Points of a trail sent, at most (the server keeps at most 32), and how old they may be (ms). */
const MAX_POINTS = 24
const TRAIL_MS = 1000
/** A trail older than this on arrival (server time, ms) is not drawn: a joiner's stale state. */
const STALE_MS = 3000
/** The board's bounds the server checks (crdt/awareness_fields.py). */
const EXTENT = 1e6

const reducedMotion = () => window.matchMedia('(prefers-reduced-motion: reduce)').matches
const round = (v) => Math.round(v * 100) / 100

export class LaserPointer {
  constructor ({ canvas, clock, icon }) {
    Object.assign(this, { canvas, clock })
    this.active = false
    this.allowed = true
    this.pressed = false
    // This page's trail: [x, y, performance.now()] in board units.
    this.own = []
    // Others' trails by Yjs client id: { points, shown (performance.now()) }.
    this.others = new Map()
    this.sendTimer = 0
    this.clearTimer = 0
    this.frame = 0
    this.trails = svg('svg', { class: 'laser-trails', 'aria-hidden': 'true', focusable: 'false' })
    this.layer = el('div', { class: 'laser-layer', hidden: true })
    this.button = el('button', { type: 'button', class: 'tool-button', 'data-action': 'pointer', 'aria-pressed': 'false', 'aria-label': t('pointer.label'), title: t('pointer.title') }, icon('pointer'))
    this.button.addEventListener('click', () => this.setActive(!this.active))
    canvas.root.append(this.trails, this.layer)
    const l = this.layer
    l.addEventListener('pointerdown', (e) => this.down(e))
    l.addEventListener('pointermove', (e) => this.move(e))
    l.addEventListener('pointerup', () => this.up())
    l.addEventListener('pointercancel', () => this.up())
    l.addEventListener('wheel', (e) => canvas.onWheel(e), { passive: false })
    this.keydown = (e) => { if (e.key === 'Escape' && this.active) this.setActive(false) }
    window.addEventListener('keydown', this.keydown)
  }

  /** A (new) board provider's awareness: others' trails are read from it. */
  attachBoard (provider) {
    if (this.awareness) this.awareness.off('change', this.onAwareness)
    this.awareness = provider.awareness
    this.onAwareness = ({ added, updated, removed }) => this.read([...added, ...updated], removed)
    this.awareness.on('change', this.onAwareness)
    this.others.clear()
  }

  /** Whether this user may point (not an observer; connected; the session going on). */
  setAllowed (allowed) {
    this.allowed = allowed
    this.button.hidden = !allowed
    if (!allowed) this.setActive(false)
  }

  setActive (on) {
    this.active = on && this.allowed
    this.layer.hidden = !this.active
    this.button.setAttribute('aria-pressed', String(this.active))
    if (!this.active) this.up()
  }

  // -- this page's trail -----------------------------------------------------------------

  toBoard (e) {
    const r = this.canvas.svg.getBoundingClientRect()
    const { x, y, k } = this.canvas.view
    return [(e.clientX - r.left - x) / k, (e.clientY - r.top - y) / k]
  }

  down (e) {
    e.preventDefault()
    this.layer.setPointerCapture(e.pointerId)
    this.pressed = true
    this.own = []
    this.add(e)
  }

  move (e) {
    if (this.pressed) this.add(e)
  }

  up () {
    if (!this.pressed) return
    this.pressed = false
    this.send()
    clearTimeout(this.clearTimer)
    // The trail fades on every screen; then it is taken out of awareness.
    this.clearTimer = setTimeout(() => {
      if (!this.pressed && this.awareness) this.awareness.setLocalStateField('pointer', null)
    }, FADE_MS)
  }

  add (e) {
    const [x, y] = this.toBoard(e)
    if (!Number.isFinite(x) || !Number.isFinite(y) || Math.abs(x) > EXTENT || Math.abs(y) > EXTENT) return
    const now = performance.now()
    this.own.push([round(x), round(y), now])
    this.own = this.own.filter((p) => now - p[2] <= TRAIL_MS).slice(-MAX_POINTS)
    this.schedule()
    if (!this.sendTimer) this.sendTimer = setTimeout(() => this.send(), SEND_EVERY_MS)
  }

  send () {
    clearTimeout(this.sendTimer)
    this.sendTimer = 0
    if (!this.awareness || !this.own.length || !this.clock.known) return
    const points = this.own.map(([x, y]) => [x, y])
    this.awareness.setLocalStateField('pointer', { points, at: Math.round(this.clock.now()) })
  }

  // -- everyone's trails -----------------------------------------------------------------

  read (changed, removed) {
    const states = this.awareness.getStates()
    for (const id of removed) this.others.delete(id)
    for (const id of changed) {
      if (id === this.awareness.clientID) continue
      const p = states.get(id) && states.get(id).pointer
      if (!p || !Array.isArray(p.points) || !p.points.length) {
        this.others.delete(id)
        continue
      }
      const known = this.others.get(id)
      if (known && known.at === p.at) continue
      if (this.clock.known && this.clock.now() - p.at > STALE_MS) continue
      this.others.set(id, { points: p.points, at: p.at, shown: performance.now() })
    }
    this.schedule()
  }

  schedule () {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render() })
  }

  /** Draw every trail still on screen; again next frame while any fades. */
  render () {
    const now = performance.now()
    const { x: vx, y: vy, k } = this.canvas.view
    const steady = reducedMotion()
    const paths = []
    const draw = (points, age) => {
      if (age > FADE_MS || !points.length) return false
      const opacity = steady ? 1 : 1 - age / FADE_MS
      const screen = points.map(([x, y]) => round(x * k + vx) + ',' + round(y * k + vy))
      const [hx, hy] = points[points.length - 1]
      paths.push(svg('g', { class: 'laser-trail', opacity: opacity.toFixed(3) },
        svg('polyline', { points: screen.join(' ') }),
        svg('circle', { cx: round(hx * k + vx), cy: round(hy * k + vy), r: 5 })))
      return true
    }
    let live = false
    if (this.own.length) live = draw(this.own, this.pressed ? 0 : now - this.own[this.own.length - 1][2]) || live
    for (const [id, trail] of this.others) {
      if (draw(trail.points, now - trail.shown)) live = true
      else this.others.delete(id)
    }
    this.trails.replaceChildren(...paths)
    if (live) this.schedule()
  }

  destroy () {
    clearTimeout(this.sendTimer)
    clearTimeout(this.clearTimer)
    cancelAnimationFrame(this.frame)
    window.removeEventListener('keydown', this.keydown)
    if (this.awareness) this.awareness.off('change', this.onAwareness)
  }
}
