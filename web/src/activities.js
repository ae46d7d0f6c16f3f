// Session activities (protocol.md §6.6): raising a hand, reactions and the
// session notice. The queue of hands and the notice are the meta document's
// (`hands`, `meta.notice`), so every page reads the same; reactions arrive as
// `reaction` events on the meta socket and are never stored, so the
// facilitator's counts are this page's own, over the last few minutes.
import { el, toast } from './util.js'
import { t } from './i18n.js'
import { icon } from './icons.js'

/** The reactions there are (rooms/reactions.py `ReactionKind`), each with its picture. */
export const REACTIONS = [
  { kind: 'thumbs-up', emoji: '👍' },
  { kind: 'heart', emoji: '❤️' },
  { kind: 'clap', emoji: '👏' },
  { kind: 'relate', emoji: '🤝' },
  { kind: 'slow-down', emoji: '🐢' }
]
const EMOJI = Object.fromEntries(REACTIONS.map((r) => [r.kind, r.emoji]))

/** How far back the facilitator's counts reach (ms), and in minutes for the words. */
export const COUNT_WINDOW_MS = 5 * 60 * 1000
const COUNT_WINDOW_MIN = COUNT_WINDOW_MS / 60000
/** How long a reaction floats over its sender's avatar and cursor (app.css `reaction-rise`). */
const FLOAT_MS = 2000
/** How often the counts drop what fell out of their window. */
const PRUNE_MS = 10000
/** The longest notice (protocol.md §8.1). */
const MAX_NOTICE_CHARS = 500
/** Where a dismissed notice is remembered (per room, for this tab). */
const DISMISSED_KEY = 'collab:notice-dismissed:'

/** The refusals these events word themselves (i18n.js `activityError.<code>`). */
const ERRORS = ['rate_limited', 'permission_denied', 'session_ended', 'invalid_payload', 'document_too_large']

/**
 * Meta's `hands` map → the queue, in raising order (then by user id), as the
 * server orders it (rooms/hands.py `read_hands`).
 */
export function readHands (map) {
  const hands = []
  for (const [userId, ts] of map.entries()) {
    if (typeof ts === 'number' && Number.isFinite(ts)) hands.push({ userId, ts })
  }
  return hands.sort((a, b) => a.ts - b.ts || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0))
}

export class Activities {
  /**
   * `people` shows the queue (people.js `setHands`); `cursorLayer()` is the
   * board's layer of cursors (a reaction floats at its sender's cursor);
   * `moderate` sends a facilitator's `mod:*` event (session.js).
   */
  constructor ({ room, user, people, cursorLayer, moderate }) {
    Object.assign(this, { room, user, people, cursorLayer, moderate })
    this.isFacilitator = user.role === 'facilitator'
    this.socket = null
    this.state = { role: user.role, ended: false, blocked: false }
    this.hands = []
    this.notice = ''
    // The reactions this page received, for the facilitator's counts: {kind, at}.
    this.received = []
    this.build()
  }

  build () {
    this.handButton = el('button', {
      type: 'button', class: 'tool-button labeled hand-button', 'aria-pressed': 'false', 'aria-label': t('hands.raise')
    }, icon('hand', 18), el('span', {}, t('hands.raise')))
    this.handButton.addEventListener('click', () => this.toggleHand())
    this.reactionButtons = new Map()
    const group = el('div', { class: 'reaction-buttons', role: 'group', 'aria-label': t('reactions.group') })
    for (const { kind, emoji } of REACTIONS) {
      const count = el('span', { class: 'reaction-count', hidden: true, 'aria-hidden': 'true' })
      const button = el('button', {
        type: 'button', class: 'reaction-button', 'data-kind': kind, 'aria-label': t('reactions.' + kind), title: t('reactions.' + kind)
      }, el('span', { class: 'reaction-emoji', 'aria-hidden': 'true' }, emoji), count)
      button.addEventListener('click', () => this.react(kind))
      this.reactionButtons.set(kind, { button, count })
      group.append(button)
    }
    this.noticeButton = el('button', {
      type: 'button', class: 'tool-button small', 'data-action': 'notice', 'aria-label': t('notice.set'), title: t('notice.set'), hidden: !this.isFacilitator
    }, icon('megaphone', 18))
    this.noticeButton.addEventListener('click', () => this.editNotice())
    this.bar = el('div', { class: 'activitybar', role: 'toolbar', 'aria-label': t('activities.bar') }, this.handButton, group, this.noticeButton)

    this.noticeText = el('span', { class: 'notice-text' })
    const dismiss = el('button', { type: 'button', class: 'icon-button small notice-dismiss', 'aria-label': t('notice.dismiss'), title: t('notice.dismiss') }, icon('close', 16))
    dismiss.addEventListener('click', () => this.dismissNotice())
    this.noticeBanner = el('div', { class: 'banner banner-notice', 'data-banner': 'notice', role: 'status', hidden: true },
      icon('megaphone', 16), this.noticeText, dismiss)
    this.pruneTimer = setInterval(() => this.renderCounts(), PRUNE_MS)
    this.render()
  }

  /** Read the queue and the notice from `metaDoc`, reactions from its `socket`. */
  attach (metaDoc, socket) {
    this.socket = socket
    this.handsMap = metaDoc.getMap('hands')
    this.metaMap = metaDoc.getMap('meta')
    this.handsMap.observe(() => this.readHands())
    this.metaMap.observe(() => this.readNotice())
    socket.on('reaction', (reaction) => this.onReaction(reaction))
    this.readHands()
    this.readNotice()
  }

  detach () {
    clearInterval(this.pruneTimer)
    if (this.floats) this.floats.remove()
  }

  /** The viewer's role now, whether the session ended, whether the page is cut off. */
  setState (state) {
    this.state = state
    this.render()
  }

  // -- raise hand ---------------------------------------------------------------

  readHands () {
    this.hands = readHands(this.handsMap)
    this.people.setHands(this.hands)
    this.render()
  }

  get handRaised () {
    return this.hands.some((h) => h.userId === this.user.id)
  }

  async toggleHand () {
    const ack = await this.send('hand:raise', { raised: !this.handRaised })
    if (ack) toast(t(ack.raised ? 'hands.raisedYou' : 'hands.loweredYou'), 'info')
  }

  // -- reactions ----------------------------------------------------------------

  async react (kind) {
    await this.send('reaction:send', { kind })
  }

  /** A `reaction` event: float it over its sender; count it for the facilitator. */
  onReaction (reaction) {
    if (!reaction || typeof reaction !== 'object' || !EMOJI[reaction.kind] || typeof reaction.userId !== 'string') return
    this.float(reaction.userId, reaction.kind)
    if (!this.isFacilitator) return
    this.received.push({ kind: reaction.kind, at: Date.now() })
    this.renderCounts()
  }

  /** The reaction's picture rising over its sender's avatar (the list of people) and cursor (the board). */
  float (userId, kind) {
    if (!this.floats) {
      this.floats = el('div', { class: 'reaction-floats', 'aria-hidden': 'true' })
      document.body.append(this.floats)
    }
    const layer = this.cursorLayer()
    const anchors = [
      ...document.querySelectorAll('.people-list > .person[data-user] .avatar'),
      ...(layer ? layer.querySelectorAll('.cursor[data-user]') : [])
    ].filter((node) => node.closest('[data-user]').dataset.user === userId)
    for (const anchor of anchors) {
      const box = anchor.getBoundingClientRect()
      if (!box.width || !box.height) continue // not shown (the panel is closed)
      const node = el('span', { class: 'reaction-float', 'data-user': userId, 'data-kind': kind }, EMOJI[kind])
      node.style.left = Math.round(box.left + box.width / 2) + 'px'
      node.style.top = Math.round(box.top) + 'px'
      this.floats.append(node)
      setTimeout(() => node.remove(), FLOAT_MS)
    }
  }

  /** The counts on a facilitator's reaction buttons: each kind over the last COUNT_WINDOW_MS. */
  renderCounts () {
    if (!this.isFacilitator) return
    const since = Date.now() - COUNT_WINDOW_MS
    this.received = this.received.filter((r) => r.at >= since)
    for (const [kind, { button, count }] of this.reactionButtons) {
      const n = this.received.filter((r) => r.kind === kind).length
      count.hidden = n === 0
      count.textContent = String(n)
      const label = n ? t('reactions.counted', { label: t('reactions.' + kind), count: n, minutes: COUNT_WINDOW_MIN }) : t('reactions.' + kind)
      button.setAttribute('aria-label', label)
      button.title = label
    }
  }

  // -- the notice ---------------------------------------------------------------

  readNotice () {
    const value = this.metaMap.get('notice')
    this.notice = typeof value === 'string' ? value : ''
    this.renderNotice()
  }

  dismissedNotice () {
    try { return sessionStorage.getItem(DISMISSED_KEY + this.room) } catch { return null }
  }

  /** Hide the banner until the notice changes. */
  dismissNotice () {
    try { sessionStorage.setItem(DISMISSED_KEY + this.room, this.notice) } catch {}
    this.renderNotice()
  }

  renderNotice () {
    this.noticeText.textContent = this.notice
    this.noticeBanner.hidden = !this.notice || this.dismissedNotice() === this.notice
  }

  /** A facilitator writes the notice (`mod:notice`): one line, '' clears it. */
  async editNotice () {
    const text = await noticeDialog(this.notice)
    if (text === null) return
    const ack = await this.moderate('mod:notice', { text }, (code) => (ERRORS.includes(code) ? t('activityError.' + code) : undefined))
    if (ack) toast(t(text.trim() ? 'notice.saved' : 'notice.cleared'), 'info')
  }

  // -- sending ------------------------------------------------------------------

  /** An activity event with its ack, refusals in words; the ack, or null. */
  async send (event, payload) {
    const socket = this.socket
    if (!socket || !socket.connected) {
      toast(t('state.offline'), 'error')
      return null
    }
    let ack
    try {
      ack = await socket.timeout(10000).emitWithAck(event, payload)
    } catch {
      toast(t('state.noAnswer'), 'error')
      return null
    }
    if (ack && ack.ok) return ack
    const code = ack && ack.error && ack.error.code
    // Reacting faster than the server takes is not an error of the page's: say so gently.
    if (code === 'rate_limited') toast(t('activityError.rate_limited'), 'warn')
    else toast(ERRORS.includes(code) ? t('activityError.' + code) : t('error.other', { code: String(code) }), 'error')
    return null
  }

  render () {
    const { role, ended, blocked } = this.state
    const takesPart = role !== 'observer'
    // Observers watch: no bar. Facilitators do not queue (they give the turns).
    this.bar.hidden = !takesPart
    this.handButton.hidden = role !== 'participant'
    const raised = this.handRaised
    this.handButton.setAttribute('aria-pressed', String(raised))
    this.handButton.title = t(raised ? 'hands.lowerTitle' : 'hands.raiseTitle')
    this.handButton.disabled = blocked || (ended && !raised)
    for (const { button } of this.reactionButtons.values()) button.disabled = blocked || ended
    this.noticeButton.disabled = blocked
  }
}

/** Ask a facilitator for the notice: resolves the text, or null when cancelled. */
function noticeDialog (current) {
  return new Promise((resolve) => {
    let result = null
    const input = el('input', { id: 'notice-input', type: 'text', maxlength: MAX_NOTICE_CHARS, autocomplete: 'off' })
    input.value = current
    const save = el('button', { type: 'submit', class: 'primary' }, t('notice.save'))
    const clear = el('button', { type: 'button' }, t('notice.clear'))
    const cancel = el('button', { type: 'button' }, t('common.cancel'))
    const form = el('form', { method: 'dialog' },
      el('h2', { id: 'notice-title' }, t('notice.title')),
      el('label', { for: 'notice-input' }, t('notice.label')), input,
      el('p', { class: 'hint' }, t('notice.hint')),
      el('div', { class: 'dialog-actions' }, cancel, clear, save))
    const dialog = el('dialog', { class: 'dialog notice-dialog', 'aria-labelledby': 'notice-title' }, form)
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      result = input.value.replace(/[\r\n\t]+/g, ' ')
      dialog.close()
    })
    clear.addEventListener('click', () => { result = ''; dialog.close() })
    cancel.addEventListener('click', () => dialog.close())
    dialog.addEventListener('close', () => {
      dialog.remove()
      resolve(result)
    })
    document.body.append(dialog)
    dialog.showModal()
    input.focus()
  })
}
