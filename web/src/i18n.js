// Every word the web app shows or announces, in English and Spanish (the
// catalogues: messages/en.js and messages/es.js), and the viewer's locale and
// time zone. The locale comes from the embedding page's
// handshake (`locale`), else `?lang=`, else the browser's languages, else
// English; the time zone from the handshake (`timeZone`), else `?tz=`, else
// the browser's. Messages name their placeholders (`{name}`); a message with
// a `{count}` may have plural forms ({one, other}, chosen by Intl.PluralRules).

import { en } from './messages/en.js'
import { es } from './messages/es.js'

/** The locales the app ships, the first the fallback. */
export const LOCALES = ['en', 'es']

/** The catalogues, by locale (the check in tests/unit/test_web_i18n.py compares their keys). */
export const CATALOGUES = { en, es }

let current = LOCALES[0]
/** The full tag the locale was chosen by (es-MX): dates and times follow its region's habits. */
let formatTag = LOCALES[0]
let timeZone

/** The first of `candidates` (BCP 47 tags) whose primary subtag is a shipped locale, or null. */
export function matchLocale (candidates) {
  for (const tag of candidates || []) {
    if (typeof tag !== 'string') continue
    const primary = tag.trim().toLowerCase().split(/[-_]/)[0]
    if (LOCALES.includes(primary)) return tag.trim().replace(/_/g, '-')
  }
  return null
}

/** Whether `zone` is an IANA time zone this browser knows. */
export function validTimeZone (zone) {
  if (typeof zone !== 'string' || !zone) return false
  try {
    Intl.DateTimeFormat('en', { timeZone: zone })
    return true
  } catch {
    return false
  }
}

/**
 * Take the locale and time zone from the page's address (`?lang=`, `?tz=`),
 * else the browser's; call once, before anything is shown.
 */
export function initLocale () {
  const params = new URLSearchParams(location.search)
  setLocale(matchLocale([params.get('lang')]) || matchLocale(navigator.languages || [navigator.language]) || LOCALES[0])
  setTimeZone(params.get('tz'))
}

/**
 * Use `locale` (a BCP 47 tag: es, es-MX) from now on, ignored unless its
 * language is shipped; `<html lang>` follows. Returns whether it was taken.
 */
export function setLocale (locale) {
  const match = matchLocale([locale])
  if (!match) return false
  current = match.toLowerCase().split('-')[0]
  try {
    formatTag = Intl.getCanonicalLocales(match)[0]
  } catch {
    formatTag = current
  }
  document.documentElement.lang = current
  return true
}

/** Show times in `zone` (IANA) from now on; ignored unless valid. Returns whether it was taken. */
export function setTimeZone (zone) {
  if (!validTimeZone(zone)) return false
  timeZone = zone
  return true
}

/** The language shown: one of LOCALES. */
export function locale () {
  return current
}

/** The time zone times are shown in: the one set, else the browser's. */
export function currentTimeZone () {
  return timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'
}

/** The message `key` in the current locale, its `{placeholders}` filled from `params`. */
export function t (key, params = {}) {
  let message = CATALOGUES[current][key] ?? en[key] ?? key
  if (typeof message === 'object') {
    const form = new Intl.PluralRules(current).select(Number(params.count))
    message = message[form] ?? message.other
  }
  return message.replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all))
}

/** A chat time (ms since the epoch) as hours and minutes in the viewer's locale and time zone. */
export function formatTime (ts) {
  const d = new Date(ts)
  if (Number.isNaN(d.getTime())) return ''
  return new Intl.DateTimeFormat(formatTag, { hour: '2-digit', minute: '2-digit', timeZone: currentTimeZone() }).format(d)
}

/** A date and time in full, in the viewer's locale and time zone (a time's tooltip). */
export function formatDateTime (ts) {
  const d = new Date(ts)
  if (Number.isNaN(d.getTime())) return ''
  return new Intl.DateTimeFormat(formatTag, { dateStyle: 'full', timeStyle: 'short', timeZone: currentTimeZone() }).format(d)
}
