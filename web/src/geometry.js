// Pure geometry of board shapes (board units), shared by rendering and hit tests.

export const BOX_TYPES = new Set(['rect', 'ellipse', 'sticky', 'text'])
export const POINT_TYPES = new Set(['pen', 'line', 'arrow'])
export const SHAPE_TYPES = new Set([...BOX_TYPES, ...POINT_TYPES])

const num = (v, d = 0) => (typeof v === 'number' && Number.isFinite(v) ? v : d)

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
    text: typeof value.text === 'string' ? value.text : '',
    author: typeof value.author === 'string' ? value.author : null,
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
  const solid = interior || s.type === 'sticky' || s.type === 'text' || (s.fill && s.fill !== 'none')
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

/** The head of an arrow ending at b, coming from a: a closed triangle path. */
export function arrowHead (a, b, width) {
  const size = Math.max(10, width * 4)
  const ang = Math.atan2(b[1] - a[1], b[0] - a[0])
  const spread = Math.PI / 7
  const p1 = [b[0] - size * Math.cos(ang - spread), b[1] - size * Math.sin(ang - spread)]
  const p2 = [b[0] - size * Math.cos(ang + spread), b[1] - size * Math.sin(ang + spread)]
  const f = (v) => Math.round(v * 100) / 100
  return `M${f(b[0])} ${f(b[1])}L${f(p1[0])} ${f(p1[1])}L${f(p2[0])} ${f(p2[1])}Z`
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
