// Who is here (from the board's awareness; the server stamps `user`), with the
// facilitator's per-person controls: mute (§6.3 mod:mute), remove (mod:remove)
// and the role in this session (mod:role: participant or observer); and the
// queue of raised hands (§6.6, meta's `hands`), which a facilitator lowers
// (mod:lower-hands).
import { el, effectiveRole, initials, personColors, roleLabel } from './util.js'
import { t } from './i18n.js'
import { icon } from './icons.js'

const ROLE_ORDER = { facilitator: 0, participant: 1, observer: 2 }

export class People {
  constructor ({ user, moderate, confirm }) {
    this.user = user
    this.moderate = moderate
    this.confirm = confirm
    this.awareness = null
    this.state = { muted: [], removed: [], roles: {}, ended: false }
    this.canModerate = false
    this.known = new Map([[user.id, user.name]])
    this.list = el('ul', { class: 'people-list', 'aria-label': t('people.list') })
    this.removedList = el('ul', { class: 'people-list removed-list', 'aria-label': t('people.removedList') })
    this.removedSection = el('div', { class: 'removed-section', hidden: true },
      el('h3', {}, t('people.removed')), this.removedList)
    this.count = el('span', { class: 'count' }, '1')
    // Raised hands, in the order they went up: [{userId, ts}] (activities.js).
    this.hands = []
    this.handsList = el('ol', { class: 'hands-list', 'aria-label': t('hands.queue') })
    this.lowerAll = el('button', { type: 'button', class: 'link-button lower-all' }, t('hands.lowerAll'))
    this.lowerAll.addEventListener('click', () => this.moderate('mod:lower-hands', {}))
    this.handsSection = el('div', { class: 'hands-section', hidden: true },
      el('h3', {}, icon('hand', 14), ' ', t('hands.title'), ' ', this.lowerAll), this.handsList)
    this.root = el('section', { class: 'people', 'aria-labelledby': 'people-title' },
      el('h2', { id: 'people-title' }, t('people.title'), ' ', this.count),
      this.handsSection, this.list, this.removedSection)
    this.onCount = () => {}
  }

  attach (awareness) {
    if (this.awareness) this.awareness.off('change', this.listener)
    this.awareness = awareness
    this.listener = () => this.render()
    awareness.on('change', this.listener)
    this.render()
  }

  setState (state, canModerate) {
    this.state = state
    this.canModerate = canModerate
    this.render()
  }

  /** The queue of raised hands (§6.6), in raising order. */
  setHands (hands) {
    this.hands = hands
    this.render()
  }

  /** The queue: each raised hand's place, the person's name, and a facilitator's Lower. */
  renderHands (people) {
    const names = new Map(people.map((p) => [p.id, p.name]))
    const canLower = this.canModerate
    this.handsSection.hidden = this.hands.length === 0
    this.lowerAll.hidden = !canLower
    this.handsList.replaceChildren(...this.hands.map((hand, i) => {
      const name = names.get(hand.userId) || this.known.get(hand.userId) || hand.userId
      const self = hand.userId === this.user.id
      const lower = canLower
        ? el('button', { type: 'button', class: 'link-button', 'aria-label': t('hands.lowerLabel', { name }) }, t('hands.lower'))
        : null
      if (lower) lower.addEventListener('click', () => this.moderate('mod:lower-hands', { userId: hand.userId }))
      return el('li', { class: 'hand', 'data-user': hand.userId },
        el('span', { class: 'hand-place', 'aria-hidden': 'true' }, String(i + 1)),
        el('span', { class: 'person-name' }, name, self ? el('span', { class: 'you' }, t('common.you')) : null),
        lower)
    }))
  }

  /**
   * The people present: one entry per user id (several tabs count once), each
   * with the role they have now: a facilitator's override wins over the role
   * in their awareness state, which the server stamps only when they next send
   * one (`overridden`: the role comes from an override).
   */
  present () {
    const roles = this.state.roles || {}
    const users = new Map()
    const entry = (id, name, role, self) => {
      const now = effectiveRole(role, id, roles)
      return { id, name, role: now, overridden: role !== 'facilitator' && Object.prototype.hasOwnProperty.call(roles, id), self }
    }
    users.set(this.user.id, entry(this.user.id, this.user.name, this.user.role, true))
    if (this.awareness) {
      for (const [clientId, state] of this.awareness.getStates()) {
        if (clientId === this.awareness.clientID || !state || !state.user || typeof state.user.id !== 'string') continue
        const u = state.user
        if (!users.has(u.id)) users.set(u.id, entry(u.id, String(u.name || t('common.guest')), u.role, false))
        this.known.set(u.id, String(u.name || t('common.guest')))
      }
    }
    return [...users.values()].sort((a, b) =>
      (ROLE_ORDER[a.role] ?? 3) - (ROLE_ORDER[b.role] ?? 3) || a.name.localeCompare(b.name) || (a.id < b.id ? -1 : 1))
  }

  render () {
    const people = this.present()
    this.renderHands(people)
    const places = new Map(this.hands.map((h, i) => [h.userId, i + 1]))
    const muted = new Set(this.state.muted || [])
    const removed = this.state.removed || []
    // The same colours as their cursors on the board (util.js personColors).
    const colors = personColors(people.map((p) => p.id))
    this.count.textContent = String(people.length)
    this.onCount(people.length)
    this.list.replaceChildren(...people.map((p) => {
      const isMuted = muted.has(p.id)
      const actions = el('span', { class: 'person-actions' })
      if (this.canModerate && !p.self && !this.state.ended) {
        if (p.role !== 'observer') {
          const mute = el('button', {
            type: 'button',
            class: 'icon-button small' + (isMuted ? ' active' : ''),
            'aria-label': t(isMuted ? 'people.unmute' : 'people.mute', { name: p.name }),
            'aria-pressed': String(isMuted),
            title: t(isMuted ? 'people.unmuteTitle' : 'people.muteTitle', { name: p.name })
          }, icon(isMuted ? 'unmute' : 'mute', 16))
          mute.addEventListener('click', () => this.moderate('mod:mute', { userId: p.id, muted: !isMuted }))
          actions.append(mute)
        }
        if (p.role === 'participant' || p.role === 'observer') {
          // The override takes effect at once on all their connections (§6.3).
          const toObserver = p.role === 'participant'
          const role = el('button', {
            type: 'button',
            class: 'icon-button small role-button',
            'data-role-action': toObserver ? 'observer' : 'participant',
            'aria-label': t(toObserver ? 'people.makeObserver' : 'people.makeParticipant', { name: p.name }),
            title: t(toObserver ? 'people.makeObserverTitle' : 'people.makeParticipantTitle', { name: p.name })
          }, icon(toObserver ? 'eye' : 'pen', 16))
          role.addEventListener('click', () => this.moderate('mod:role', { userId: p.id, role: toObserver ? 'observer' : 'participant' }))
          actions.append(role)
        }
        const remove = el('button', {
          type: 'button', class: 'icon-button small danger', 'aria-label': t('people.remove', { name: p.name }), title: t('people.removeTitle', { name: p.name })
        }, icon('remove', 16))
        remove.addEventListener('click', async () => {
          if (await this.confirm(t('people.removeConfirm', { name: p.name }), t('people.removeTitle', { name: p.name }))) {
            this.moderate('mod:remove', { userId: p.id, removed: true })
          }
        })
        actions.append(remove)
      }
      return el('li', { class: 'person', 'data-user': p.id },
        el('span', { class: 'avatar', 'aria-hidden': 'true', style: 'background:' + colors.get(p.id) }, initials(p.name)),
        el('span', { class: 'person-name' }, p.name, p.self ? el('span', { class: 'you' }, t('common.you')) : null),
        el('span', {
          class: 'role-badge role-' + p.role + (p.overridden ? ' role-overridden' : ''),
          title: p.overridden ? t('people.setByFacilitator') : null
        }, roleLabel(p.role), p.overridden ? el('span', { class: 'visually-hidden' }, t('people.setByFacilitatorShort')) : null),
        isMuted ? el('span', { class: 'muted-flag', title: t('people.muted'), 'aria-label': t('people.mutedLabel') }, icon('mute', 14)) : null,
        places.has(p.id) ? el('span', { class: 'hand-flag', title: t('hands.flag', { place: places.get(p.id) }), 'aria-label': t('hands.flag', { place: places.get(p.id) }) }, icon('hand', 14), String(places.get(p.id))) : null,
        actions)
    }))
    this.removedSection.hidden = !(this.canModerate && removed.length)
    this.removedList.replaceChildren(...(this.canModerate ? removed : []).map((id) => {
      const name = this.known.get(id) || id
      const readmit = el('button', { type: 'button', class: 'link-button', 'aria-label': t('people.readmitLabel', { name }) }, t('people.readmit'))
      readmit.addEventListener('click', () => this.moderate('mod:remove', { userId: id, removed: false }))
      return el('li', { class: 'person removed', 'data-user': id }, el('span', { class: 'person-name' }, name), readmit)
    }))
  }
}
