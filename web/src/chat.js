// The chat panel: the chat document's `messages` (protocol.md §5.2), sent with
// `chat:send` (§6.1); facilitators redact with `mod:redact` (§6.3); an author
// deletes their own recent message with `chat:delete` (§6.6).
import * as Y from 'yjs'
import { el, randomHex, roleLabel, sendOnSubmit } from './util.js'
import { formatDateTime, formatTime, t } from './i18n.js'
import { icon } from './icons.js'

/** Refusals of `chat:send` the catalogue words (i18n.js `chat.error.<code>`). */
const ERROR_CODES = new Set(['muted', 'permission_denied', 'session_ended', 'invalid_chat_message', 'document_too_large', 'timeout'])

/**
 * Refusals that mean "not now" (protocol.md §11: the server cannot save): the
 * message is sent again by itself, with the same clientMessageId, so it is
 * stored once however many tries it takes. Waits between tries, in ms.
 */
const RETRYABLE = new Set(['store_unavailable'])
const RETRY_MS = [1000, 2000, 4000, 8000, 15000]

/** Within this many pixels of the end, a reader counts as at the end (and is kept there). */
const AT_END_PX = 40

export class Chat {
  constructor ({ user, onUnread = () => {}, redact, confirm, deleteOwn = null, deleteWindowMs = 0 }) {
    this.user = user
    this.onUnread = onUnread
    this.redact = redact
    this.confirm = confirm
    // An author's own messages younger than deleteWindowMs offer Delete (0: never).
    this.deleteOwn = deleteOwn
    this.deleteWindowMs = deleteOwn ? deleteWindowMs : 0
    this.canDeleteOwn = false
    this.deleteTimer = 0
    this.socket = null
    this.items = new Map()
    this.pending = new Map()
    this.unread = 0
    // Messages of others that arrived below a reader scrolled up (the marker).
    this.below = 0
    this.visible = true
    this.canModerate = false
    this.sendState = { allowed: true, reason: '' }
    this.build()
  }

  build () {
    this.list = el('ol', { class: 'chat-list', 'aria-label': t('chat.messages'), 'aria-live': 'polite', 'aria-relevant': 'additions text', tabindex: 0 })
    this.empty = el('p', { class: 'chat-empty' }, t('chat.empty'))
    this.notice = el('p', { class: 'chat-notice', id: 'chat-notice', role: 'status', hidden: true })
    this.input = el('textarea', {
      class: 'chat-input', rows: 2, maxlength: 4000, placeholder: t('chat.placeholder'), 'aria-label': t('chat.message'), 'aria-describedby': 'chat-notice'
    })
    this.sendButton = el('button', { type: 'submit', class: 'icon-button primary', 'aria-label': t('chat.send'), title: t('chat.sendTitle') }, icon('send'))
    this.form = el('form', { class: 'chat-form' }, this.input, this.sendButton)
    this.newButton = el('button', { type: 'button', class: 'chat-new', title: t('chat.newMessagesHint'), hidden: true })
    this.newButton.addEventListener('click', () => this.scrollToEnd())
    this.list.addEventListener('scroll', () => { if (this.atEnd()) this.clearBelow() }, { passive: true })
    this.root = el('section', { class: 'chat', 'aria-label': t('chat.title') },
      this.empty, el('div', { class: 'chat-scroll' }, this.list, this.newButton), this.notice, this.form)
    sendOnSubmit(this.form, this.input, () => this.send())
  }

  attach (doc, socket) {
    this.socket = socket
    this.messages = doc.getArray('messages')
    this.messages.observeDeep(() => this.render())
    this.render(true)
  }

  setVisible (visible) {
    this.visible = visible
    if (visible) {
      this.unread = 0
      this.onUnread(0)
      this.scrollToEnd()
    }
  }

  setCanModerate (can) {
    if (can === this.canModerate) return
    this.canModerate = can
    this.render()
  }

  /** Whether this user may delete their own recent messages now (not an observer, connected). */
  setCanDeleteOwn (can) {
    if (can === this.canDeleteOwn) return
    this.canDeleteOwn = can
    this.render()
  }

  /** Whether `m`, one of this user's messages, may still be deleted by them. */
  deletable (m) {
    return this.canDeleteOwn && this.deleteWindowMs > 0 && m.authorId === this.user.id &&
      m.redacted !== true && m.deleted !== true && typeof m.ts === 'number' && Date.now() - m.ts < this.deleteWindowMs
  }

  /** Render again when the first of this user's messages that offer Delete stops offering it. */
  scheduleDeleteExpiry (values) {
    clearTimeout(this.deleteTimer)
    const ends = values.filter((m) => m && this.deletable(m)).map((m) => m.ts + this.deleteWindowMs - Date.now())
    if (ends.length) this.deleteTimer = setTimeout(() => this.render(), Math.max(0, Math.min(...ends)) + 50)
  }

  /** Whether this user may send now, and why not. */
  setSendState (allowed, reason = '') {
    this.sendState = { allowed, reason }
    this.input.disabled = !allowed
    this.sendButton.disabled = !allowed
    // The notice says why; the box only says that it is off.
    this.input.placeholder = t(allowed ? 'chat.placeholder' : 'chat.placeholderOff')
    this.notice.hidden = allowed || !reason
    this.notice.textContent = allowed ? '' : reason
  }

  /** Whether the list shows its end (a reader there is kept there as messages arrive). */
  atEnd () {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < AT_END_PX
  }

  scrollToEnd () {
    this.list.scrollTop = this.list.scrollHeight
    this.clearBelow()
  }

  clearBelow () {
    if (!this.below) return
    this.below = 0
    this.newButton.hidden = true
  }

  render (initial = false) {
    if (!this.messages) return
    const atEnd = this.atEnd()
    const values = this.messages.toArray().map((v) => (v instanceof Y.Map ? v.toJSON() : v))
    const seen = new Set()
    let added = 0
    let prev = null
    for (const m of values) {
      if (!m || typeof m !== 'object' || typeof m.id !== 'string') continue
      seen.add(m.id)
      let item = this.items.get(m.id)
      if (!item) {
        item = this.createItem(m)
        this.items.set(m.id, item)
        if (!initial && m.authorId !== this.user.id) added++
        if (m.clientMessageId && this.pending.has(m.clientMessageId)) {
          this.pending.get(m.clientMessageId).node.remove()
          this.pending.delete(m.clientMessageId)
        }
      }
      this.updateItem(item, m)
      const before = prev ? prev.nextSibling : this.list.firstChild
      if (item.node !== before) this.list.insertBefore(item.node, before)
      prev = item.node
    }
    for (const [id, item] of this.items) {
      if (!seen.has(id)) {
        item.node.remove()
        this.items.delete(id)
      }
    }
    for (const p of this.pending.values()) this.list.append(p.node)
    this.scheduleDeleteExpiry(values)
    this.empty.hidden = this.items.size + this.pending.size > 0
    if (added && !this.visible) {
      this.unread += added
      this.onUnread(this.unread)
    }
    // A reader scrolled up stays where they are: new messages of others are
    // counted on the marker instead (one's own are scrolled to by send()).
    if (initial || atEnd || !this.visible) this.scrollToEnd()
    else if (added) {
      this.below += added
      // The marker of messages that arrived below while the reader was scrolled up.
      this.newButton.textContent = t('chat.newMessages', { count: this.below })
      this.newButton.hidden = false
    }
  }

  createItem (m) {
    const author = el('span', { class: 'chat-author' })
    const role = el('span', { class: 'role-badge' })
    const time = el('time', { class: 'chat-time' })
    const text = el('p', { class: 'chat-text' })
    const actions = el('span', { class: 'chat-actions' })
    const node = el('li', { class: 'chat-message', 'data-id': m.id },
      el('div', { class: 'chat-meta' }, author, role, time, actions), text)
    return { node, author, role, time, text, actions, key: '' }
  }

  updateItem (item, m) {
    const redacted = m.redacted === true
    const deleted = m.deleted === true
    const deletable = this.deletable(m)
    const key = [m.authorName, m.role, m.ts, redacted, deleted, deletable, m.text, this.canModerate].join('\u0000')
    if (item.key === key) return
    item.key = key
    const mine = m.authorId === this.user.id
    item.node.classList.toggle('mine', mine)
    item.node.classList.toggle('redacted', redacted || deleted)
    item.author.textContent = (m.authorName || t('common.unknown')) + (mine ? t('common.you') : '')
    item.role.textContent = roleLabel(m.role)
    item.role.className = 'role-badge role-' + (m.role || 'participant')
    item.time.textContent = formatTime(m.ts)
    if (typeof m.ts === 'number') {
      item.time.setAttribute('datetime', new Date(m.ts).toISOString())
      item.time.title = formatDateTime(m.ts)
    }
    item.text.textContent = redacted ? t('chat.removed') : deleted ? t(mine ? 'chat.deletedYou' : 'chat.deleted') : String(m.text || '')
    item.text.classList.toggle('removed', redacted || deleted)
    item.actions.replaceChildren()
    if (deletable) {
      const button = el('button', {
        type: 'button', class: 'icon-button small delete-own-button', 'aria-label': t('chat.deleteOwn'), title: t('chat.deleteOwnTitle')
      }, icon('trash', 16))
      button.addEventListener('click', async () => {
        if (await this.confirm(t('chat.deleteOwnConfirm'), t('chat.deleteOwn'))) this.deleteOwn(m.id)
      })
      item.actions.append(button)
    }
    if (this.canModerate && !redacted && !deleted && !(mine && deletable)) {
      const button = el('button', {
        type: 'button',
        class: 'icon-button small danger redact-button',
        'aria-label': t('chat.removeFrom', { name: m.authorName || t('common.unknown') }),
        title: t('chat.removeTitle')
      }, icon('redact', 16))
      button.addEventListener('click', async () => {
        const ok = await this.confirm(t('chat.removeConfirm'), t('chat.removeMessage'))
        if (ok) this.redact(m.id)
      })
      item.actions.append(button)
    }
  }

  async send () {
    const text = this.input.value
    if (!text.trim() || !this.sendState.allowed) return
    const clientMessageId = randomHex(12)
    const node = el('li', { class: 'chat-message mine pending' },
      el('div', { class: 'chat-meta' }, el('span', { class: 'chat-author' }, this.user.name + t('common.you')), el('span', { class: 'chat-status' }, t('chat.sending'))),
      el('p', { class: 'chat-text' }, text))
    const entry = { text, clientMessageId, node, attempts: 0, retryTimer: 0 }
    this.pending.set(clientMessageId, entry)
    this.input.value = ''
    this.render()
    this.scrollToEnd()
    await this.deliver(entry)
  }

  /** Send one message; a retry reuses its clientMessageId, so it is stored once. */
  async deliver (entry) {
    const status = entry.node.querySelector('.chat-status')
    clearTimeout(entry.retryTimer)
    entry.retryTimer = 0
    if (!entry.node.classList.contains('retrying')) status.textContent = t('chat.sending')
    let ack
    try {
      ack = await this.socket.timeout(10000).emitWithAck('chat:send', { text: entry.text, clientMessageId: entry.clientMessageId })
    } catch {
      ack = { ok: false, error: { code: 'timeout' } }
    }
    if (!this.pending.has(entry.clientMessageId)) return
    if (ack && ack.ok) {
      // The message arrives through the chat document; drop the placeholder if it is there already.
      if (this.items.has(ack.id)) {
        entry.node.remove()
        this.pending.delete(entry.clientMessageId)
        this.render()
      } else {
        status.textContent = t('chat.sent')
      }
      return
    }
    const code = (ack && ack.error && ack.error.code) || 'internal_error'
    entry.failedCode = code
    const retry = el('button', { type: 'button', class: 'link-button', 'aria-label': t('chat.retryLabel') }, t('chat.retry'))
    const discard = el('button', { type: 'button', class: 'link-button', 'aria-label': t('chat.discardLabel') }, t('chat.discard'))
    retry.addEventListener('click', () => this.deliver(entry))
    discard.addEventListener('click', () => {
      clearTimeout(entry.retryTimer)
      entry.node.remove()
      this.pending.delete(entry.clientMessageId)
      this.render()
    })
    if (RETRYABLE.has(code)) {
      // Not stored, and nothing wrong with the message: it goes again by itself.
      entry.node.classList.add('failed', 'retrying')
      status.replaceChildren(el('span', { class: 'chat-retrying' }, t('chat.retrying')), ' ', discard)
      const wait = RETRY_MS[Math.min(entry.attempts, RETRY_MS.length - 1)]
      entry.attempts++
      entry.retryTimer = setTimeout(() => {
        entry.retryTimer = 0
        if (this.pending.has(entry.clientMessageId)) this.deliver(entry)
      }, wait)
      return
    }
    entry.node.classList.remove('retrying')
    status.replaceChildren(el('span', { class: 'chat-error', role: 'alert' }, ERROR_CODES.has(code) ? t('chat.error.' + code) : ((ack && ack.error && ack.error.message) || code)), ' ', retry, ' ', discard)
    entry.node.classList.add('failed')
  }

  /**
   * Resend messages that never got an answer (after a reconnect), and with
   * `now` (the server can save again) those waiting to retry, at once.
   */
  retryPending (now = false) {
    for (const entry of this.pending.values()) {
      const due = entry.failedCode === 'timeout' || (now && RETRYABLE.has(entry.failedCode))
      if (due && this.sendState.allowed) {
        entry.failedCode = null
        entry.node.classList.remove('failed')
        this.deliver(entry)
      }
    }
  }
}
