// Tokens: kept per room in sessionStorage (never in a URL), decoded read-only.
import { t } from './i18n.js'

const PREFIX = 'collab:token:'

/** The claims of a JWT, decoded without verifying it (the server verifies). */
export function decodeToken (token) {
  try {
    const part = String(token).split('.')[1]
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((part.length + 3) % 4)
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
    const claims = JSON.parse(new TextDecoder().decode(bytes))
    return claims && typeof claims === 'object' ? claims : null
  } catch {
    return null
  }
}

/** What the app knows about the user from a token (or a dev-token answer). */
export function identityFrom (token, extra = {}) {
  const claims = decodeToken(token) || {}
  return {
    id: String(extra.sub || claims.sub || ''),
    name: String(claims.name || extra.name || t('common.guest')),
    role: ['facilitator', 'participant', 'observer'].includes(claims.role) ? claims.role : 'participant',
    exp: typeof claims.exp === 'number' ? claims.exp : null
  }
}

/** The saved entry for a room: {token, sub, name, role} or null. */
export function loadToken (room) {
  try {
    const raw = sessionStorage.getItem(PREFIX + room)
    const entry = raw ? JSON.parse(raw) : null
    return entry && typeof entry.token === 'string' ? entry : null
  } catch {
    return null
  }
}

export function saveToken (room, entry) {
  try {
    sessionStorage.setItem(PREFIX + room, JSON.stringify(entry))
  } catch {
    // Storage may be unavailable (private mode, sandboxed frame): the session still works.
  }
}

export function clearToken (room) {
  try {
    sessionStorage.removeItem(PREFIX + room)
  } catch {}
}

/** Ask the dev server for a token: POST /dev/token {room, name, role[, sub]}. */
export async function devToken (room, name, role, sub) {
  const body = { room, name, role }
  if (sub) body.sub = sub
  const res = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body)
  })
  const data = await res.json().catch(() => ({}))
  if (!res.ok || typeof data.token !== 'string') {
    throw new Error((data.error && data.error.message) || t('common.serverRefused', { status: res.status }))
  }
  return { token: data.token, sub: data.sub, name, role }
}
