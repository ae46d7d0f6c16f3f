// Pure geometry of board shapes (board units), shared by rendering and hit tests.

export const BOX_TYPES = new Set(['rect', 'ellipse', 'sticky', 'text', 'image'])
export const POINT_TYPES = new Set(['pen', 'line', 'arrow'])
export const SHAPE_TYPES = new Set([...BOX_TYPES, ...POINT_TYPES])

const num = (v, d = 0) => (typeof v === 'number' && Number.isFinite(v) ? v : d)

/** Text sizes of sticky notes and text shapes: the `fontSize` field (protocol.md §5.1). */
export const FONT_SIZES = [
  { value: 12, name: 'S' },
  { value: 16, name: 'M' },
  { value: 24, name: 'L' },
  { value: 32, name: 'XL' }
]
export const DEFAULT_FONT_SIZE = 16
/** Line height of board text: 1.3 × its size, as the stylesheet and the SVG export use. */
export const lineHeight = (size) => Math.round(size * 1.3)
/** Padding inside a sticky note, around its text (board units). */
export const STICKY_PAD = 8
/** The smallest sticky note (board units): resizing stops there. */
export const STICKY_MIN = { w: 60, h: 40 }

/** Points as [[x, y], ...] from either stored form ([[x, y]...] or [x, y, x, y...]). */
export function normalizePoints (raw) {
  if (!Array.isArray(raw)) return []
  const out = []
  if (raw.length && raw.every(Array.isArray)) {
    for (const p of raw) if (Number.isFinite(p[0]) && Number.isFinite(p[1])) out.push([p[0], p[1]])
  } else {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (Number.isFinite(raw[i]) && Number.isFinite(raw[i + 1])) out.push([raw[i], raw[i + 1]])
    }
  }
  return out
}

/** A shape's plain value in a normal form, or null if it does not fit §5.1. */
export function normalizeShape (id, value) {
  if (!value || typeof value !== 'object' || !SHAPE_TYPES.has(value.type)) return null
  // An image names a stored picture by its digest; anything else (a URL) is not drawn.
  if (value.type === 'image' && !(typeof value.src === 'string' && /^[0-9a-f]{64}$/.test(value.src))) return null
  return {
    id,
    type: value.type,
    x: num(value.x),
    y: num(value.y),
    w: num(value.w),
    h: num(value.h),
    points: normalizePoints(value.points),
    color: typeof value.color === 'string' ? value.color : '#1e1e1e',
    fill: typeof value.fill === 'string' ? value.fill : null,
    width: Math.max(0, num(value.width, 2)),
    // A Y.Text reads as its string (Y.Map.toJSON); older boards store a string.
    text: typeof value.text === 'string' ? value.text : '',
    fontSize: num(value.fontSize) > 0 ? value.fontSize : DEFAULT_FONT_SIZE,
    author: typeof value.author === 'string' ? value.author : null,
    src: value.type === 'image' ? value.src : null,
    z: num(value.z)
  }
}

/** The normalised box {x, y, w, h} of a box shape (w/h may be stored negative). */
export function boxOf (s) {
  return { x: Math.min(s.x, s.x + s.w), y: Math.min(s.y, s.y + s.h), w: Math.abs(s.w), h: Math.abs(s.h) }
}

/** Bounding box of any shape (including half its stroke). */
export function bounds (s) {
  if (POINT_TYPES.has(s.type)) {
    if (!s.points.length) return { x: s.x, y: s.y, w: 0, h: 0 }
    let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity
    for (const [x, y] of s.points) {
      if (x < x0) x0 = x
      if (y < y0) y0 = y
      if (x > x1) x1 = x
      if (y > y1) y1 = y
    }
    const pad = s.width / 2
    return { x: x0 - pad, y: y0 - pad, w: x1 - x0 + 2 * pad, h: y1 - y0 + 2 * pad }
  }
  return boxOf(s)
}

export function distToSegment (p, a, b) {
  const dx = b[0] - a[0]; const dy = b[1] - a[1]
  const len2 = dx * dx + dy * dy
  let t = len2 ? ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2 : 0
  t = Math.max(0, Math.min(1, t))
  return Math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy))
}

/**
 * Whether point p touches shape s within tol board units. With interior, any
 * point inside a closed shape counts (selecting); without, unfilled rectangles
 * and ellipses are touched only on their outline (erasing).
 */
export function hitShape (s, p, tol, interior = true) {
  const reach = tol + s.width / 2
  if (POINT_TYPES.has(s.type)) {
    const pts = s.points
    if (pts.length === 1) return Math.hypot(p[0] - pts[0][0], p[1] - pts[0][1]) <= reach
    for (let i = 1; i < pts.length; i++) if (distToSegment(p, pts[i - 1], pts[i]) <= reach) return true
    return false
  }
  const b = boxOf(s)
  const inside = p[0] >= b.x - reach && p[0] <= b.x + b.w + reach && p[1] >= b.y - reach && p[1] <= b.y + b.h + reach
  if (!inside) return false
  const solid = interior || s.type === 'sticky' || s.type === 'text' || s.type === 'image' || (s.fill && s.fill !== 'none')
  if (s.type === 'ellipse') {
    const rx = b.w / 2; const ry = b.h / 2
    if (rx < 1e-6 || ry < 1e-6) return true
    const d = Math.hypot((p[0] - (b.x + rx)) / rx, (p[1] - (b.y + ry)) / ry)
    return solid ? d <= 1 + reach / Math.min(rx, ry) : Math.abs(d - 1) * Math.min(rx, ry) <= reach
  }
  if (solid) return true
  const inner = p[0] > b.x + reach && p[0] < b.x + b.w - reach && p[1] > b.y + reach && p[1] < b.y + b.h - reach
  return !inner
}

export function intersects (a, b) {
  return a.x <= b.x + b.w && b.x <= a.x + a.w && a.y <= b.y + b.h && b.y <= a.y + a.h
}

/** A smooth SVG path through freehand points (quadratic curves through midpoints). */
export function smoothPath (pts) {
  if (!pts.length) return ''
  const f = (v) => Math.round(v * 100) / 100
  if (pts.length === 1) return `M${f(pts[0][0])} ${f(pts[0][1])}l0.01 0`
  if (pts.length === 2) return `M${f(pts[0][0])} ${f(pts[0][1])}L${f(pts[1][0])} ${f(pts[1][1])}`
  let d = `M${f(pts[0][0])} ${f(pts[0][1])}`
  for (let i = 1; i < pts.length - 1; i++) {
    const [x, y] = pts[i]
    const [nx, ny] = pts[i + 1]
    d += `Q${f(x)} ${f(y)} ${f((x + nx) / 2)} ${f((y + ny) / 2)}`
  }
  const last = pts[pts.length - 1]
  return d + `L${f(last[0])} ${f(last[1])}`
}

/** Length of an arrow's head for a stroke width: in proportion, 3.5 × the width (8 at least). */
export const arrowHeadSize = (width) => Math.max(8, width * 3.5)

/** The head of an arrow ending at b, coming from a: a closed triangle path. */
export function arrowHead (a, b, width) {
  const size = arrowHeadSize(width)
  const ang = Math.atan2(b[1] - a[1], b[0] - a[0])
  const spread = Math.PI / 7
  const p1 = [b[0] - size * Math.cos(ang - spread), b[1] - size * Math.sin(ang - spread)]
  const p2 = [b[0] - size * Math.cos(ang + spread), b[1] - size * Math.sin(ang + spread)]
  const f = (v) => Math.round(v * 100) / 100
  return `M${f(b[0])} ${f(b[1])}L${f(p1[0])} ${f(p1[1])}L${f(p2[0])} ${f(p2[1])}Z`
}

/**
 * An arrow's line without its last 2 × width: its round end stays inside the
 * head instead of poking out at the tip.
 */
export function arrowShaft (pts, width) {
  if (pts.length < 2) return pts
  const a = pts[pts.length - 2]
  const b = pts[pts.length - 1]
  const len = Math.hypot(b[0] - a[0], b[1] - a[1])
  if (len < 1e-6) return pts
  const t = Math.max(0, len - 2 * width) / len
  return [...pts.slice(0, -1), [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]]
}

/** Constrain the drag from a to b: 45° steps for lines, squares for boxes. */
export function constrain (a, b, kind) {
  const dx = b[0] - a[0]; const dy = b[1] - a[1]
  if (kind === 'line') {
    const ang = Math.round(Math.atan2(dy, dx) / (Math.PI / 4)) * (Math.PI / 4)
    const len = Math.hypot(dx, dy)
    return [a[0] + len * Math.cos(ang), a[1] + len * Math.sin(ang)]
  }
  const s = Math.max(Math.abs(dx), Math.abs(dy))
  return [a[0] + Math.sign(dx || 1) * s, a[1] + Math.sign(dy || 1) * s]
}

/**
 * Lines of text wrapped to maxWidth as the board shows it (CSS `white-space:
 * pre-wrap; overflow-wrap: anywhere`): explicit line breaks kept, lines broken
 * after spaces, a word wider than the line broken between characters.
 * measure(string) gives a width in the same units as maxWidth.
 */
export function wrapLines (text, maxWidth, measure) {
  const out = []
  const widths = new Map()
  for (const paragraph of text.split('\n')) {
    const words = paragraph.match(/\S+\s*|\s+/g) || ['']
    let line = ''
    for (const word of words) {
      if (measure(line + word.trimEnd()) <= maxWidth) {
        line += word
        continue
      }
      if (line) out.push(line)
      line = word
      if (measure(word.trimEnd()) <= maxWidth) continue
      // A word wider than a line: as many characters as fit on each line
      // (measured one by one: a long word costs one pass).
      line = ''
      let width = 0
      for (const ch of word) {
        let cw = widths.get(ch)
        if (cw === undefined) widths.set(ch, (cw = measure(ch)))
        if (line && width + cw > maxWidth && ch.trim()) {
          out.push(line)
          line = ''
          width = 0
        }
        line += ch
        width += cw
      }
    }
    out.push(line)
  }
  return out
}

/**
 * The smallest edit turning `before` into `after`: {index, remove, insert}.
 * A surrogate pair is never split (Y.Text counts UTF-16 code units too).
 */
export function textDiff (before, after) {
  const max = Math.min(before.length, after.length)
  let start = 0
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++
  if (start > 0 && isHighSurrogate(before.charCodeAt(start - 1))) start--
  let end = 0
  while (end < max - start && before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)) end++
  if (end > 0 && isLowSurrogate(before.charCodeAt(before.length - end))) end--
  return { index: start, remove: before.length - start - end, insert: after.slice(start, after.length - end) }
}

const isHighSurrogate = (c) => c >= 0xd800 && c <= 0xdbff
const isLowSurrogate = (c) => c >= 0xdc00 && c <= 0xdfff

/**
 * Where a caret at `pos` goes when a remote change (a Yjs text delta) is
 * applied: after text inserted before it, back over text deleted before it.
 * Text inserted exactly at the caret goes after it, so two people typing at
 * the same place keep their own words together.
 */
export function mapCaret (pos, delta) {
  let at = 0
  let out = pos
  for (const op of delta) {
    if (op.retain != null) {
      at += op.retain
    } else if (op.insert != null) {
      const n = typeof op.insert === 'string' ? op.insert.length : 1
      if (at < out) out += n
      at += n
    } else if (op.delete != null) {
      // Positions here are in the new text: `at` does not move.
      if (at < out) out -= Math.min(op.delete, out - at)
    }
  }
  return out
}
