// Follow me and bring everyone here (protocol.md §6.6), and where a page
// lands when it joins. A facilitator's page publishes its view in awareness
// (`view`: the board area it shows and its zoom); meta's `follow` says whom
// everyone follows, meta's `bringHere` where everyone was brought last.
// Stopping to follow is this page's own choice: nothing is sent for it.
import { el, toast } from './util.js'
import { t } from './i18n.js'
import { bounds } from './geometry.js'

/** The board's zoom limits (board.js). */
const MIN_ZOOM = 0.1
const MAX_ZOOM = 8
/** How often this page's view goes out while it changes (ms). */
const VIEW_EVERY_MS = 100
/** A joiner lands where everyone was brought if that was this recent (ms of server time). */
const BRING_HERE_RECENT_MS = 10 * 60 * 1000
/** Room kept around the content a joiner lands on (screen px). */
const FIT_PAD_PX = 40
/** The server's bounds on a view (crdt/awareness_fields.py). */
const EXTENT = 1e6

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v))
const finite = (...values) => values.every((v) => typeof v === 'number' && Number.isFinite(v))
const round = (v) => Math.round(v * 100) / 100

/** An area {x, y, w, h} if `v` holds one the server would take, else null. */
function area (v) {
  if (!v || typeof v !== 'object' || !finite(v.x, v.y, v.w, v.h) || v.w <= 0 || v.h <= 0) return null
  return { x: v.x, y: v.y, w: v.w, h: v.h }
}

export class FollowMe {
  /**
   * `canvas`: the board (its `view`, `applyView`, `fit`); `clock`: the
   * server's clock; `moderate(event, payload, messages)`: the session's
   * acknowledged events.
   */
  constructor ({ canvas, clock, user, isFacilitator, moderate, icon }) {
    Object.assign(this, { canvas, clock, user, isFacilitator, moderate })
    this.follow = { on: false, by: '', at: 0 }
    this.bring = { seq: 0 }
    // The follow request (its `at`) this page stopped following, if any.
    this.declined = null
    // The view this page was last moved to: a later change is the user's own.
    this.placed = null
    this.landed = false
    this.boardSynced = false
    this.metaSynced = false
    this.viewTimer = 0
    this.enabled = true
    this.banner = el('div', { class: 'follow-banner', role: 'status', hidden: true })
    if (isFacilitator) {
      this.followButton = el('button', { type: 'button', class: 'tool-button', 'data-action': 'follow', 'aria-pressed': 'false', 'aria-label': t('follow.startLabel'), title: t('follow.startLabel') }, icon('follow'))
      this.followButton.addEventListener('click', () => this.setFollow(!this.leading))
      this.bringButton = el('button', { type: 'button', class: 'tool-button', 'data-action': 'bring-here', 'aria-label': t('follow.bringLabel'), title: t('follow.bringLabel') }, icon('bring'))
      this.bringButton.addEventListener('click', () => this.bringHere())
    }
  }

  /** Whether this page leads: follow is on and it is this user's. */
  get leading () {
    return this.follow.on && this.follow.by === this.user.id
  }

  /** Whether this page follows someone now. */
  get following () {
    return this.follow.on && this.follow.by !== this.user.id && this.declined !== this.follow.at
  }

  // -- documents ---------------------------------------------------------------------

  attachMeta (metaDoc, provider) {
    this.followMap = metaDoc.getMap('follow')
    this.bringMap = metaDoc.getMap('bringHere')
    this.followMap.observe(() => this.readFollow())
    this.bringMap.observe(() => this.readBring(true))
    this.readFollow()
    this.readBring(false)
    provider.on('sync', (synced) => {
      if (!synced) return
      this.metaSynced = true
      this.land()
    })
  }

  /** A (new) board provider: its awareness, and the landing once it is synced. */
  attachBoard (provider) {
    if (this.awareness) this.awareness.off('change', this.onAwareness)
    this.awareness = provider.awareness
    this.onAwareness = () => this.leaderMoved()
    this.awareness.on('change', this.onAwareness)
    provider.on('sync', (synced) => {
      if (!synced) return
      this.boardSynced = true
      this.land()
    })
    if (this.isFacilitator) this.publishView()
  }

  readFollow () {
    const m = this.followMap
    const on = m.get('on') === true && typeof m.get('by') === 'string'
    const before = this.follow
    this.follow = { on, by: on ? m.get('by') : '', at: Number(m.get('at')) || 0 }
    if (this.follow.on && (!before.on || before.at !== this.follow.at)) {
      this.declined = null
      this.shown = null
    }
    this.render()
    if (this.following) this.leaderMoved()
  }

  /** Meta's bringHere changed (`live`), or was read on joining. */
  readBring (live) {
    const m = this.bringMap
    const target = area({ x: m.get('x'), y: m.get('y'), w: m.get('w'), h: m.get('h') })
    const seq = Number(m.get('seq')) || 0
    const by = typeof m.get('by') === 'string' ? m.get('by') : ''
    const fresh = seq > this.bring.seq
    this.bring = { seq, target, by, at: Number(m.get('at')) || 0 }
    if (!live || !fresh || !target || !this.landed || by === this.user.id) return
    this.show(target)
    toast(t('follow.broughtYou', { name: this.nameOf(by) || t('follow.facilitator') }), 'info')
  }

  // -- where this page looks ----------------------------------------------------------

  /** The board area this page shows, and its zoom. */
  currentView () {
    const r = this.canvas.svg.getBoundingClientRect()
    const { x, y, k } = this.canvas.view
    if (!r.width || !r.height) return null
    return { x: round(-x / k), y: round(-y / k), w: round(r.width / k), h: round(r.height / k), k: round(k) }
  }

  /** Show `target` (a board area) whole, centred. */
  show (target) {
    const r = this.canvas.svg.getBoundingClientRect()
    if (!r.width || !r.height) return
    const k = clamp(Math.min(r.width / target.w, r.height / target.h), MIN_ZOOM, MAX_ZOOM)
    const cx = target.x + target.w / 2
    const cy = target.y + target.h / 2
    this.canvas.view = { k, x: r.width / 2 - cx * k, y: r.height / 2 - cy * k }
    this.placed = { ...this.canvas.view }
    this.canvas.applyView()
  }

  /** The board's view changed (any cause): publish it; one this page did not make ends following. */
  viewChanged (view) {
    if (this.isFacilitator) this.publishView()
    const placed = this.placed
    if (!placed || !this.following) return
    const moved = Math.abs(view.k - placed.k) > 1e-6 || Math.abs(view.x - placed.x) > 0.5 || Math.abs(view.y - placed.y) > 0.5
    if (moved) this.stopFollowing(true)
  }

  /** This page's view in awareness (throttled): what followers and joiners see. */
  publishView () {
    if (this.viewTimer || !this.awareness) return
    this.viewTimer = setTimeout(() => {
      this.viewTimer = 0
      const view = this.currentView()
      if (!view || !this.awareness || Math.abs(view.x) > EXTENT || Math.abs(view.y) > EXTENT) return
      this.awareness.setLocalStateField('view', view)
    }, VIEW_EVERY_MS)
  }

  /** The display name of a person present (their awareness), or ''. */
  nameOf (userId) {
    if (!this.awareness || !userId) return ''
    for (const state of this.awareness.getStates().values()) {
      if (state && state.user && state.user.id === userId && typeof state.user.name === 'string') return state.user.name
    }
    return ''
  }

  /** The leader's published view, if present. */
  leaderView () {
    if (!this.awareness || !this.follow.on) return null
    for (const state of this.awareness.getStates().values()) {
      if (state && state.user && state.user.id === this.follow.by && state.user.role === 'facilitator') {
        const view = area(state.view)
        if (view) return view
      }
    }
    return null
  }

  leaderMoved () {
    this.render()
    if (!this.following || !this.landed) return
    const view = this.leaderView()
    const last = this.shown
    if (!view || (last && last.x === view.x && last.y === view.y && last.w === view.w && last.h === view.h)) return
    this.shown = view
    this.show(view)
  }

  /**
   * Once the board and meta are synced: follow the leader if follow is on,
   * else go where everyone was brought if that was recent, else fit the
   * board's content in view (not an empty origin).
   */
  land () {
    if (this.landed || !this.boardSynced || !this.metaSynced) return
    this.landed = true
    if (this.following) {
      const view = this.leaderView()
      if (view) {
        this.show(view)
        return
      }
    }
    const recent = this.bring.target && this.clock.known && this.clock.now() - this.bring.at < BRING_HERE_RECENT_MS
    if (recent) {
      this.show(this.bring.target)
      return
    }
    this.fitContent()
  }

  /**
   * The board's content in view: left as it is if it is all in view already,
   * else zoomed out (never in) and centred on it.
   */
  fitContent () {
    this.canvas.flush()
    const shapes = [...this.canvas.cache.values()]
    const r = this.canvas.svg.getBoundingClientRect()
    if (!shapes.length || !r.width || !r.height) return
    let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity
    for (const s of shapes) {
      const b = bounds(s)
      x0 = Math.min(x0, b.x); y0 = Math.min(y0, b.y)
      x1 = Math.max(x1, b.x + b.w); y1 = Math.max(y1, b.y + b.h)
    }
    const { x, y, k } = this.canvas.view
    const seen = { x: -x / k, y: -y / k, w: r.width / k, h: r.height / k }
    if (x0 >= seen.x && y0 >= seen.y && x1 <= seen.x + seen.w && y1 <= seen.y + seen.h) return
    const fit = clamp(Math.min((r.width - 2 * FIT_PAD_PX) / Math.max(x1 - x0, 1), (r.height - 2 * FIT_PAD_PX) / Math.max(y1 - y0, 1)), MIN_ZOOM, 1)
    this.canvas.view = { k: fit, x: r.width / 2 - ((x0 + x1) / 2) * fit, y: r.height / 2 - ((y0 + y1) / 2) * fit }
    this.placed = { ...this.canvas.view }
    this.canvas.applyView()
  }

  stopFollowing (byMoving) {
    this.declined = this.follow.at
    this.render()
    if (byMoving) toast(t('follow.stopped'), 'info')
  }

  resumeFollowing () {
    this.declined = null
    this.shown = null
    this.leaderMoved()
  }

  // -- the facilitator's actions -------------------------------------------------------

  async setFollow (on) {
    if (on) this.publishView()
    await this.moderate('mod:follow', { on })
  }

  async bringHere () {
    const view = this.currentView()
    if (!view) return
    const { x, y, w, h } = view
    if (await this.moderate('mod:bring-here', { x, y, w, h })) toast(t('follow.brought'), 'info')
  }

  setEnabled (enabled) {
    this.enabled = enabled
    this.render()
  }

  render () {
    if (this.followButton) {
      this.followButton.setAttribute('aria-pressed', String(this.leading))
      this.followButton.disabled = !this.enabled
      this.bringButton.disabled = !this.enabled
    }
    const name = this.nameOf(this.follow.by) || t('follow.facilitator')
    let text = ''
    let action = null
    if (this.leading) {
      text = t('follow.leadingYou')
      action = [t('follow.stopLeading'), () => this.setFollow(false), 'stop-leading']
    } else if (this.following) {
      text = t('follow.following', { name })
      action = [t('follow.stopFollowing'), () => this.stopFollowing(false), 'stop-following']
    } else if (this.follow.on) {
      text = t('follow.leading', { name })
      action = [t('follow.followAgain'), () => this.resumeFollowing(), 'follow-again']
    }
    // Rebuilt only when it says something else: it is a live region, and its button may have the focus.
    const key = text + '|' + (action ? action[2] : '')
    if (key === this.bannerKey) return
    this.bannerKey = key
    this.banner.hidden = !text
    this.banner.dataset.state = this.leading ? 'leading' : this.following ? 'following' : this.follow.on ? 'declined' : 'off'
    if (!text) {
      this.banner.replaceChildren()
      return
    }
    const button = el('button', { type: 'button', class: 'link-button', 'data-action': action[2] }, action[0])
    button.addEventListener('click', action[1])
    this.banner.replaceChildren(el('span', {}, text), button)
  }

  destroy () {
    clearTimeout(this.viewTimer)
    if (this.awareness) this.awareness.off('change', this.onAwareness)
  }
}

