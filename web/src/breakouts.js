// Breakout groups (protocol.md §6.7). In the main room: the facilitator's
// panel (open groups at random or by hand, visit, broadcast, close, show a
// closed group's board) and each participant's banner "you are in group N —
// join". In a group room (`<room>/breakout-N`): the group's banner with the
// time left, the facilitator's broadcast, and the way back, taken by itself
// when the groups close. The main room's token is the group room's too: it is
// kept for the group room's page before going there (token.js).
import { el, toast } from './util.js'
import { t } from './i18n.js'
import { saveToken } from './token.js'

const GROUP_ROOM = /^(.+)\/(breakout-([1-9][0-9]?))$/
const EVENT = 'mod:breakout'

/** `{ main, group, number }` if `room` is a breakout room, else null. */
export function breakoutOf (room) {
  const m = GROUP_ROOM.exec(room)
  return m ? { main: m[1], group: m[2], number: Number(m[3]) } : null
}

function numberOf (group) {
  return Number(String(group).replace('breakout-', ''))
}

function roomPath (room) {
  return '/r/' + room.split('/').map(encodeURIComponent).join('/')
}

function clockText (ms) {
  const s = Math.max(0, Math.ceil(ms / 1000))
  const m = Math.floor(s / 60)
  return m + ':' + String(s % 60).padStart(2, '0')
}

/** The refusals of `mod:breakout`, in words. */
function errorWords (code) {
  return ['breakout_state', 'not_found', 'invalid_payload', 'permission_denied'].includes(code)
    ? t('breakoutError.' + code)
    : undefined
}

export class Breakouts {
  /**
   * `room`: this page's room; `user`: its identity; `entry`: its token entry;
   * `clock`: the server's clock (clock.js); `moderate`: the session's
   * acknowledged events; `navigate(path)`: go to another page.
   */
  constructor ({ room, user, entry, isFacilitator, clock, moderate, navigate }) {
    Object.assign(this, { room, user, entry, isFacilitator, clock, moderate })
    this.navigate = navigate || ((path) => location.assign(path))
    this.where = breakoutOf(room)
    this.meta = null
    this.left = false
    this.banner = el('div', { class: 'breakout-banner', role: 'status', hidden: true })
    this.panel = el('div', { class: 'breakout-panel', role: 'dialog', 'aria-label': t('breakout.panel'), hidden: true })
    this.openButton = el('button', { type: 'button', class: 'breakout-button', hidden: !isFacilitator || !!this.where, onclick: () => this.toggle() }, t('breakout.button'))
    this.bar = el('div', { class: 'breakout-bar', hidden: !isFacilitator || !!this.where }, this.openButton)
    this.tick = setInterval(() => this.render(), 1000)
  }

  /** The elements to place on the board area. */
  get elements () {
    return [this.banner, this.panel]
  }

  attachMeta (metaDoc) {
    this.meta = metaDoc
    metaDoc.on('update', () => this.render())
    this.render()
  }

  destroy () {
    clearInterval(this.tick)
  }

  /** The main room's breakouts (meta `breakouts`), or the group's own (meta `breakout`). */
  state () {
    if (!this.meta) return {}
    return this.meta.getMap(this.where ? 'breakout' : 'breakouts').toJSON()
  }

  isOpen (s) {
    if (s.state !== 'open') return false
    const now = this.clock.now()
    return !(typeof s.endsAt === 'number' && Number.isFinite(now) && now >= s.endsAt)
  }

  remaining (s) {
    const now = this.clock.now()
    if (typeof s.endsAt !== 'number' || !Number.isFinite(now)) return ''
    return t('breakout.left', { time: clockText(s.endsAt - now) })
  }

  /** A disconnect for `code`: a group room's page goes back to the main room. */
  leaving (code) {
    if (!this.where || !['breakout_closed', 'not_in_group'].includes(code)) return false
    this.back()
    return true
  }

  go (group) {
    const target = (this.where ? this.where.main : this.room) + '/' + group
    saveToken(target, this.entry)
    this.navigate(roomPath(target))
  }

  back () {
    if (this.left) return
    this.left = true
    this.navigate(roomPath(this.where.main))
  }

  render () {
    this.renderBanner()
    // The panel again only when the groups changed: not over what is being typed.
    const s = this.state()
    const key = JSON.stringify([s.seq, s.state, this.isOpen(s), s.groups, s.shown])
    if (!this.panel.hidden && key !== this.panelKey) this.renderPanel()
  }

  renderBanner () {
    const s = this.state()
    if (this.where) {
      if (s.state === 'closed' || (s.state === 'open' && !this.isOpen(s))) {
        this.back()
        return
      }
      const parts = [el('strong', {}, t('breakout.inGroup', { n: this.where.number })), el('span', { class: 'breakout-time' }, this.remaining(s))]
      if (s.text) parts.push(el('span', { class: 'breakout-message' }, t('breakout.message', { text: s.text })))
      parts.push(el('button', { type: 'button', class: 'breakout-back', onclick: () => this.back() }, t('breakout.back')))
      this.banner.replaceChildren(...parts)
      this.banner.hidden = s.state !== 'open'
      return
    }
    if (!this.isOpen(s)) {
      this.banner.hidden = true
      return
    }
    const groups = Array.isArray(s.groups) ? s.groups : []
    if (this.isFacilitator) {
      this.banner.replaceChildren(el('strong', {}, t('breakout.running', { count: groups.length })), el('span', { class: 'breakout-time' }, this.remaining(s)))
      this.banner.hidden = false
      return
    }
    const mine = groups.find((g) => Array.isArray(g.members) && g.members.includes(this.user.id))
    if (!mine) {
      this.banner.hidden = true
      return
    }
    this.banner.replaceChildren(
      el('strong', {}, t('breakout.assigned', { n: numberOf(mine.name) })),
      el('span', { class: 'breakout-time' }, this.remaining(s)),
      el('button', { type: 'button', class: 'primary breakout-join', onclick: () => this.go(mine.name) }, t('breakout.join')))
    this.banner.hidden = false
  }

  toggle () {
    this.panel.hidden = !this.panel.hidden
    this.openButton.setAttribute('aria-expanded', String(!this.panel.hidden))
    if (!this.panel.hidden) this.renderPanel()
  }

  async send (payload) {
    return this.moderate(EVENT, payload, errorWords)
  }

  renderPanel () {
    const s = this.state()
    this.panelKey = JSON.stringify([s.seq, s.state, this.isOpen(s), s.groups, s.shown])
    const groups = Array.isArray(s.groups) ? s.groups : []
    const close = el('button', { type: 'button', class: 'breakout-dismiss', onclick: () => this.toggle() }, t('common.close'))
    if (this.isOpen(s)) {
      const list = el('ul', { class: 'breakout-groups' }, groups.map((g) => el('li', { class: 'breakout-group' },
        el('span', {}, t('breakout.group', { n: numberOf(g.name) }) + ': ' + (g.members || []).join(', ')),
        el('button', { type: 'button', class: 'breakout-visit', onclick: () => this.go(g.name) }, t('breakout.visit')))))
      const text = el('input', { type: 'text', class: 'breakout-text', maxlength: 300, placeholder: t('breakout.broadcastPlaceholder'), 'aria-label': t('breakout.broadcast') })
      const broadcast = el('form', { class: 'breakout-broadcast' }, text, el('button', { type: 'submit' }, t('breakout.send')))
      broadcast.addEventListener('submit', async (e) => {
        e.preventDefault()
        if (!text.value.trim()) return
        if (await this.send({ action: 'broadcast', text: text.value })) {
          text.value = ''
          toast(t('breakout.sent'), 'info')
        }
      })
      const stop = el('button', { type: 'button', class: 'danger breakout-close', onclick: () => this.send({ action: 'close' }) }, t('breakout.close'))
      this.panel.replaceChildren(el('h2', {}, t('breakout.title')), el('p', {}, this.remaining(s)), list, broadcast, stop, close)
      return
    }
    const mode = el('select', { class: 'breakout-mode', 'aria-label': t('breakout.mode') },
      el('option', { value: 'count' }, t('breakout.modeCount')),
      el('option', { value: 'size' }, t('breakout.modeSize')),
      el('option', { value: 'hand' }, t('breakout.modeHand')))
    const number = el('input', { type: 'number', class: 'breakout-number', min: 1, max: 50, value: 2, 'aria-label': t('breakout.number') })
    const hand = el('textarea', { class: 'breakout-hand', rows: 4, hidden: true, placeholder: t('breakout.handPlaceholder'), 'aria-label': t('breakout.modeHand') })
    const minutes = el('input', { type: 'number', class: 'breakout-minutes', min: 0, max: 240, value: 10, 'aria-label': t('breakout.minutes') })
    mode.addEventListener('change', () => {
      hand.hidden = mode.value !== 'hand'
      number.hidden = mode.value === 'hand'
    })
    const form = el('form', { class: 'breakout-form' },
      el('label', {}, t('breakout.mode'), mode), number, hand,
      el('label', {}, t('breakout.minutes'), minutes),
      el('button', { type: 'submit', class: 'primary breakout-start' }, t('breakout.start')))
    form.addEventListener('submit', async (e) => {
      e.preventDefault()
      const payload = { action: 'open' }
      if (mode.value === 'hand') {
        payload.groups = hand.value.split('\n').map((line) => line.split(/[\s,]+/).filter(Boolean)).filter((g) => g.length)
      } else {
        payload.random = true
        payload[mode.value] = Number(number.value)
      }
      const m = Number(minutes.value)
      if (m > 0) payload.durationS = Math.round(m * 60)
      if (await this.send(payload)) this.render()
    })
    const shown = groups.length
      ? el('ul', { class: 'breakout-groups breakout-kept' }, groups.map((g) => el('li', { class: 'breakout-group' },
        el('span', {}, t('breakout.group', { n: numberOf(g.name) })),
        el('button', {
          type: 'button',
          class: 'breakout-show',
          onclick: async () => {
            const ack = await this.send({ action: 'show', group: g.name })
            if (ack) toast(t('breakout.shown', { count: ack.shapes }), 'info')
          }
        }, t('breakout.show')))))
      : null
    this.panel.replaceChildren(...[el('h2', {}, t('breakout.title')), form, shown && el('h3', {}, t('breakout.kept')), shown, close].filter(Boolean))
  }
}
