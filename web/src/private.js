// The private line to the facilitators (protocol.md §6.8): a participant's
// thread with the room's facilitators, in a server-written document of its own
// (`private:<key>`), written with `private:send`. A participant opens their
// own thread from the panel; a facilitator sees the list of threads
// (`private:threads`, told of new messages by `private:message`), opens one
// and answers. Nothing of it goes through the group chat.
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { SocketIOProvider } from 'y-socket.io'
import { el, randomHex, roleLabel, sendOnSubmit, toast } from './util.js'
import { formatTime, t } from './i18n.js'

/** Refusals of `private:send` the catalogue words (`private.error.<code>`). */
const ERROR_CODES = new Set(['session_ended', 'permission_denied', 'private_line_forbidden', 'invalid_chat_message', 'rate_limited', 'store_unavailable', 'document_too_large', 'private_thread_limit'])

export class PrivateLine {
  /**
   * `socket()`: a connected socket of the session (any of its documents), or null;
   * `token()`: the session's token (threads connect with it); `confirm(text, action)`:
   * a confirmation dialog (a facilitator's removal of a message).
   */
  constructor ({ room, user, isFacilitator, socket, token, confirm }) {
    Object.assign(this, { room, user, isFacilitator, socket, token, confirm })
    // Facilitators: the room's threads (summaries), and the newest message each was read at.
    this.threads = []
    this.seen = new Map()
    // The thread shown: { doc, userId, name, ydoc, provider, messages }.
    this.current = null
    this.state = { role: user.role, ended: false, blocked: false }
    this.listening = null
    this.build()
  }

  build () {
    this.heading = el('h3', { class: 'privline-heading' })
    this.note = el('p', { class: 'privline-note' })
    this.list = el('ol', { class: 'privline-messages', 'aria-label': t('private.messages'), 'aria-live': 'polite' })
    this.empty = el('p', { class: 'privline-empty' }, t('private.empty'))
    this.input = el('textarea', { class: 'privline-input', rows: 2, maxlength: 4000, placeholder: t('private.placeholder'), 'aria-label': t('private.message') })
    this.sendButton = el('button', { type: 'submit', class: 'privline-send primary' }, t('private.send'))
    this.form = el('form', { class: 'privline-form' }, this.input, this.sendButton)
    sendOnSubmit(this.form, this.input, () => this.send())
    this.back = el('button', { type: 'button', class: 'privline-back' }, t(this.isFacilitator ? 'private.back' : 'private.close'))
    this.back.addEventListener('click', () => this.closeThread())
    this.conversation = el('div', { class: 'privline-conversation', hidden: true },
      el('div', { class: 'privline-bar' }, this.heading, this.back), this.note, this.empty, this.list, this.form)
    if (this.isFacilitator) {
      this.threadList = el('ul', { class: 'privline-threads', 'aria-label': t('private.threads') })
      this.noThreads = el('p', { class: 'privline-empty' }, t('private.noThreads'))
      this.overview = el('div', { class: 'privline-overview' }, this.noThreads, this.threadList)
      this.root = el('section', { class: 'privline privline-facilitator', 'aria-label': t('private.titleFacilitator') },
        el('h2', { class: 'privline-title' }, t('private.titleFacilitator')), this.overview, this.conversation)
    } else {
      this.badge = el('span', { class: 'privline-unread', hidden: true }, t('private.unread'))
      this.toggle = el('button', { type: 'button', class: 'privline-toggle', 'aria-expanded': 'false', 'aria-label': t('private.open') }, t('private.open'), this.badge)
      this.toggle.addEventListener('click', () => this.openOwn())
      this.root = el('section', { class: 'privline', 'aria-label': t('private.title') }, this.toggle, this.conversation)
    }
  }

  /** Follow the room's `private:message` from the session's meta socket. */
  attach (metaSocket) {
    const onMessage = (notice) => this.onNotice(notice)
    const onConnect = () => this.refresh()
    metaSocket.on('private:message', onMessage)
    metaSocket.on('connect', onConnect)
    this.listening = { metaSocket, onMessage, onConnect }
    if (metaSocket.connected) this.refresh()
  }

  /** An event's ack, or null (not connected, no answer); errors are the ack's. */
  async ask (event, payload) {
    const socket = this.socket()
    if (!socket) return null
    try {
      return await socket.timeout(10000).emitWithAck(event, payload)
    } catch {
      return null
    }
  }

  // -- facilitators' list ----------------------------------------------------------

  async refresh () {
    if (this.state.role === 'observer') return
    const ack = await this.ask('private:threads', {})
    if (!ack || !ack.ok || !Array.isArray(ack.threads)) return
    if (!this.isFacilitator) {
      // A facilitator's answer not read yet (on this device) shows on the button.
      const own = ack.threads.find((x) => x && x.doc === ack.own)
      this.setUnread(!!own && own.lastRole === 'facilitator' && own.lastTs > this.ownSeen())
      return
    }
    this.threads = ack.threads.filter((x) => x && typeof x.doc === 'string' && typeof x.userId === 'string')
    this.renderThreads()
  }

  onNotice (notice) {
    if (!notice || typeof notice.doc !== 'string') return
    const open = this.current && this.current.doc === notice.doc
    if (open) this.seen.set(notice.doc, notice.ts)
    if (this.isFacilitator) this.refresh()
    else if (!open && notice.role === 'facilitator') this.setUnread(true)
  }

  // -- a participant's unread answer ---------------------------------------------

  /** The newest message of their own thread this participant has read (ms; this tab's storage). */
  ownSeen () {
    try {
      return Number(sessionStorage.getItem('privline-seen:' + this.room)) || 0
    } catch {
      return 0
    }
  }

  markOwnSeen (ts) {
    try {
      if (ts > this.ownSeen()) sessionStorage.setItem('privline-seen:' + this.room, String(ts))
    } catch {}
    this.setUnread(false)
  }

  setUnread (unread) {
    if (this.isFacilitator) return
    this.badge.hidden = !unread
    this.toggle.setAttribute('aria-label', t(unread ? 'private.openUnread' : 'private.open'))
  }

  unread (thread) {
    return thread.lastRole !== 'facilitator' && thread.lastTs > (this.seen.get(thread.doc) || 0)
  }

  renderThreads () {
    if (!this.isFacilitator) return
    this.noThreads.hidden = this.threads.length > 0
    this.threadList.replaceChildren(...this.threads.map((thread) => {
      const name = thread.name || thread.userId
      const unread = this.unread(thread)
      const button = el('button', { type: 'button', class: 'privline-thread' + (unread ? ' unread' : ''), 'data-user': thread.userId },
        el('span', { class: 'privline-thread-name' }, name),
        el('span', { class: 'privline-thread-count' }, t('private.count', { count: thread.messages })),
        unread ? el('span', { class: 'privline-unread' }, t('private.unread')) : null)
      button.setAttribute('aria-label', t(unread ? 'private.openThreadUnread' : 'private.openThread', { name }))
      button.addEventListener('click', () => this.openThread(thread.doc, thread.userId, name))
      return el('li', {}, button)
    }))
  }

  // -- a thread ----------------------------------------------------------------

  async openOwn () {
    if (this.current) {
      this.closeThread()
      return
    }
    const ack = await this.ask('private:threads', {})
    if (!ack || !ack.ok || typeof ack.own !== 'string') {
      toast(t('private.error.other'), 'error')
      return
    }
    this.openThread(ack.own, this.user.id, this.user.name)
  }

  openThread (doc, userId, name) {
    this.closeThread()
    const ydoc = new Y.Doc()
    // A thread is server-written: no awareness of ours there.
    const awareness = new Awareness(ydoc)
    awareness.setLocalState(null)
    const provider = new SocketIOProvider(location.origin, this.room + '/' + doc, ydoc, { disableBc: true, auth: { token: this.token() }, awareness })
    const messages = ydoc.getArray('messages')
    this.current = { doc, userId, name, ydoc, provider, messages }
    messages.observeDeep(() => this.renderMessages())
    this.heading.textContent = this.isFacilitator ? t('private.thread', { name }) : t('private.title')
    this.note.textContent = t(this.isFacilitator ? 'private.noteFacilitator' : 'private.note')
    this.conversation.hidden = false
    if (this.isFacilitator) this.overview.hidden = true
    else this.toggle.setAttribute('aria-expanded', 'true')
    this.renderMessages()
    this.renderForm()
    this.input.focus({ preventScroll: true })
  }

  closeThread () {
    const current = this.current
    if (!current) return
    this.current = null
    current.provider.disconnect()
    current.provider.destroy()
    current.ydoc.destroy()
    this.conversation.hidden = true
    if (this.isFacilitator) {
      this.overview.hidden = false
      this.renderThreads()
    } else this.toggle.setAttribute('aria-expanded', 'false')
  }

  renderMessages () {
    const current = this.current
    if (!current) return
    const values = current.messages.toArray().map((v) => (v instanceof Y.Map ? v.toJSON() : v))
      .filter((m) => m && typeof m === 'object' && typeof m.id === 'string')
    this.empty.hidden = values.length > 0
    this.list.replaceChildren(...values.map((m) => this.renderMessage(m, current)))
    const last = values[values.length - 1]
    if (last && typeof last.ts === 'number') {
      this.seen.set(current.doc, Math.max(this.seen.get(current.doc) || 0, last.ts))
      if (this.isFacilitator) this.renderThreads()
      else this.markOwnSeen(last.ts)
    }
    this.list.scrollTop = this.list.scrollHeight
  }

  renderMessage (m, current) {
    const mine = m.authorId === this.user.id
    const removed = m.redacted === true || m.deleted === true
    const meta = el('div', { class: 'privline-meta' },
      el('span', { class: 'privline-author' }, mine ? t('private.you') : String(m.authorName || '')),
      el('span', { class: 'privline-role' }, roleLabel(m.role)),
      el('time', { class: 'privline-time' }, typeof m.ts === 'number' ? formatTime(m.ts) : ''))
    if (this.isFacilitator && !removed) {
      const author = String(m.authorName || '')
      const remove = el('button', { type: 'button', class: 'privline-remove', 'aria-label': t('private.removeFrom', { name: author }) }, t('private.remove'))
      remove.addEventListener('click', async () => {
        if (await this.confirm(t('private.removeConfirm'), t('private.remove'))) this.redact(current.doc, m.id)
      })
      meta.append(remove)
    }
    const text = removed
      ? el('p', { class: 'privline-text removed' }, t(m.deleted === true ? 'private.deleted' : 'private.removed'))
      : el('p', { class: 'privline-text' }, String(m.text ?? ''))
    return el('li', { class: 'privline-message', 'data-role': String(m.role || ''), 'data-id': m.id }, meta, text)
  }

  async redact (doc, messageId) {
    const ack = await this.ask('mod:redact', { messageId, doc })
    if (!ack || !ack.ok) toast(this.errorText(ack), 'error')
  }

  async send () {
    const current = this.current
    const text = this.input.value.trim()
    if (!current || !text || this.sendButton.disabled) return
    const payload = { text, clientMessageId: randomHex(8) }
    if (this.isFacilitator) payload.to = current.userId
    this.sendButton.disabled = true
    const ack = await this.ask('private:send', payload)
    this.renderForm()
    if (!ack || !ack.ok) {
      toast(this.errorText(ack), 'error')
      return
    }
    if (this.current === current) this.input.value = ''
  }

  errorText (ack) {
    const code = ack && ack.error && ack.error.code
    return ERROR_CODES.has(code) ? t('private.error.' + code) : t('private.error.other')
  }

  // -- state -------------------------------------------------------------------

  /** A new token for the session: the open thread reconnects with it. */
  refreshToken (token) {
    const current = this.current
    if (!current) return
    current.provider.socket.auth = { token }
    current.provider.socket.disconnect()
    current.provider.connect()
  }

  /** The session's role and state: observers have no private line; nothing is sent after the end. */
  setState ({ role, ended, blocked }) {
    this.state = { role, ended, blocked }
    const hidden = role === 'observer' || blocked
    if (hidden && this.current) this.closeThread()
    this.root.hidden = hidden
    this.renderForm()
  }

  renderForm () {
    const off = this.state.ended || this.state.blocked
    this.input.disabled = off
    this.sendButton.disabled = off
  }

  destroy () {
    this.closeThread()
    if (this.listening) {
      const { metaSocket, onMessage, onConnect } = this.listening
      metaSocket.off('private:message', onMessage)
      metaSocket.off('connect', onConnect)
      this.listening = null
    }
  }
}
