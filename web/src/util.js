// Small DOM helpers shared by the lobby and the session page.
import { t } from './i18n.js'

const SVG_NS = 'http://www.w3.org/2000/svg'

/** Create an HTML element: el('button', {class: 'x', onclick: fn}, 'text', child). */
export function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  setAttrs(node, attrs)
  for (const child of children.flat()) {
    if (child == null || child === false) continue
    node.append(child instanceof Node ? child : String(child))
  }
  return node
}

/** Create an SVG element with attributes. */
export function svg (tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag)
  setAttrs(node, attrs)
  for (const child of children.flat()) {
    if (child != null && child !== false) node.append(child)
  }
  return node
}

function setAttrs (node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value)
    } else if (key === 'dataset') {
      Object.assign(node.dataset, value)
    } else {
      node.setAttribute(key, value === true ? '' : String(value))
    }
  }
}

/** Random hex string of `bytes` bytes (works outside secure contexts too). */
export function randomHex (bytes = 8) {
  const buf = new Uint8Array(bytes)
  crypto.getRandomValues(buf)
  return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** The room id a session page is for: `/r/<seg>/<seg>` → `seg/seg`. */
export function roomFromPath (pathname) {
  if (!pathname.startsWith('/r/')) return null
  try {
    return pathname.slice(3).split('/').map(decodeURIComponent).join('/')
  } catch {
    return null
  }
}

/** The session page's path for a room (each segment URL-encoded). */
export function roomPath (room) {
  return '/r/' + room.split('/').map(encodeURIComponent).join('/')
}

/** Room ids, as protocol.md §2 defines them. */
export function validRoomId (room) {
  if (typeof room !== 'string' || room.length < 1 || room.length > 128) return false
  return room.split('/').every((seg) =>
    /^[A-Za-z0-9_.~-]+$/.test(seg) && !['.', '..', 'chat', 'meta'].includes(seg) && !seg.startsWith('board:'))
}

export async function fetchConfig () {
  try {
    const res = await fetch('/web/config.json', { cache: 'no-store' })
    if (!res.ok) throw new Error('HTTP ' + res.status)
    const body = await res.json()
    const origins = Array.isArray(body.embedOrigins) ? body.embedOrigins.filter((o) => typeof o === 'string') : []
    // 'self' in --frame-ancestors: a page of this origin may embed the app and hand it a token.
    if (body.embedSelf === true) origins.push(location.origin)
    // The server's --max-image-bytes: a larger picture is refused before it is sent.
    const maxImageBytes = Number.isSafeInteger(body.maxImageBytes) && body.maxImageBytes > 0 ? body.maxImageBytes : null
    // How long an author may delete their own message (protocol.md §6.6; 0: never).
    const window = Number(body.chatDeleteWindowS)
    const chatDeleteWindowS = Number.isFinite(window) && window > 0 ? window : 0
    return { dev: body.dev === true, embedOrigins: origins, maxImageBytes, chatDeleteWindowS }
  } catch {
    return { dev: false, embedOrigins: [], maxImageBytes: null, chatDeleteWindowS: 0 }
  }
}

let toastRegion = null

/**
 * Toasts stack at the bottom of the window, each below the last: at most
 * TOAST_LIMIT, and no higher than TOAST_MAX_SHARE of the window, so they stay
 * off the middle of the board; the oldest go first.
 */
const TOAST_LIMIT = 3
const TOAST_MAX_SHARE = 0.3

/** A short, non-blocking message (announced to screen readers). */
export function toast (message, kind = 'info', timeoutMs = 5000) {
  if (!toastRegion) {
    toastRegion = el('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' })
    document.body.append(toastRegion)
  }
  // The same message again (a burst of refusals) restarts its timer instead of stacking.
  const same = [...toastRegion.children].find((item) => item.dataset.message === message)
  if (same) {
    clearTimeout(Number(same.dataset.timer))
    if (timeoutMs > 0) same.dataset.timer = String(setTimeout(() => same.remove(), timeoutMs))
    return same
  }
  const close = el('button', { class: 'toast-close', type: 'button', 'aria-label': t('common.dismiss') }, '×')
  const item = el('div', { class: 'toast toast-' + kind, dataset: { message } }, el('span', {}, message), close)
  const remove = () => item.remove()
  close.addEventListener('click', remove)
  toastRegion.append(item)
  while (toastRegion.children.length > TOAST_LIMIT) dropToast(toastRegion.firstElementChild)
  while (toastRegion.children.length > 1 && toastRegion.offsetHeight > window.innerHeight * TOAST_MAX_SHARE) {
    dropToast(toastRegion.firstElementChild)
  }
  if (timeoutMs > 0) item.dataset.timer = String(setTimeout(remove, timeoutMs))
  return item
}

function dropToast (item) {
  clearTimeout(Number(item.dataset.timer))
  item.remove()
}

const ROLES = ['facilitator', 'participant', 'observer']

/** A role's name in the viewer's language (an unknown role as it is). */
export function roleLabel (role) {
  return ROLES.includes(role) ? t('role.' + role) : String(role || '')
}

/**
 * Colours for people's cursors and avatars: dark enough that white text on
 * them has a contrast of at least 4.5:1 (WCAG AA), and far apart in hue.
 */
export const PERSON_COLORS = [
  '#c92a2a', '#1864ab', '#237a36', '#862e9c', '#b35900', '#0b7285',
  '#a61e4d', '#5f3dc4', '#087f5b', '#495057', '#364fc7', '#7a5c00'
]

/** FNV-1a of a string: a stable, well-spread number for a user id. */
function hashString (text) {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/**
 * Each user id's colour among the people present: the palette entry its hash
 * picks, so a user keeps their colour across reloads and sessions; if someone
 * present (taken in user id order) already has it, the next free one, so that
 * up to PERSON_COLORS.length people all differ. Every page that sees the same
 * people gives them the same colours.
 */
export function personColors (userIds) {
  const colors = new Map()
  const taken = new Set()
  for (const id of [...new Set(userIds)].sort()) {
    let slot = hashString(id) % PERSON_COLORS.length
    for (let i = 0; i < PERSON_COLORS.length && taken.has(slot); i++) slot = (slot + 1) % PERSON_COLORS.length
    taken.add(slot)
    colors.set(id, PERSON_COLORS[slot])
  }
  return colors
}

/**
 * A name's initials, from its letters only (any script): the first letter of
 * its first and last words, leaving out what is in brackets and words without
 * letters. "Dr. Kim (facilitator)" → "DK", "Łucja Żak" → "ŁŻ", "42" → "?".
 */
export function initials (name) {
  const words = String(name).replace(/\([^)]*\)|\[[^\]]*\]/g, ' ').split(/\s+/)
    .map((w) => w.match(/\p{L}\p{M}*/u))
    .filter(Boolean)
    .map((m) => m[0])
  if (!words.length) return '?'
  return (words[0] + (words.length > 1 ? words[words.length - 1] : '')).toLocaleUpperCase()
}

/** The roles a facilitator's override may give (protocol.md §6.3 `mod:role`). */
export const OVERRIDABLE_ROLES = ['participant', 'observer']

/** room:state `roles` (§6.4), or meta's `roles` map: user id → participant | observer. */
export function parseRoles (value) {
  // No prototype: a user id may be any string the server accepts, "__proto__" too.
  const roles = Object.create(null)
  if (!value || typeof value !== 'object') return roles
  for (const [user, role] of Object.entries(value)) {
    if (OVERRIDABLE_ROLES.includes(role)) roles[String(user)] = role
  }
  return roles
}

/**
 * The role a user has in the room: their token's, or a facilitator's override
 * for their user id. A facilitator's token is never overridden (§6.3).
 */
export function effectiveRole (role, userId, roles) {
  if (role === 'facilitator') return role
  return (roles && Object.prototype.hasOwnProperty.call(roles, userId) && roles[userId]) || role
}

// A message form: submitting it, or Enter in its input (Shift+Enter is a new
// line; not while an input method composes), calls send().
export function sendOnSubmit (form, input, send) {
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    send()
  })
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault()
      send()
    }
  })
}
