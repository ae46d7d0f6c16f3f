// The whiteboard: renders the board document's `shapes` map (protocol.md §5.1)
// as SVG and turns pointer gestures into Yjs transactions.
import * as Y from 'yjs'
import { el, svg, randomHex, personColors, PERSON_COLORS, toast } from './util.js'
import { t } from './i18n.js'
import { MAX_PLACED_SIZE, imageNode, updateImageNode } from './images.js'
import {
  DEFAULT_FONT_SIZE, FONT_SIZES, POINT_TYPES, STICKY_MIN, STICKY_PAD, arrowHead, arrowShaft, bounds, boxOf,
  constrain, hitShape, intersects, lineHeight, mapCaret, normalizeShape, smoothPath, textDiff, wrapLines
} from './geometry.js'

/** The origin of this user's own transactions: what undo/redo tracks. */
export const LOCAL = Object.freeze({ origin: 'collab-local' })

/**
 * `adds`: the tool only makes new shapes (off while the board is full). A
 * tool's name is the catalogue's `tool.<id>` (i18n.js), a colour's `colour.<name>`,
 * a stroke width's `stroke.<name>`.
 */
export const TOOLS = [
  { id: 'select', key: 'v', icon: 'select', edits: true, adds: false },
  { id: 'pan', key: 'h', icon: 'pan', edits: false, adds: false },
  { id: 'pen', key: 'p', icon: 'pen', edits: true, adds: true },
  { id: 'line', key: 'l', icon: 'line', edits: true, adds: true },
  { id: 'arrow', key: 'a', icon: 'arrow', edits: true, adds: true },
  { id: 'rect', key: 'r', icon: 'rect', edits: true, adds: true },
  { id: 'ellipse', key: 'o', icon: 'ellipse', edits: true, adds: true },
  { id: 'sticky', key: 's', icon: 'sticky', edits: true, adds: true },
  { id: 'text', key: 't', icon: 'text', edits: true, adds: true },
  { id: 'eraser', key: 'e', icon: 'eraser', edits: true, adds: false }
]

/** Whether a tool only adds shapes. */
export const addsShapes = (id) => TOOLS.some((tool) => tool.id === id && tool.adds)

/**
 * Whether undoing (or redoing) the top item of an undo manager's stack only
 * deletes: it removes what the step inserted and restores nothing, because
 * everything the step deleted it had inserted itself (Yjs does not bring such
 * items back). A full board accepts such a change (protocol.md §8.3).
 */
const onlyDeletes = (stack) => {
  const item = stack[stack.length - 1]
  if (!item) return false
  for (const [client, deleted] of item.deletions.clients) {
    const inserted = item.insertions.clients.get(client) || []
    const covered = (d) => inserted.some((i) => i.clock <= d.clock && d.clock + d.len <= i.clock + i.len)
    if (!deleted.every(covered)) return false
  }
  return true
}

export const COLORS = [
  { value: '#1e1e1e', name: 'black', tint: '#e9ecef' },
  { value: '#e03131', name: 'red', tint: '#ffc9c9' },
  { value: '#f08c00', name: 'orange', tint: '#ffec99' },
  { value: '#2f9e44', name: 'green', tint: '#b2f2bb' },
  { value: '#1971c2', name: 'blue', tint: '#a5d8ff' },
  { value: '#9c36b5', name: 'purple', tint: '#eebefa' }
]
export const WIDTHS = [{ value: 2, name: 'thin' }, { value: 4, name: 'medium' }, { value: 8, name: 'thick' }]

const STICKY_FILL = '#fff59d'
const FONT_FAMILY = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
/** Tools Enter places in the middle of the view (keyboard creation), with their size. */
const PLACEABLE = { rect: [160, 100], ellipse: [160, 100], line: [160, 0], arrow: [160, 0], sticky: [160, 120], text: [0, 0] }
const MIN_ZOOM = 0.1
const MAX_ZOOM = 8
const DRAG_THRESHOLD_PX = 3
/** The text size bar's distance above a note, and the strip at the top it keeps clear of. */
const SIZE_BAR_GAP_PX = 42
const SIZE_BAR_CLEAR_PX = 60

const tintOf = (color) => (COLORS.find((c) => c.value === color) || COLORS[0]).tint
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v))
const round = (v) => Math.round(v * 100) / 100

let measureCtx = null
/** A function giving the width of a string in board text of this size. */
function measurer (size) {
  if (!measureCtx) measureCtx = document.createElement('canvas').getContext('2d')
  if (!measureCtx) return (line) => line.length * size * 0.55
  return (line) => {
    measureCtx.font = size + 'px ' + FONT_FAMILY
    return measureCtx.measureText(line).width
  }
}

/** The size of a text shape: its longest line by its lines. */
function measureText (text, size) {
  const measure = measurer(size)
  const lines = text.split('\n')
  const w = Math.max(...lines.map(measure), 8)
  return { w: Math.ceil(w) + 4, h: lines.length * lineHeight(size) }
}

const stickyHeights = new Map()
/** The height a sticky note of width w needs to show all its text, wrapped. */
function stickyHeight (text, w, size) {
  const key = size + '|' + w + '|' + text
  let h = stickyHeights.get(key)
  if (h === undefined) {
    const lines = text ? wrapLines(text, Math.max(1, w - 2 * STICKY_PAD), measurer(size)).length : 1
    h = Math.ceil(lines * lineHeight(size) + 2 * STICKY_PAD)
    if (stickyHeights.size > 500) stickyHeights.clear()
    stickyHeights.set(key, h)
  }
  return h
}

export class Board {
  constructor ({ user, images = null, onChange = () => {}, onReadOnlyAttempt = () => {}, onFullAttempt = () => {}, onLockedAttempt = () => {}, onContextMenu = () => {} }) {
    this.user = user
    // Where image shapes' pictures come from (images.js ImageStore).
    this.images = images
    this.onChange = onChange
    this.onLockedAttempt = onLockedAttempt
    this.onContextMenu = onContextMenu
    this.onReadOnlyAttempt = onReadOnlyAttempt
    this.onFullAttempt = onFullAttempt
    // Told every view change (facilitation.js: follow me, the pointer's trails).
    this.onView = () => {}
    this.view = { x: 0, y: 0, k: 1 }
    this.tool = 'select'
    this.preferredTool = 'pen'
    this.style = { color: COLORS[0].value, width: 4, fill: false, fontSize: DEFAULT_FONT_SIZE }
    this.selection = new Set()
    // Shapes a facilitator locked (meta `shapeLocks`, protocol.md §5.1), and
    // whether they bind this user: the server refuses a participant's change
    // to them, so the board does not offer one.
    this.locked = new Set()
    this.lockBinds = true
    this.writable = true
    // The board is at its size limit (room:state `full`, protocol.md §6.4):
    // the server takes only deletions, so nothing that adds is sent.
    this.full = false
    this.elements = new Map()
    this.cache = new Map()
    this.dirty = new Set()
    this.reorder = false
    this.frame = 0
    this.gesture = null
    this.pointers = new Map()
    this.space = false
    this.editing = null
    this.cursorTimer = 0
    this.cursorEls = new Map()
    this.doc = null
    this.buildDom()
  }

  // -- DOM ------------------------------------------------------------------

  buildDom () {
    this.shapesLayer = svg('g', { class: 'shapes' })
    this.overlay = svg('g', { class: 'overlay' })
    this.viewport = svg('g', { class: 'viewport' }, this.shapesLayer, this.overlay)
    this.grid = svg('pattern', { id: 'board-grid', width: 24, height: 24, patternUnits: 'userSpaceOnUse' },
      svg('circle', { cx: 1, cy: 1, r: 1, fill: '#d5d9de' }))
    this.svg = svg('svg', {
      class: 'board tool-select',
      role: 'application',
      'aria-roledescription': 'whiteboard',
      'aria-label': t('board.label'),
      tabindex: 0
    },
    svg('defs', {}, this.grid),
    svg('rect', { class: 'board-bg', width: '100%', height: '100%', fill: 'url(#board-grid)' }),
    this.viewport)
    this.cursorLayer = el('div', { class: 'cursors', 'aria-hidden': 'true' })
    this.editor = el('textarea', { class: 'text-editor', 'aria-label': t('board.editText'), hidden: true, spellcheck: 'true' })
    this.summary = el('p', { class: 'visually-hidden', 'aria-live': 'polite' })
    this.announcer = el('p', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' })
    this.sizeButtons = FONT_SIZES.map((f) => {
      const b = el('button', {
        type: 'button', class: 'text-size-button', 'data-size': f.value, 'aria-label': t('board.textSizeNamed', { size: t('size.' + f.name) }), title: t('size.' + f.name), 'aria-pressed': 'false'
      }, f.name)
      b.addEventListener('click', () => this.setTextSize(f.value))
      return b
    })
    this.sizeBar = el('div', { class: 'text-size-bar', role: 'toolbar', 'aria-label': t('board.textSize'), hidden: true }, ...this.sizeButtons)
    // Pressing a size while typing keeps the editor open (no blur).
    this.sizeBar.addEventListener('pointerdown', (e) => { if (this.editing) e.preventDefault() })
    // Tabbing from the editor to a size keeps it open; leaving both ends the edit.
    this.sizeBar.addEventListener('focusout', (e) => {
      if (e.relatedTarget !== this.editor && !this.sizeBar.contains(e.relatedTarget)) this.closeEditor()
    })
    this.root = el('div', { class: 'board-wrap' }, this.svg, this.cursorLayer, this.editor, this.sizeBar, this.summary, this.announcer)

    const s = this.svg
    s.addEventListener('pointerdown', (e) => this.onPointerDown(e))
    s.addEventListener('pointermove', (e) => this.onPointerMove(e))
    s.addEventListener('pointerup', (e) => this.onPointerUp(e))
    s.addEventListener('pointercancel', (e) => this.onPointerUp(e, true))
    s.addEventListener('pointerleave', () => this.publishCursor(null))
    s.addEventListener('dblclick', (e) => this.onDoubleClick(e))
    s.addEventListener('wheel', (e) => this.onWheel(e), { passive: false })
    s.addEventListener('contextmenu', (e) => {
      e.preventDefault()
      this.onContext(e)
    })
    this.editor.addEventListener('input', () => this.onEditorInput())
    this.editor.addEventListener('blur', (e) => { if (!this.sizeBar.contains(e.relatedTarget)) this.closeEditor() })
    this.editor.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' || (e.key === 'Enter' && (e.ctrlKey || e.metaKey))) {
        e.preventDefault()
        e.stopPropagation()
        this.closeEditor()
        this.svg.focus({ preventScroll: true })
      }
    })
    new ResizeObserver(() => this.applyView()).observe(this.svg)
  }

  // -- binding to a document ---------------------------------------------------

  /** Bind to a board document and its awareness (again after a resync). */
  attach (doc, awareness) {
    this.detach()
    this.doc = doc
    this.shapes = doc.getMap('shapes')
    this.awareness = awareness
    // Only this user's own transactions are tracked. Every gesture ends its
    // step with stopCapturing (a stroke, a placed shape, a move, a resize, an
    // erase, a text editing session), so the timeout only bounds a step that
    // somehow lacks its end.
    this.undo = new Y.UndoManager(this.shapes, { trackedOrigins: new Set([LOCAL]), captureTimeout: 600000 })
    this.undo.on('stack-item-added', () => this.onChange())
    this.undo.on('stack-item-popped', () => this.onChange())
    this.observer = (events) => {
      for (const e of events) {
        if (e.target === this.shapes) {
          for (const key of e.changes.keys.keys()) this.dirty.add(key)
          this.reorder = true
        } else if (typeof e.path[0] === 'string') {
          this.dirty.add(e.path[0])
          if (e.keysChanged && e.keysChanged.has('z')) this.reorder = true
        }
      }
      this.schedule()
    }
    this.shapes.observeDeep(this.observer)
    this.awarenessObserver = () => this.renderCursors()
    awareness.on('change', this.awarenessObserver)
    for (const node of this.elements.values()) node.remove()
    this.elements.clear()
    this.cache.clear()
    this.selection.clear()
    this.shapes.forEach((_, id) => this.dirty.add(id))
    this.reorder = true
    this.flush()
    awareness.setLocalState({ ...(awareness.getLocalState() || {}), cursor: null, tool: this.tool, color: this.style.color })
    this.renderCursors()
  }

  detach () {
    if (!this.doc) return
    this.cancelGesture()
    this.closeEditor()
    this.shapes.unobserveDeep(this.observer)
    this.awareness.off('change', this.awarenessObserver)
    this.undo.destroy()
    this.doc = null
  }

  // -- rendering ---------------------------------------------------------------

  schedule () {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0
        this.flush()
      })
    }
  }

  /** Render every changed shape now. */
  flush () {
    if (!this.doc) return
    for (const id of this.dirty) this.renderShape(id)
    this.dirty.clear()
    if (this.reorder) {
      this.sortLayer()
      this.reorder = false
    }
    for (const id of this.selection) if (!this.cache.has(id)) this.selection.delete(id)
    this.renderOverlay()
    this.bindEditorText()
    this.positionEditor()
    this.summary.textContent = t('board.shapeCount', { count: this.cache.size })
    this.onChange()
  }

  /** A shape as shown: a sticky note is at least as tall as its wrapped text. */
  readShape (id) {
    const raw = this.shapes.get(id)
    const s = normalizeShape(id, raw instanceof Y.Map ? raw.toJSON() : raw)
    if (s && s.type === 'sticky') {
      const b = boxOf(s)
      const need = stickyHeight(s.text, b.w, s.fontSize)
      if (b.h < need) s.h = s.h < 0 ? -need : need
    }
    return s
  }

  renderShape (id) {
    const s = this.readShape(id)
    let node = this.elements.get(id)
    if (!s) {
      if (node) node.remove()
      this.elements.delete(id)
      this.cache.delete(id)
      if (this.editing && this.editing.id === id) this.closeEditor()
      return
    }
    const prev = this.cache.get(id)
    this.cache.set(id, s)
    if (!node || node.getAttribute('data-type') !== s.type) {
      const fresh = this.createNode(s)
      if (node) node.replaceWith(fresh)
      else this.shapesLayer.append(fresh)
      node = fresh
      this.elements.set(id, node)
      node.classList.toggle('locked', this.locked.has(id))
      this.reorder = true
    }
    if (prev && prev.z !== s.z) this.reorder = true
    this.updateNode(node, s)
  }

  createNode (s) {
    const attrs = { 'data-id': s.id, 'data-type': s.type, class: 'shape shape-' + s.type }
    switch (s.type) {
      case 'rect': return svg('rect', attrs)
      case 'ellipse': return svg('ellipse', attrs)
      case 'pen':
      case 'line':
        return svg('path', { ...attrs, fill: 'none', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' })
      case 'arrow':
        return svg('g', attrs,
          svg('path', { class: 'arrow-line', fill: 'none', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' }),
          svg('path', { class: 'arrow-head', 'stroke-linejoin': 'round' }))
      case 'image': return imageNode(attrs)
      case 'sticky': {
        const body = document.createElement('div')
        body.className = 'sticky-text'
        return svg('g', attrs, svg('rect', { class: 'sticky-bg', rx: 2 }),
          svg('foreignObject', { class: 'sticky-fo' }, body))
      }
      default:
        return svg('text', { ...attrs, 'dominant-baseline': 'central' })
    }
  }

  updateNode (node, s) {
    const set = (n, a) => { for (const [k, v] of Object.entries(a)) n.setAttribute(k, v) }
    const b = boxOf(s)
    switch (s.type) {
      case 'rect':
        set(node, { x: round(b.x), y: round(b.y), width: round(b.w), height: round(b.h), stroke: s.color, 'stroke-width': s.width, fill: s.fill || 'none' })
        break
      case 'ellipse':
        set(node, { cx: round(b.x + b.w / 2), cy: round(b.y + b.h / 2), rx: round(b.w / 2), ry: round(b.h / 2), stroke: s.color, 'stroke-width': s.width, fill: s.fill || 'none' })
        break
      case 'pen':
        set(node, { d: smoothPath(s.points), stroke: s.color, 'stroke-width': s.width })
        break
      case 'line':
        set(node, { d: s.points.length ? 'M' + s.points.map((p) => round(p[0]) + ' ' + round(p[1])).join('L') : '', stroke: s.color, 'stroke-width': s.width })
        break
      case 'arrow': {
        const pts = s.points
        const shaft = arrowShaft(pts, s.width)
        set(node.firstChild, { d: shaft.length ? 'M' + shaft.map((p) => round(p[0]) + ' ' + round(p[1])).join('L') : '', stroke: s.color, 'stroke-width': s.width })
        const head = pts.length >= 2 ? arrowHead(pts[pts.length - 2], pts[pts.length - 1], s.width) : ''
        set(node.lastChild, { d: head, fill: s.color, stroke: s.color, 'stroke-width': Math.min(s.width, 2) })
        break
      }
      case 'image':
        updateImageNode(node, s, { x: round(b.x), y: round(b.y), w: round(b.w), h: round(b.h) }, this.images)
        break
      case 'sticky': {
        const [bg, fo] = node.children
        set(bg, { x: round(b.x), y: round(b.y), width: round(b.w), height: round(b.h), fill: s.fill || STICKY_FILL, stroke: s.color, 'stroke-width': 1 })
        set(fo, { x: round(b.x), y: round(b.y), width: round(b.w), height: round(b.h) })
        const body = fo.firstChild
        if (body.textContent !== s.text) body.textContent = s.text
        body.style.fontSize = s.fontSize + 'px'
        body.style.lineHeight = lineHeight(s.fontSize) + 'px'
        body.style.padding = STICKY_PAD + 'px'
        break
      }
      default: {
        // Each line's middle is half a line height below its top, as in the editor.
        const lh = lineHeight(s.fontSize)
        set(node, { x: round(s.x), y: round(s.y + lh / 2), fill: s.color, 'font-size': s.fontSize })
        const lines = s.text.split('\n')
        node.replaceChildren(...lines.map((line, i) =>
          svg('tspan', { x: round(s.x), dy: i === 0 ? 0 : lh }, line || ' ')))
      }
    }
  }

  sortLayer () {
    const order = [...this.cache.values()].sort((a, b) => a.z - b.z || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    let child = this.shapesLayer.firstChild
    for (const s of order) {
      const node = this.elements.get(s.id)
      if (!node) continue
      if (node === child) child = child.nextSibling
      else this.shapesLayer.insertBefore(node, child)
    }
  }

  /** The locked shapes (`ids`), and whether they bind this user (not a facilitator). */
  setLocked (ids, binds) {
    this.locked = new Set(ids)
    this.lockBinds = binds
    if (binds) {
      for (const id of this.locked) this.selection.delete(id)
      const g = this.gesture
      if (g && ((g.ids && g.ids.some((id) => this.locked.has(id))) || (g.id && this.locked.has(g.id)))) this.cancelGesture()
      if (this.editing && this.locked.has(this.editing.id)) this.closeEditor()
    }
    for (const [id, node] of this.elements) node.classList.toggle('locked', this.locked.has(id))
    this.renderOverlay()
    this.onChange()
  }

  /** Whether this user may not change shape `id` (a facilitator locked it). */
  isProtected (id) {
    return this.lockBinds && this.locked.has(id)
  }

  /** `ids` without the protected ones; tells the user once if any were. */
  unprotected (ids) {
    const free = ids.filter((id) => !this.isProtected(id))
    if (free.length < ids.length) this.onLockedAttempt()
    return free
  }

  renderOverlay () {
    const k = this.view.k
    const parts = []
    for (const id of this.locked) {
      const s = this.cache.get(id)
      if (!s) continue
      const b = bounds(s)
      const size = 14 / k
      parts.push(svg('g', { class: 'lock-badge', transform: `translate(${round(b.x + b.w - size / 2)} ${round(b.y - size / 2)}) scale(${round(size / 16)})` },
        svg('rect', { x: 0, y: 0, width: 16, height: 16, rx: 4 }),
        svg('path', { d: 'M5 7V5.5a3 3 0 0 1 6 0V7M4 7h8v6H4z' })))
    }
    const g = this.gesture
    const offset = g && g.kind === 'move' && g.moved ? g.delta : null
    for (const id of this.selection) {
      const s = this.cache.get(id)
      if (!s) continue
      const b = bounds(s)
      const pad = 4 / k
      parts.push(svg('rect', {
        class: 'selection-box',
        x: b.x - pad + (offset ? offset[0] : 0),
        y: b.y - pad + (offset ? offset[1] : 0),
        width: b.w + 2 * pad,
        height: b.h + 2 * pad,
        'vector-effect': 'non-scaling-stroke'
      }))
    }
    if (this.selection.size === 1 && this.writable && !this.full && !offset) {
      const s = this.cache.get([...this.selection][0])
      if (s && s.type !== 'text') {
        const b = bounds(s)
        const pad = 4 / k
        const size = 10 / k
        const corners = { nw: [b.x - pad, b.y - pad], ne: [b.x + b.w + pad, b.y - pad], sw: [b.x - pad, b.y + b.h + pad], se: [b.x + b.w + pad, b.y + b.h + pad] }
        for (const [name, [x, y]] of Object.entries(corners)) {
          parts.push(svg('rect', {
            class: 'handle handle-' + name, 'data-handle': name, x: x - size / 2, y: y - size / 2, width: size, height: size, 'vector-effect': 'non-scaling-stroke'
          }))
        }
      }
    }
    if (g && g.kind === 'marquee') {
      const x = Math.min(g.start[0], g.cur[0]); const y = Math.min(g.start[1], g.cur[1])
      parts.push(svg('rect', { class: 'marquee', x, y, width: Math.abs(g.cur[0] - g.start[0]), height: Math.abs(g.cur[1] - g.start[1]), 'vector-effect': 'non-scaling-stroke' }))
    }
    if (g && g.kind === 'erase' && g.last) {
      parts.push(svg('circle', { class: 'eraser-ring', cx: g.last[0], cy: g.last[1], r: 8 / k, 'vector-effect': 'non-scaling-stroke' }))
    }
    this.overlay.replaceChildren(...parts)
    this.renderSizeBar()
  }

  renderCursors () {
    if (!this.awareness) return
    const seen = new Set()
    const own = this.awareness.clientID
    // Everyone present, this user too: the colours the list of people shows.
    const ids = [this.user.id]
    for (const state of this.awareness.getStates().values()) if (state && state.user && typeof state.user.id === 'string') ids.push(state.user.id)
    const colors = personColors(ids)
    for (const [clientId, state] of this.awareness.getStates()) {
      if (clientId === own || !state || !state.user || !state.cursor) continue
      const { x, y } = state.cursor
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue
      seen.add(clientId)
      let node = this.cursorEls.get(clientId)
      if (!node) {
        node = el('div', { class: 'cursor' },
          svg('svg', { width: 16, height: 16, viewBox: '0 0 16 16', class: 'cursor-arrow' },
            svg('path', { d: 'M1 1l5.5 13 2-5.5 5.5-2z', stroke: '#fff', 'stroke-width': 1.2 })),
          el('span', { class: 'cursor-label' }))
        this.cursorLayer.append(node)
        this.cursorEls.set(clientId, node)
      }
      const color = colors.get(state.user.id) || PERSON_COLORS[0]
      node.firstChild.firstChild.setAttribute('fill', color)
      const label = node.lastChild
      const name = String(state.user.name || t('common.guest'))
      if (label.textContent !== name) label.textContent = name
      label.style.background = color
      node.dataset.user = String(state.user.id || '')
      node.dataset.role = String(state.user.role || '')
      node.style.transform = `translate(${round(x * this.view.k + this.view.x)}px, ${round(y * this.view.k + this.view.y)}px)`
    }
    for (const [clientId, node] of this.cursorEls) {
      if (!seen.has(clientId)) {
        node.remove()
        this.cursorEls.delete(clientId)
      }
    }
  }

  // -- view --------------------------------------------------------------------

  applyView () {
    const { x, y, k } = this.view
    this.viewport.setAttribute('transform', `matrix(${k} 0 0 ${k} ${round(x)} ${round(y)})`)
    this.grid.setAttribute('patternTransform', `matrix(${k} 0 0 ${k} ${round(x)} ${round(y)})`)
    this.renderOverlay()
    this.renderCursors()
    this.positionEditor()
    this.onChange()
    this.onView(this.view)
  }

  zoomAt (factor, sx, sy) {
    const k = clamp(this.view.k * factor, MIN_ZOOM, MAX_ZOOM)
    const f = k / this.view.k
    this.view = { x: sx - (sx - this.view.x) * f, y: sy - (sy - this.view.y) * f, k }
    this.applyView()
  }

  /** Zoom by factor around the centre of the board. */
  zoomBy (factor) {
    const r = this.svg.getBoundingClientRect()
    this.zoomAt(factor, r.width / 2, r.height / 2)
  }

  resetZoom () {
    this.zoomBy(1 / this.view.k)
  }

  /** Fit every shape into view (or go back to the origin on an empty board). */
  fit () {
    const r = this.svg.getBoundingClientRect()
    const shapes = [...this.cache.values()]
    if (!shapes.length || !r.width || !r.height) {
      this.view = { x: 0, y: 0, k: 1 }
      this.applyView()
      return
    }
    let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity
    for (const s of shapes) {
      const b = bounds(s)
      x0 = Math.min(x0, b.x); y0 = Math.min(y0, b.y)
      x1 = Math.max(x1, b.x + b.w); y1 = Math.max(y1, b.y + b.h)
    }
    const pad = 40
    const k = clamp(Math.min((r.width - 2 * pad) / Math.max(x1 - x0, 1), (r.height - 2 * pad) / Math.max(y1 - y0, 1)), MIN_ZOOM, 2)
    this.view = { k, x: (r.width - (x1 - x0) * k) / 2 - x0 * k, y: (r.height - (y1 - y0) * k) / 2 - y0 * k }
    this.applyView()
  }

  get zoom () {
    return this.view.k
  }

  // -- tools and style ---------------------------------------------------------

  setTool (id) {
    if (!TOOLS.some((tool) => tool.id === id)) return false
    if (!this.writable && id !== 'pan') {
      this.onReadOnlyAttempt()
      return false
    }
    if (this.full && addsShapes(id)) {
      this.onFullAttempt()
      return false
    }
    this.closeEditor()
    this.tool = id
    this.heldTool = null
    if (id !== 'select') this.selection.clear()
    if (id !== 'pan' && id !== 'select') this.preferredTool = id
    this.svg.setAttribute('class', 'board tool-' + id)
    this.renderOverlay()
    if (this.awareness) this.awareness.setLocalStateField('tool', id)
    this.onChange()
    return true
  }

  /** Change the style for new shapes; applied to the selected shapes too. */
  setStyle (patch) {
    Object.assign(this.style, patch)
    if (this.awareness && patch.color) this.awareness.setLocalStateField('color', patch.color)
    if (this.full && this.writable && this.selection.size) this.onFullAttempt()
    else if (this.writable && this.selection.size) {
      this.act(() => {
        for (const id of this.selection) {
          const m = this.shapes.get(id)
          if (!(m instanceof Y.Map)) continue
          const type = m.get('type')
          if (type === 'image') continue // a picture has no colour or stroke
          if (patch.color) {
            m.set('color', patch.color)
            if (m.has('fill') && type !== 'sticky') m.set('fill', tintOf(patch.color))
          }
          if (patch.width && type !== 'sticky' && type !== 'text') m.set('width', patch.width)
          if ('fill' in patch && (type === 'rect' || type === 'ellipse')) {
            if (patch.fill) m.set('fill', tintOf(m.get('color')))
            else m.delete('fill')
          }
        }
      })
    }
    this.onChange()
  }

  setWritable (writable) {
    if (writable === this.writable) return
    this.writable = writable
    if (!writable) {
      this.cancelGesture()
      this.closeEditor()
      this.selection.clear()
      if (this.tool !== 'pan') this.preferredTool = this.tool
      // The tool in hand when the board went read-only: a drag with a drawing
      // tool is an attempt to draw (a notice), not a pan (see onPointerDown).
      this.heldTool = this.tool
      this.tool = 'pan'
    } else {
      this.heldTool = null
      this.tool = this.preferredTool || 'select'
      if (this.full && addsShapes(this.tool)) this.tool = 'select'
    }
    this.svg.setAttribute('class', 'board tool-' + this.tool + (writable ? '' : ' read-only'))
    if (this.awareness) this.awareness.setLocalStateField('tool', this.tool)
    this.renderOverlay()
    this.onChange()
  }

  /**
   * The board is full (or has room again). While it is full only deletions
   * are made: the tools that add give way to Select, and moving, resizing,
   * restyling and editing text are refused here (onFullAttempt) instead of
   * by the server, whose refusals count against the connection (§8).
   */
  setFull (full) {
    if (full === this.full) return
    this.full = full
    if (full) {
      const g = this.gesture
      if (g && g.kind !== 'pan' && g.kind !== 'marquee' && g.kind !== 'erase' && g.kind !== 'pinch') this.cancelGesture()
      this.closeEditor()
      if (addsShapes(this.tool)) {
        this.preferredTool = this.tool
        this.tool = 'select'
        this.svg.setAttribute('class', 'board tool-select' + (this.writable ? '' : ' read-only'))
        if (this.awareness) this.awareness.setLocalStateField('tool', this.tool)
      }
    }
    this.renderOverlay()
    this.onChange()
  }

  // -- editing -----------------------------------------------------------------

  /** One undo step: a transaction with this user's origin. */
  act (fn) {
    if (!this.doc) return
    this.undo.stopCapturing()
    this.doc.transact(fn, LOCAL)
    this.undo.stopCapturing()
    this.flush()
  }

  transact (fn) {
    this.doc.transact(fn, LOCAL)
  }

  newId () {
    return 's' + Date.now().toString(36) + randomHex(5)
  }

  nextZ () {
    let z = 0
    this.shapes.forEach((v) => {
      const value = v instanceof Y.Map ? v.get('z') : v && v.z
      if (typeof value === 'number' && Number.isFinite(value) && value >= z) z = Math.floor(value) + 1
    })
    return z
  }

  /** Insert a new shape (fields per §5.1) inside the current transaction. */
  insertShape (id, fields, points) {
    const m = new Y.Map()
    this.shapes.set(id, m)
    for (const [key, value] of Object.entries(fields)) if (value != null) m.set(key, value)
    if (points) {
      const arr = new Y.Array()
      m.set('points', arr)
      arr.push(points)
    }
    m.set('author', this.user.id)
    m.set('z', this.nextZ())
    return m
  }

  undoLast () {
    if (!this.writable || !this.undo || !this.undo.undoStack.length) return
    if (this.full && !onlyDeletes(this.undo.undoStack)) return this.onFullAttempt()
    this.closeEditor()
    if (!this.popStep(false)) this.announce(t('board.undoGone'), true)
    this.flush()
  }

  redoLast () {
    if (!this.writable || !this.undo || !this.undo.redoStack.length) return
    if (this.full && !onlyDeletes(this.undo.redoStack)) return this.onFullAttempt()
    this.closeEditor()
    if (!this.popStep(true)) this.announce(t('board.redoGone'), true)
    this.flush()
  }

  /**
   * Undo (or redo) exactly the top step of this user's stack; whether it
   * changed anything. Yjs passes over a step that changes nothing any more
   * (someone else erased the shape it drew) and takes back the step below
   * instead, an older change the user did not ask for: here such a step is
   * dropped and nothing else is touched.
   */
  popStep (redo) {
    const um = this.undo
    const key = redo ? 'redoStack' : 'undoStack'
    const stack = um[key]
    if (!stack.length) return false
    um[key] = [stack[stack.length - 1]]
    try {
      return (redo ? um.redo() : um.undo()) != null
    } finally {
      um[key] = stack.slice(0, -1).concat(um[key])
    }
  }

  /** Say something to screen readers (and show it, when asked). */
  announce (message, visible = false) {
    this.announcer.textContent = ''
    this.announcer.textContent = message
    if (visible) toast(message, 'info')
  }

  get canUndo () {
    return !!this.undo && (this.full ? onlyDeletes(this.undo.undoStack) : this.undo.undoStack.length > 0)
  }

  get canRedo () {
    return !!this.undo && (this.full ? onlyDeletes(this.undo.redoStack) : this.undo.redoStack.length > 0)
  }

  deleteSelection () {
    if (!this.writable || !this.selection.size) return
    const ids = this.unprotected([...this.selection])
    this.selection.clear()
    this.act(() => { for (const id of ids) this.shapes.delete(id) })
  }

  selectAll () {
    if (!this.writable) return
    this.setTool('select')
    this.selection = new Set([...this.cache.keys()].filter((id) => !this.isProtected(id)))
    this.renderOverlay()
    this.onChange()
  }

  nudge (dx, dy) {
    if (!this.writable || !this.selection.size) return
    if (this.full) return this.onFullAttempt()
    this.act(() => this.translate([...this.selection], dx, dy))
  }

  /** Bring the selection to the front (or send it to the back). */
  restack (front) {
    if (!this.writable || !this.selection.size) return
    if (this.full) return this.onFullAttempt()
    const zs = [...this.cache.values()].map((s) => s.z)
    let z = front ? Math.max(0, ...zs) + 1 : Math.min(0, ...zs) - 1
    this.act(() => {
      for (const id of this.selection) {
        const m = this.shapes.get(id)
        if (m instanceof Y.Map) m.set('z', front ? z++ : z--)
      }
    })
  }

  translate (ids, dx, dy) {
    for (const id of ids) {
      const m = this.shapes.get(id)
      const s = this.cache.get(id) || this.readShape(id)
      if (!(m instanceof Y.Map) || !s) continue
      m.set('x', round(s.x + dx))
      m.set('y', round(s.y + dy))
      if (POINT_TYPES.has(s.type)) this.replacePoints(m, s.points.map(([x, y]) => [round(x + dx), round(y + dy)]))
    }
  }

  replacePoints (m, points) {
    let arr = m.get('points')
    if (!(arr instanceof Y.Array)) {
      arr = new Y.Array()
      m.set('points', arr)
    } else if (arr.length) {
      arr.delete(0, arr.length)
    }
    arr.insert(0, points)
  }

  // -- pointer input -----------------------------------------------------------

  screenPoint (e) {
    const r = this.svg.getBoundingClientRect()
    return [e.clientX - r.left, e.clientY - r.top]
  }

  toBoard (e) {
    const [sx, sy] = this.screenPoint(e)
    return [(sx - this.view.x) / this.view.k, (sy - this.view.y) / this.view.k]
  }

  hitTest (p, interior = true) {
    const tol = 6 / this.view.k
    const order = [...this.cache.values()].sort((a, b) => b.z - a.z || (a.id < b.id ? 1 : -1))
    for (const s of order) if (hitShape(s, p, tol, interior)) return s.id
    return null
  }

  onPointerDown (e) {
    if (this.editing) this.closeEditor()
    this.svg.focus({ preventScroll: true })
    this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY, type: e.pointerType })
    if (this.pointers.size === 2 && [...this.pointers.values()].every((p) => p.type === 'touch')) {
      this.cancelGesture(true)
      this.startPinch()
      return
    }
    if (this.pointers.size > 1 || this.gesture) return
    if (e.button === 2) return
    e.preventDefault()
    this.svg.setPointerCapture(e.pointerId)
    const p = this.toBoard(e)
    const drawing = !this.writable && this.heldTool && this.heldTool !== 'select' && this.heldTool !== 'pan'
    if (e.button === 1 || this.space || (this.tool === 'pan' && !drawing)) {
      this.gesture = { kind: 'pan', pointerId: e.pointerId, start: [e.clientX, e.clientY], view: { ...this.view } }
      this.svg.classList.add('panning')
      return
    }
    if (!this.writable) {
      this.onReadOnlyAttempt()
      return
    }
    if (this.full && addsShapes(this.tool)) {
      this.onFullAttempt()
      return
    }
    const base = { pointerId: e.pointerId, start: p, startScreen: [e.clientX, e.clientY] }
    switch (this.tool) {
      case 'select': return this.beginSelect(e, p, base)
      case 'pen': return this.beginStroke(p, base)
      case 'line':
      case 'arrow':
      case 'rect':
      case 'ellipse':
        this.undo.stopCapturing()
        this.gesture = { ...base, kind: 'create', type: this.tool, id: null }
        return
      case 'sticky': return this.createSticky(p)
      case 'text': return this.createText(p)
      case 'eraser':
        this.undo.stopCapturing()
        this.gesture = { ...base, kind: 'erase', last: p }
        this.eraseAlong(p, p)
        this.renderOverlay()
    }
  }

  beginSelect (e, p, base) {
    const handle = e.target && e.target.closest ? e.target.closest('[data-handle]') : null
    if (handle && this.selection.size === 1) {
      const id = [...this.selection][0]
      const s = this.cache.get(id)
      if (s) {
        const ext = POINT_TYPES.has(s.type) ? bounds({ ...s, width: 0 }) : boxOf(s)
        const corners = { nw: [ext.x, ext.y], ne: [ext.x + ext.w, ext.y], sw: [ext.x, ext.y + ext.h], se: [ext.x + ext.w, ext.y + ext.h] }
        const opposite = { nw: 'se', ne: 'sw', sw: 'ne', se: 'nw' }
        const name = handle.getAttribute('data-handle')
        this.undo.stopCapturing()
        this.gesture = { ...base, kind: 'resize', id, orig: s, corner: corners[name], anchor: corners[opposite[name]] }
        return
      }
    }
    let hit = this.hitTest(p)
    if (hit && this.isProtected(hit)) {
      this.onLockedAttempt()
      hit = null
    }
    if (hit) {
      if (e.shiftKey) {
        if (this.selection.has(hit)) this.selection.delete(hit)
        else this.selection.add(hit)
      } else if (!this.selection.has(hit)) {
        this.selection = new Set([hit])
      }
      this.gesture = { ...base, kind: 'move', ids: [...this.selection], delta: [0, 0], moved: false }
    } else {
      if (!e.shiftKey) this.selection.clear()
      this.gesture = { ...base, kind: 'marquee', cur: p, base: new Set(this.selection) }
    }
    this.renderOverlay()
    this.onChange()
  }

  beginStroke (p, base) {
    const id = this.newId()
    const start = [round(p[0]), round(p[1])]
    this.undo.stopCapturing()
    this.transact(() => {
      this.insertShape(id, { type: 'pen', x: start[0], y: start[1], w: 0, h: 0, color: this.style.color, width: this.style.width }, [start])
    })
    this.gesture = { ...base, kind: 'stroke', id, last: start, raw: start }
    this.flush()
  }

  createSticky (p) {
    const id = this.newId()
    this.undo.stopCapturing()
    const [w, h] = PLACEABLE.sticky
    this.transact(() => {
      this.insertShape(id, {
        type: 'sticky', x: round(p[0] - w / 2), y: round(p[1] - h / 2), w, h, color: '#c9b458',
        fill: this.style.fill ? tintOf(this.style.color) : STICKY_FILL, width: 1, text: new Y.Text(), fontSize: this.style.fontSize
      })
    })
    this.afterCreateText(id)
  }

  createText (p) {
    const id = this.newId()
    this.undo.stopCapturing()
    const lh = lineHeight(this.style.fontSize)
    this.transact(() => {
      this.insertShape(id, {
        type: 'text', x: round(p[0]), y: round(p[1] - lh / 2), w: 8, h: lh, color: this.style.color, width: 0, text: new Y.Text(), fontSize: this.style.fontSize
      })
    })
    this.afterCreateText(id)
  }

  afterCreateText (id) {
    this.flush()
    this.tool = 'select'
    this.svg.setAttribute('class', 'board tool-select')
    if (this.awareness) this.awareness.setLocalStateField('tool', 'select')
    this.selection = new Set([id])
    this.openEditor(id, true)
  }

  onPointerMove (e) {
    if (this.pointers.has(e.pointerId)) this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY, type: e.pointerType })
    const g = this.gesture
    const p = this.toBoard(e)
    this.publishCursor(p)
    if (!g) return
    if (g.kind === 'pinch') return this.updatePinch()
    if (g.pointerId !== e.pointerId) return
    const movedPx = Math.hypot(e.clientX - (g.startScreen || g.start)[0], e.clientY - (g.startScreen || g.start)[1])
    switch (g.kind) {
      case 'pan':
        this.view = { ...g.view, x: g.view.x + e.clientX - g.start[0], y: g.view.y + e.clientY - g.start[1] }
        this.applyView()
        break
      case 'stroke': {
        const events = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : []
        const batch = []
        for (const ev of (events.length ? events : [e])) {
          const raw = this.toBoard(ev)
          // Light smoothing: follow the pointer at 60 %, skip sub-pixel steps.
          const next = [g.last[0] + (raw[0] - g.last[0]) * 0.6, g.last[1] + (raw[1] - g.last[1]) * 0.6]
          g.raw = raw
          if (Math.hypot(next[0] - g.last[0], next[1] - g.last[1]) * this.view.k < 1.5) continue
          g.last = next
          batch.push([round(next[0]), round(next[1])])
        }
        if (batch.length) this.appendPoints(g.id, batch)
        break
      }
      case 'create':
        if (!g.id && movedPx < DRAG_THRESHOLD_PX) return
        this.updateCreate(g, e.shiftKey ? constrain(g.start, p, g.type === 'line' || g.type === 'arrow' ? 'line' : 'box') : p)
        break
      case 'move':
        if (!g.moved && movedPx < DRAG_THRESHOLD_PX) return
        if (this.full) {
          // Selecting (to delete) works; moving would add to a full board.
          if (!g.refused) this.onFullAttempt()
          g.refused = true
          return
        }
        g.moved = true
        g.delta = [p[0] - g.start[0], p[1] - g.start[1]]
        for (const id of g.ids) {
          const node = this.elements.get(id)
          if (node) node.setAttribute('transform', `translate(${round(g.delta[0])} ${round(g.delta[1])})`)
        }
        this.renderOverlay()
        break
      case 'resize':
        this.updateResize(g, p, e.shiftKey)
        break
      case 'marquee': {
        g.cur = p
        const box = { x: Math.min(g.start[0], p[0]), y: Math.min(g.start[1], p[1]), w: Math.abs(p[0] - g.start[0]), h: Math.abs(p[1] - g.start[1]) }
        this.selection = new Set(g.base)
        for (const s of this.cache.values()) if (intersects(bounds(s), box) && !this.isProtected(s.id)) this.selection.add(s.id)
        this.renderOverlay()
        this.onChange()
        break
      }
      case 'erase':
        this.eraseAlong(g.last, p)
        g.last = p
        this.renderOverlay()
        break
    }
  }

  appendPoints (id, batch) {
    const m = this.shapes.get(id)
    const arr = m instanceof Y.Map ? m.get('points') : null
    if (!(arr instanceof Y.Array)) return
    this.transact(() => arr.push(batch))
  }

  updateCreate (g, p) {
    const a = [round(g.start[0]), round(g.start[1])]
    const b = [round(p[0]), round(p[1])]
    if (!g.id) {
      g.id = this.newId()
      const common = { color: this.style.color, width: this.style.width }
      this.transact(() => {
        if (g.type === 'line' || g.type === 'arrow') {
          this.insertShape(g.id, { type: g.type, x: a[0], y: a[1], w: 0, h: 0, ...common }, [a, b])
        } else {
          this.insertShape(g.id, {
            type: g.type, x: Math.min(a[0], b[0]), y: Math.min(a[1], b[1]), w: Math.abs(b[0] - a[0]), h: Math.abs(b[1] - a[1]),
            ...common, fill: this.style.fill ? tintOf(this.style.color) : null
          })
        }
      })
      return
    }
    const m = this.shapes.get(g.id)
    if (!(m instanceof Y.Map)) return
    this.transact(() => {
      if (g.type === 'line' || g.type === 'arrow') {
        const arr = m.get('points')
        if (arr instanceof Y.Array && arr.length >= 2) {
          arr.delete(1, arr.length - 1)
          arr.insert(1, [b])
        }
      } else {
        m.set('x', Math.min(a[0], b[0]))
        m.set('y', Math.min(a[1], b[1]))
        m.set('w', round(Math.abs(b[0] - a[0])))
        m.set('h', round(Math.abs(b[1] - a[1])))
      }
    })
  }

  updateResize (g, p, uniform) {
    const m = this.shapes.get(g.id)
    if (!(m instanceof Y.Map)) return
    const { anchor: A, corner: C, orig: s } = g
    const target = [C[0] + p[0] - g.start[0], C[1] + p[1] - g.start[1]]
    let sx = Math.abs(C[0] - A[0]) > 1e-6 ? (target[0] - A[0]) / (C[0] - A[0]) : 1
    let sy = Math.abs(C[1] - A[1]) > 1e-6 ? (target[1] - A[1]) / (C[1] - A[1]) : 1
    if (uniform) {
      const u = Math.max(Math.abs(sx), Math.abs(sy))
      sx = Math.sign(sx || 1) * u
      sy = Math.sign(sy || 1) * u
    }
    const map = ([x, y]) => [round(A[0] + (x - A[0]) * sx), round(A[1] + (y - A[1]) * sy)]
    this.transact(() => {
      if (POINT_TYPES.has(s.type)) {
        const [x, y] = map([s.x, s.y])
        m.set('x', x)
        m.set('y', y)
        this.replacePoints(m, s.points.map(map))
      } else {
        const b = boxOf(s)
        const p0 = map([b.x, b.y]); const p1 = map([b.x + b.w, b.y + b.h])
        let w = Math.max(4, round(Math.abs(p1[0] - p0[0])))
        let h = Math.max(4, round(Math.abs(p1[1] - p0[1])))
        let x = Math.min(p0[0], p1[0])
        let y = Math.min(p0[1], p1[1])
        if (s.type === 'sticky') {
          // A note keeps room for its text (narrower makes it taller); its anchor corner stays put.
          w = Math.max(STICKY_MIN.w, w)
          h = Math.max(STICKY_MIN.h, h, stickyHeight(s.text, w, s.fontSize))
          x = A[0] <= target[0] ? round(A[0]) : round(A[0] - w)
          y = A[1] <= target[1] ? round(A[1]) : round(A[1] - h)
        }
        m.set('x', x)
        m.set('y', y)
        m.set('w', w)
        m.set('h', h)
      }
    })
  }

  eraseAlong (a, b) {
    const tol = 8 / this.view.k
    const steps = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / (tol / 2)))
    const hits = new Set()
    for (let i = 0; i <= steps; i++) {
      const t = i / steps
      const p = [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
      for (const s of this.cache.values()) if (!hits.has(s.id) && hitShape(s, p, tol, false)) hits.add(s.id)
    }
    const free = this.unprotected([...hits])
    if (!free.length) return
    this.transact(() => { for (const id of free) this.shapes.delete(id) })
    this.flush()
  }

  onPointerUp (e, cancelled = false) {
    this.pointers.delete(e.pointerId)
    const g = this.gesture
    if (!g) return
    if (g.kind === 'pinch') {
      if (this.pointers.size < 2) this.gesture = null
      return
    }
    if (g.pointerId !== e.pointerId) return
    if (this.svg.hasPointerCapture(e.pointerId)) this.svg.releasePointerCapture(e.pointerId)
    this.gesture = null
    this.svg.classList.remove('panning')
    switch (g.kind) {
      case 'stroke': {
        const end = g.raw ? [round(g.raw[0]), round(g.raw[1])] : null
        if (end && !cancelled && (end[0] !== g.last[0] || end[1] !== g.last[1])) this.appendPoints(g.id, [end])
        this.undo.stopCapturing()
        break
      }
      case 'create':
        this.undo.stopCapturing()
        if (g.id) {
          this.selection.clear()
        }
        break
      case 'move':
        for (const id of g.ids) {
          const node = this.elements.get(id)
          if (node) node.removeAttribute('transform')
        }
        if (g.moved && !cancelled) this.act(() => this.translate(this.unprotected(g.ids), g.delta[0], g.delta[1]))
        break
      case 'resize':
      case 'erase':
        this.undo.stopCapturing()
        break
    }
    this.flush()
  }

  /** Abandon the gesture in progress (a second finger, a lock, a detach). */
  cancelGesture (discardCreation = false) {
    const g = this.gesture
    if (!g) return
    this.gesture = null
    this.svg.classList.remove('panning')
    if (g.pointerId != null && this.svg.hasPointerCapture(g.pointerId)) this.svg.releasePointerCapture(g.pointerId)
    if (g.kind === 'move') {
      for (const id of g.ids) {
        const node = this.elements.get(id)
        if (node) node.removeAttribute('transform')
      }
    }
    if (discardCreation && (g.kind === 'stroke' || (g.kind === 'create' && g.id)) && this.undo) {
      this.undo.stopCapturing()
      this.popStep(false)
      this.undo.clear(false, true)
    } else if (this.undo) {
      this.undo.stopCapturing()
    }
    if (this.doc) this.flush()
  }

  startPinch () {
    const [a, b] = [...this.pointers.values()]
    const r = this.svg.getBoundingClientRect()
    const mid = [(a.x + b.x) / 2 - r.left, (a.y + b.y) / 2 - r.top]
    this.gesture = { kind: 'pinch', d0: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)), anchor: [(mid[0] - this.view.x) / this.view.k, (mid[1] - this.view.y) / this.view.k], k0: this.view.k }
  }

  updatePinch () {
    const g = this.gesture
    const [a, b] = [...this.pointers.values()]
    if (!a || !b) return
    const r = this.svg.getBoundingClientRect()
    const mid = [(a.x + b.x) / 2 - r.left, (a.y + b.y) / 2 - r.top]
    const k = clamp(g.k0 * Math.hypot(a.x - b.x, a.y - b.y) / g.d0, MIN_ZOOM, MAX_ZOOM)
    this.view = { k, x: mid[0] - g.anchor[0] * k, y: mid[1] - g.anchor[1] * k }
    this.applyView()
  }

  onWheel (e) {
    e.preventDefault()
    const [sx, sy] = this.screenPoint(e)
    const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1
    const dy = e.deltaY * unit
    if (e.shiftKey && !e.ctrlKey) {
      this.view = { ...this.view, x: this.view.x - dy, y: this.view.y - e.deltaX * unit }
      this.applyView()
      return
    }
    // Pinch gestures on trackpads arrive as ctrl+wheel with small deltas.
    this.zoomAt(Math.exp(-dy * (e.ctrlKey ? 0.01 : 0.0015)), sx, sy)
  }

  onDoubleClick (e) {
    if (!this.writable) return
    const id = this.hitTest(this.toBoard(e))
    if (id && this.isProtected(id)) return this.onLockedAttempt()
    const s = id && this.cache.get(id)
    if (s && (s.type === 'sticky' || s.type === 'text')) {
      if (this.full) return this.onFullAttempt()
      this.setTool('select')
      this.selection = new Set([id])
      this.openEditor(id, false)
    }
  }

  /**
   * The Enter key: edit the selected sticky note or text, or else add the
   * current tool's shape in the middle of the view (keyboard creation).
   * Whether Enter did something.
   */
  editSelection () {
    if (!this.writable) return false
    const id = this.selection.size === 1 ? [...this.selection][0] : null
    const s = id && this.cache.get(id)
    if (s && (s.type === 'sticky' || s.type === 'text')) {
      if (this.full) {
        this.onFullAttempt()
        return true
      }
      this.openEditor(id, false)
      return true
    }
    return this.placeAtCentre()
  }

  /** Add the current tool's shape in the middle of the view; whether it did. */
  /** The middle of the view, in board units. */
  viewCentre () {
    const r = this.svg.getBoundingClientRect()
    return [(r.width / 2 - this.view.x) / this.view.k, (r.height / 2 - this.view.y) / this.view.k]
  }

  placeAtCentre () {
    const size = PLACEABLE[this.tool]
    if (!size || !this.doc) return false
    if (this.full) {
      this.onFullAttempt()
      return true
    }
    const c = this.viewCentre()
    if (this.tool === 'sticky') this.createSticky(c)
    else if (this.tool === 'text') this.createText(c)
    if (this.tool === 'select') {
      // createSticky and createText switched to Select and opened the editor.
      this.announce(t(this.editing && this.editing.type === 'text' ? 'board.placed.text' : 'board.placed.sticky'))
      return true
    }
    const [w, h] = size
    const id = this.newId()
    const a = [round(c[0] - w / 2), round(c[1] - h / 2)]
    const common = { color: this.style.color, width: this.style.width }
    this.act(() => {
      if (h === 0) this.insertShape(id, { type: this.tool, x: a[0], y: a[1], w: 0, h: 0, ...common }, [a, [a[0] + w, a[1]]])
      else this.insertShape(id, { type: this.tool, x: a[0], y: a[1], w, h, ...common, fill: this.style.fill ? tintOf(this.style.color) : null })
    })
    this.selection = new Set([id])
    this.renderOverlay()
    this.onChange()
    this.announce(t('board.placed.shape', { label: t('tool.' + this.tool) }))
    return true
  }

  /**
   * Place a stored picture (an upload's answer: {id, width, height}) in the
   * middle of the view, or at board point `at`, at most MAX_PLACED_SIZE wide
   * and high; it is selected. Whether it was placed.
   */
  placeImage (image, at = null) {
    if (!this.doc) return false
    if (!this.writable) {
      this.onReadOnlyAttempt()
      return false
    }
    if (this.full) {
      this.onFullAttempt()
      return false
    }
    const r = this.svg.getBoundingClientRect()
    const c = at || [(r.width / 2 - this.view.x) / this.view.k, (r.height / 2 - this.view.y) / this.view.k]
    const scale = Math.min(1, MAX_PLACED_SIZE / image.width, MAX_PLACED_SIZE / image.height)
    const w = Math.max(1, round(image.width * scale))
    const h = Math.max(1, round(image.height * scale))
    const id = this.newId()
    this.act(() => this.insertShape(id, { type: 'image', x: round(c[0] - w / 2), y: round(c[1] - h / 2), w, h, src: image.id }))
    this.setTool('select')
    this.selection = new Set([id])
    this.renderOverlay()
    this.onChange()
    this.announce(t('image.placed'))
    return true
  }

  publishCursor (p) {
    if (!this.awareness) return
    this.pendingCursor = p ? { x: round(p[0]), y: round(p[1]) } : null
    if (this.cursorTimer) return
    this.cursorTimer = setTimeout(() => {
      this.cursorTimer = 0
      if (this.awareness) this.awareness.setLocalStateField('cursor', this.pendingCursor)
    }, 40)
  }

  /**
   * A secondary click (or a long press): the shapes it is about are the
   * selection if it hit a selected shape, else the shape it hit (selected
   * first when the board is writable). Read-only boards are hit-tested too,
   * so a facilitator can act on a shape after the session ended.
   */
  onContext (e) {
    if (!this.doc || this.gesture) return
    const id = this.hitTest(this.toBoard(e))
    let ids = []
    if (id && this.selection.has(id)) {
      ids = [...this.selection]
    } else if (id) {
      ids = [id]
      if (this.writable) {
        if (this.tool !== 'select') this.setTool('select')
        this.selection = new Set([id])
        this.renderOverlay()
        this.onChange()
      }
    }
    this.onContextMenu({ ids, x: e.clientX, y: e.clientY })
  }

  // -- text editing --------------------------------------------------------------

  openEditor (id, isNew) {
    const s = this.cache.get(id)
    if (!s) return
    if (!isNew) this.undo.stopCapturing()
    this.editing = { id, isNew, type: s.type, text: null, observer: null }
    const node = this.elements.get(id)
    if (node) node.classList.add('editing')
    this.editor.value = s.text
    this.editor.className = 'text-editor editor-' + s.type
    this.editor.hidden = false
    this.bindEditorText()
    this.positionEditor()
    this.editor.focus({ preventScroll: true })
    this.renderOverlay()
    this.renderSizeBar()
  }

  /**
   * Follow the edited shape's Y.Text: others' edits show in the editor as
   * they arrive, the caret and selection kept on the same characters
   * (mapCaret). Called again on every render, since the shape's `text` may
   * become another Y.Text (an older board's string converted by someone else).
   */
  bindEditorText () {
    const ed = this.editing
    if (!ed || !this.doc) return
    const m = this.shapes.get(ed.id)
    const current = m instanceof Y.Map ? m.get('text') : null
    const text = current instanceof Y.Text ? current : null
    if (text === ed.text) return
    if (ed.text) ed.text.unobserve(ed.observer)
    ed.text = text
    ed.observer = null
    if (!text) return
    if (this.editor.value !== text.toString()) this.replaceEditorValue(text.toString(), null)
    ed.observer = (event, tr) => {
      if (tr.local && tr.origin === LOCAL) return // the editor holds it already
      this.replaceEditorValue(text.toString(), event.delta)
    }
    text.observe(ed.observer)
  }

  /** Show a new value in the editor, the caret mapped through the delta (or kept in range). */
  replaceEditorValue (value, delta) {
    const e = this.editor
    const focused = document.activeElement === e
    let start = e.selectionStart
    let end = e.selectionEnd
    const dir = e.selectionDirection
    if (delta) {
      start = mapCaret(start, delta)
      end = mapCaret(end, delta)
    }
    e.value = value
    if (focused) e.setSelectionRange(Math.min(start, value.length), Math.min(end, value.length), dir)
  }

  positionEditor () {
    if (!this.editing) return
    const s = this.cache.get(this.editing.id)
    if (!s) return
    const { k, x, y } = this.view
    const b = boxOf(s)
    const st = this.editor.style
    st.left = round(b.x * k + x) + 'px'
    st.top = round(b.y * k + y) + 'px'
    const lh = lineHeight(s.fontSize)
    st.width = round(Math.max(b.w, s.type === 'text' ? 120 : 40) * k) + 'px'
    st.height = round(Math.max(b.h, lh) * k) + 'px'
    st.fontSize = round(s.fontSize * k) + 'px'
    st.lineHeight = round(lh * k) + 'px'
    st.padding = s.type === 'sticky' ? round(STICKY_PAD * k) + 'px' : '0'
    st.color = s.type === 'sticky' ? '#1e1e1e' : s.color
  }

  onEditorInput () {
    const ed = this.editing
    if (!ed) return
    const m = this.shapes.get(ed.id)
    if (!(m instanceof Y.Map)) return
    const text = this.editor.value
    this.transact(() => {
      const current = m.get('text')
      if (current instanceof Y.Text) {
        // The smallest insert and delete: others' concurrent typing merges (protocol.md §5.1).
        const d = textDiff(current.toString(), text)
        if (d.remove) current.delete(d.index, d.remove)
        if (d.insert) current.insert(d.index, d.insert)
      } else {
        // An older board's string: the first edit makes it a Y.Text.
        m.set('text', new Y.Text(text))
      }
      this.fitText(m)
    })
    this.flush()
    this.bindEditorText()
  }

  /**
   * Inside a transaction: a text shape takes its text's size; a sticky note
   * grows to show all its wrapped text (it never shrinks by itself).
   */
  fitText (m) {
    const type = m.get('type')
    const raw = m.get('text')
    const text = raw instanceof Y.Text ? raw.toString() : typeof raw === 'string' ? raw : ''
    const fontSize = m.get('fontSize')
    const size = typeof fontSize === 'number' && fontSize > 0 ? fontSize : DEFAULT_FONT_SIZE
    if (type === 'text') {
      const box = measureText(text, size)
      if (m.get('w') !== box.w) m.set('w', box.w)
      if (m.get('h') !== box.h) m.set('h', box.h)
    } else if (type === 'sticky') {
      const w = Math.abs(Number(m.get('w')) || 0)
      const h = Number(m.get('h')) || 0
      const need = stickyHeight(text, w, size)
      if (Math.abs(h) < need) m.set('h', need)
    }
  }

  /** Text size for new notes and texts, and for the selected (or edited) ones: one undo step. */
  setTextSize (size) {
    this.style.fontSize = size
    const ids = new Set(this.selection)
    if (this.editing) ids.add(this.editing.id)
    const targets = [...ids].filter((id) => {
      const s = this.cache.get(id)
      return s && (s.type === 'sticky' || s.type === 'text')
    })
    if (targets.length && this.writable) {
      if (this.full) return this.onFullAttempt()
      this.act(() => {
        for (const id of targets) {
          const m = this.shapes.get(id)
          if (!(m instanceof Y.Map)) continue
          m.set('fontSize', size)
          this.fitText(m)
        }
      })
    }
    this.renderSizeBar()
  }

  /** The text size bar: above the edited or selected notes and texts, while there are some. */
  renderSizeBar () {
    const ids = this.editing ? [this.editing.id] : [...this.selection]
    const shapes = ids.map((id) => this.cache.get(id)).filter((s) => s && (s.type === 'sticky' || s.type === 'text'))
    const show = this.writable && !this.full && shapes.length > 0 && !(this.gesture && this.gesture.kind === 'move' && this.gesture.moved)
    this.sizeBar.hidden = !show
    if (!show) return
    const current = shapes.every((s) => s.fontSize === shapes[0].fontSize) ? shapes[0].fontSize : null
    for (const b of this.sizeButtons) b.setAttribute('aria-pressed', String(Number(b.dataset.size) === current))
    let x0 = Infinity; let y0 = Infinity; let y1 = -Infinity
    for (const s of shapes) {
      const b = bounds(s)
      x0 = Math.min(x0, b.x)
      y0 = Math.min(y0, b.y)
      y1 = Math.max(y1, b.y + b.h)
    }
    const { k, x, y } = this.view
    // Above the shapes, or below them near the top edge (where the style bar is).
    const above = round(y0 * k + y) - SIZE_BAR_GAP_PX
    const st = this.sizeBar.style
    st.left = Math.max(4, round(x0 * k + x)) + 'px'
    st.top = (above >= SIZE_BAR_CLEAR_PX ? above : round(y1 * k + y) + 8) + 'px'
  }

  closeEditor () {
    const ed = this.editing
    if (!ed) return
    this.editing = null
    if (ed.text) ed.text.unobserve(ed.observer)
    this.editor.hidden = true
    // The editor is not the document: keep no copy of the text once closed
    // (the shape may have been redacted meanwhile).
    this.editor.value = ''
    const node = this.elements.get(ed.id)
    if (node) node.classList.remove('editing')
    if (!this.doc) return
    const s = this.readShape(ed.id)
    if (s && s.type === 'text' && !s.text.trim()) {
      if (ed.isNew) {
        // Nothing was written: take the empty text back without leaving an undo step.
        this.undo.stopCapturing()
        this.popStep(false)
        this.undo.clear(false, true)
      } else {
        this.transact(() => this.shapes.delete(ed.id))
      }
      this.selection.delete(ed.id)
    }
    this.undo.stopCapturing()
    this.flush()
  }
}
