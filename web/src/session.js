// A session at /r/<room>: token, providers (board, chat, meta), and the UI.
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { SocketIOProvider } from 'y-socket.io'
import { Board, COLORS, TOOLS, WIDTHS, addsShapes } from './board.js'
import { Chat } from './chat.js'
import { Activities } from './activities.js'
import { PrivateLine } from './private.js'
import { Checkins } from './checkins.js'
import { People } from './people.js'
import { confirmDialog, helpDialog, templateDialog } from './dialogs.js'
import { historyDialog } from './history.js'
import { Facilitation } from './facilitation.js'
import { Breakouts } from './breakouts.js'
import { icon } from './icons.js'
import { ImageStore, bindImageInput } from './images.js'
import { decodeToken, devToken, identityFrom, loadToken, saveToken, clearToken } from './token.js'
import { el, effectiveRole, fetchConfig, parseRoles, roleLabel, roomFromPath, toast, validRoomId } from './util.js'
import { currentTimeZone, locale, setLocale, setTimeZone, t } from './i18n.js'

/** Disconnect reasons after which the server will not let this token back in. */
const BLOCKING = worded('blocking', ['expired_token', 'removed', 'room_deleted', 'invalid_token', 'missing_token', 'wrong_room', 'invalid_name', 'invalid_payload'])

/** Board updates the server refused: the local copy is reloaded from the server. */
const REFUSED = worded('refused', ['board_locked', 'shape_locked', 'session_ended', 'permission_denied', 'schema_violation', 'malformed_update', 'message_too_large', 'document_too_large', 'store_unavailable'])

/**
 * Board updates the server refused for now but takes in the handshake (the
 * answer to its sync-step-1, protocol.md §4, §8): the board connects again
 * and keeps its document, so they go out then. Nothing is lost; no notice.
 */
const RESEND = new Set(['rate_limited', 'pending_limit'])

/**
 * WebSocket close code of a frame larger than the server takes (RFC 6455
 * 1009): the change in it gets no error code, and the provider would send it
 * again on every reconnect. It is handled as `message_too_large` (and a local
 * change over the frame limit is, before it is sent: see maxFrameBytes).
 */
const MESSAGE_TOO_BIG = 1009

/**
 * How long a board reload or reconnect after a refusal waits: at first
 * RESYNC_FIRST_MS; when refusals keep coming back (see resyncBoard,
 * resendBoard), 1 s, then twice as long each time, up to RESYNC_MAX_MS.
 * Reconnects within RESYNC_RUN_MS of each other count as coming back.
 */
const RESYNC_FIRST_MS = 150
const RESYNC_MAX_MS = 30000
const RESYNC_RUN_MS = 15000

/** What `room:state.saving` may be besides 'ok' (protocol.md §11; the words: i18n.js `saving.*`). */
const SAVING_STATES = ['delayed', 'read_only']

/** The board document this page shows (extra boards are `board:<name>`, protocol.md §2). */
const BOARD_DOC = 'board'
/** The chat document's name in room:state `full` (§6.4). */
const CHAT_DOC = 'chat'

/** Banners that say why the board is read-only (renderState), most telling first. */
const READ_ONLY_BANNERS = ['ended', 'observer', 'locked', 'saving-stopped']

const isEmbedded = () => {
  try {
    return window.parent !== window
  } catch {
    return true
  }
}

export async function startSession (root) {
  const room = roomFromPath(location.pathname)
  if (!room || !validRoomId(room)) {
    root.replaceChildren(el('main', { class: 'gate' }, el('h1', {}, t('gate.notRoom')), el('p', {}, t('gate.notRoomText')), el('a', { href: '/' }, t('gate.toLobby'))))
    return
  }
  document.title = room + ' · collab'
  const config = await fetchConfig()
  const embedded = isEmbedded()
  const gate = new TokenGate({ root, room, config, embedded })
  let session = null
  gate.onToken = (entry) => {
    const identity = identityFrom(entry.token, entry)
    if (session && session.sameIdentity(identity)) {
      session.refreshToken(entry.token)
      return
    }
    if (session) session.destroy()
    session = new Session({ root, room, config, entry, identity, embedded, gate })
  }
  gate.start()
}

/** Where the token comes from: sessionStorage, the embedding page, or (dev) a form. */
class TokenGate {
  constructor ({ root, room, config, embedded }) {
    Object.assign(this, { root, room, config, embedded })
    this.onToken = () => {}
    this.waiting = 0
    this.asks = 0
  }

  start () {
    if (this.embedded) {
      window.addEventListener('message', (e) => this.onMessage(e))
      this.showWaiting()
      this.request('start')
      return
    }
    const stored = loadToken(this.room)
    if (stored) {
      this.onToken(stored)
      return
    }
    this.showJoin()
  }

  /** The origin the frame's parent has, if the browser tells and it is allowed. */
  parentOrigin () {
    const allowed = this.config.embedOrigins
    const ancestors = location.ancestorOrigins
    if (ancestors && ancestors.length && allowed.includes(ancestors[0])) return ancestors[0]
    return allowed.length === 1 ? allowed[0] : '*'
  }

  /** Ask the embedding page for a (new) token; repeated until one arrives. */
  request (reason) {
    clearInterval(this.waiting)
    this.asks = 0
    const ask = () => {
      this.asks++
      // The ready message carries no secret; the token answer is checked by origin.
      window.parent.postMessage({ type: 'collab:ready', room: this.room, reason }, this.parentOrigin())
      if (this.asks >= 30) {
        clearInterval(this.waiting)
        if (!this.hasToken) this.showMessage(t('gate.noToken'), t('gate.noTokenText'))
      }
    }
    ask()
    this.waiting = setInterval(ask, 1000)
  }

  onMessage (e) {
    if (e.source !== window.parent || !this.config.embedOrigins.includes(e.origin)) return
    const data = e.data
    if (!data || typeof data !== 'object' || data.type !== 'collab:token' || typeof data.token !== 'string' || !data.token) return
    clearInterval(this.waiting)
    // The platform's language and time zone win over ?lang=, ?tz= and the
    // browser's. Only the first token's count: the session is shown with them,
    // and a later change would leave it half in one language (README, Embedding).
    if (!this.hasToken) {
      if (typeof data.locale === 'string') setLocale(data.locale)
      if (typeof data.timeZone === 'string') setTimeZone(data.timeZone)
    }
    this.hasToken = true
    this.onToken({ token: data.token })
  }

  /** What to do when the token stops working (expired): get a new one if we can. */
  async renew (entry) {
    if (this.embedded) {
      this.request('expired')
      return t('gate.askingToken')
    }
    if (this.config.dev && entry.sub) {
      return null // the session offers a "Rejoin" button
    }
    clearToken(this.room)
    return t('gate.openAgain')
  }

  showWaiting () {
    this.showMessage(t('common.connecting'), t('gate.waiting'))
  }

  showMessage (title, text) {
    this.root.replaceChildren(el('main', { class: 'gate' }, el('h1', {}, title), el('p', {}, text)))
  }

  showJoin () {
    if (!this.config.dev) {
      this.root.replaceChildren(el('main', { class: 'gate' },
        el('h1', {}, t('gate.fromPlatform')),
        el('p', {}, t('gate.fromPlatformText')),
        el('p', {}, t('gate.room'), el('code', {}, this.room))))
      return
    }
    const name = el('input', { id: 'join-name', required: true, maxlength: 64, autocomplete: 'nickname' })
    try { name.value = localStorage.getItem('collab:name') || '' } catch {}
    const role = el('select', { id: 'join-role' },
      el('option', { value: 'participant' }, t('role.participant')),
      el('option', { value: 'facilitator' }, t('role.facilitator')),
      el('option', { value: 'observer' }, t('role.observer')))
    const status = el('p', { class: 'form-status', role: 'alert' })
    const form = el('form', { class: 'lobby-form' },
      el('label', { for: 'join-name' }, t('common.yourName')), name,
      el('label', { for: 'join-role' }, t('common.role')), role,
      el('button', { type: 'submit', class: 'primary' }, t('common.joinSession')), status)
    form.addEventListener('submit', async (e) => {
      e.preventDefault()
      if (!name.value.trim()) {
        status.textContent = t('common.enterName')
        return
      }
      try {
        const entry = await devToken(this.room, name.value.trim(), role.value)
        saveToken(this.room, entry)
        try { localStorage.setItem('collab:name', name.value.trim()) } catch {}
        this.onToken(entry)
      } catch (err) {
        status.textContent = t('common.couldNotJoin', { message: err.message })
      }
    })
    this.root.replaceChildren(el('main', { class: 'gate lobby' },
      el('h1', {}, t('gate.join'), el('code', {}, this.room)),
      el('p', { class: 'notice notice-warn' }, t('gate.devNotice')),
      form))
    name.focus()
  }
}

class Session {
  constructor ({ root, room, config, entry, identity, embedded, gate }) {
    Object.assign(this, { root, room, config, entry, identity, embedded, gate })
    this.token = entry.token
    this.roomState = { title: '', locked: false, ended: false, muted: [], removed: [], roles: {}, full: [], saving: 'ok' }
    // No toast for the state a page finds when it joins, only for changes after.
    this.stateSeen = false
    // The role the server last told this page it has (room:state), once re-announced.
    this.announcedRole = null
    this.status = { board: 'connecting', chat: 'connecting', meta: 'connecting' }
    this.synced = false
    this.everConnected = false
    this.blocked = null
    this.destroyed = false
    this.panelOpen = !window.matchMedia('(max-width: 600px)').matches
    // The room's pictures, fetched with this session's token (images.js).
    this.images = new ImageStore({ room, token: this.token, maxBytes: config.maxImageBytes })
    this.build()
    this.connect()
    this.bindKeys()
    this.bindNetwork()
  }

  sameIdentity (identity) {
    return identity.id === this.identity.id && identity.role === this.identity.role && identity.name === this.identity.name
  }

  get isFacilitator () {
    return this.identity.role === 'facilitator'
  }

  /** This user's role in the room: the token's, or a facilitator's override (§6.3 `mod:role`). */
  get role () {
    return effectiveRole(this.identity.role, this.identity.id, this.roomState.roles)
  }

  // -- providers ---------------------------------------------------------------

  connect () {
    const auth = { token: this.token }
    this.chatDoc = new Y.Doc()
    this.metaDoc = new Y.Doc()
    this.board = this.makeBoardProvider()
    // The chat and meta documents are server-written: no awareness of ours there.
    const quiet = (doc) => {
      const a = new Awareness(doc)
      a.setLocalState(null)
      return a
    }
    this.chatProvider = new SocketIOProvider(location.origin, this.room + '/chat', this.chatDoc, { disableBc: true, auth: { ...auth }, awareness: quiet(this.chatDoc) })
    this.metaProvider = new SocketIOProvider(location.origin, this.room + '/meta', this.metaDoc, { disableBc: true, auth: { ...auth }, awareness: quiet(this.metaDoc) })
    this.facilitation.attachMeta(this.metaDoc, this.metaProvider)
    this.breakouts.attachMeta(this.metaDoc)
    this.watch(this.chatProvider, 'chat')
    this.watch(this.metaProvider, 'meta')
    this.chat.attach(this.chatDoc, this.chatProvider.socket)
    this.activities.attach(this.metaDoc, this.metaProvider.socket)
    this.privateLine.attach(this.metaProvider.socket)
    this.checkins.attach(this.metaDoc, this.metaProvider.socket)
    this.chatProvider.socket.on('connect', () => this.chat.retryPending())
    this.metaDoc.on('update', () => this.readMeta())
  }

  makeBoardProvider () {
    const doc = new Y.Doc()
    const provider = new SocketIOProvider(location.origin, this.room, doc, { disableBc: true, auth: { token: this.token } })
    this.boardDoc = doc
    // Whether this page changed the board since it was (re)loaded: a refusal
    // without such a change is not the user's doing (resyncBoard).
    this.changedSinceLoad = false
    doc.on('update', (update, origin) => {
      if (origin === provider || provider !== this.board) return
      this.changedSinceLoad = true
      // A change larger than a WebSocket frame may be gets no code: the
      // server closes the connection (1009, or 1006 while the frame is still
      // being sent) and the provider would send it again on every reconnect.
      if (update.byteLength > maxFrameBytes(provider)) this.resyncBoard(REFUSED('message_too_large'))
    })
    this.watch(provider, 'board')
    provider.on('sync', (synced) => {
      if (provider !== this.board) return
      this.synced = synced
      this.renderStatus()
    })
    this.canvas.attach(doc, provider.awareness)
    this.people.attach(provider.awareness)
    this.facilitation.attachBoard(provider)
    return provider
  }

  /** Connection state, room state and errors of one provider's socket. */
  watch (provider, name) {
    const socket = provider.socket
    provider.on('status', ({ status }) => {
      if (!this.isCurrent(provider, name)) return
      this.status[name] = status
      if (status === 'connected') this.everConnected = true
      this.renderStatus()
    })
    socket.on('room:state', (state) => this.applyRoomState(state, true))
    socket.on('collab:error', (err) => this.onServerError(provider, name, err))
    socket.on('connect_error', (err) => {
      if (!this.isCurrent(provider, name)) return
      const code = err && err.data && err.data.code
      if (!code) {
        this.renderStatus()
        return
      }
      if (code === 'room_unavailable') {
        // The server is starting or stopping: try again shortly.
        setTimeout(() => { if (this.isCurrent(provider, name) && !this.blocked) provider.connect() }, 2000)
        this.renderStatus()
        return
      }
      this.block(code, (err.data && err.data.message) || err.message)
    })
    socket.on('disconnect', (reason, details) => {
      if (!this.isCurrent(provider, name)) return
      const context = details && details.context
      if (name === 'board' && context && context.code === MESSAGE_TOO_BIG) {
        this.resyncBoard(REFUSED('message_too_large'))
      }
      this.pauseWhileOffline()
      this.renderStatus()
    })
  }

  /**
   * While the browser is offline, stop the sockets' reconnection attempts (each
   * would fail); when it is back online, connect them again. Edits made
   * meanwhile stay in the documents and sync on reconnect (protocol.md §4).
   */
  bindNetwork () {
    this.onOffline = () => this.pauseWhileOffline()
    this.onOnline = () => {
      if (this.blocked || this.destroyed) return
      for (const p of this.providers()) if (!p.socket.connected && !p.socket.active) p.connect()
      this.renderStatus()
    }
    window.addEventListener('offline', this.onOffline)
    window.addEventListener('online', this.onOnline)
  }

  pauseWhileOffline () {
    if (navigator.onLine || this.destroyed) return
    for (const p of this.providers()) if (!p.socket.connected) p.socket.disconnect()
  }

  isCurrent (provider, name) {
    if (this.destroyed) return false
    return provider === (name === 'board' ? this.board : name === 'chat' ? this.chatProvider : this.metaProvider)
  }

  providers () {
    return [this.board, this.chatProvider, this.metaProvider].filter(Boolean)
  }

  onServerError (provider, name, err) {
    if (!this.isCurrent(provider, name) || !err || typeof err !== 'object') return
    const code = String(err.code || 'internal_error')
    if (err.event === 'disconnect') {
      this.block(code, err.message)
      return
    }
    const update = err.event === 'sync-update' || err.event === 'sync-step-1'
    if (name === 'board' && update && REFUSED(code)) {
      this.resyncBoard(REFUSED(code))
      return
    }
    if (name === 'board' && update && RESEND.has(code)) {
      this.resendBoard()
      return
    }
    toast(describe(code, err.message), 'error')
  }

  /**
   * The server refused a board change: reload the board as the server has it
   * (a new document; what it refused is dropped), with one notice. A refusal
   * when this page has changed nothing since the board was loaded is not the
   * user's doing but something that keeps being refused: the reload then
   * waits longer each time (up to RESYNC_MAX_MS), without a notice, so it is
   * never a loop.
   */
  resyncBoard (message) {
    if (this.resyncTimer) return
    const repeat = !this.changedSinceLoad
    this.repeats = repeat ? (this.repeats || 0) + 1 : 0
    if (!repeat) toast(message, 'warn')
    const delay = repeat ? Math.min(RESYNC_MAX_MS, 1000 * 2 ** (this.repeats - 1)) : RESYNC_FIRST_MS
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = 0
      if (this.destroyed || this.blocked) return
      const old = this.board
      this.board = null
      this.synced = false
      destroyProvider(old)
      old.doc.destroy()
      this.board = this.makeBoardProvider()
      this.renderStatus()
    }, delay)
  }

  /**
   * The server refused board changes it takes in the handshake (RESEND):
   * connect the board again, with the same document, so they go out. Such
   * reconnects within RESYNC_RUN_MS of each other wait longer each time.
   */
  resendBoard () {
    if (this.resyncTimer) return
    const now = Date.now()
    this.resends = now - (this.lastResendAt || 0) < RESYNC_RUN_MS ? (this.resends || 0) + 1 : 0
    this.lastResendAt = now
    const delay = this.resends ? Math.min(RESYNC_MAX_MS, 1000 * 2 ** (this.resends - 1)) : RESYNC_FIRST_MS
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = 0
      if (this.destroyed || this.blocked || !this.board) return
      this.board.disconnect()
      this.board.connect()
    }, delay)
  }

  /** A new token for the same user (a refresh): reconnect with it. */
  refreshToken (token) {
    this.token = token
    this.entry = { ...this.entry, token }
    this.images.setToken(token)
    const wasBlocked = this.blocked
    this.unblock()
    for (const p of this.providers()) {
      p.socket.auth = { token }
      p.socket.disconnect()
      p.connect()
    }
    this.privateLine.refreshToken(token)
    if (wasBlocked) toast(t('state.reconnected'), 'info')
  }

  readMeta () {
    const prefix = BOARD_DOC + '/'
    const locks = [...this.metaDoc.getMap('shapeLocks').entries()]
      .filter(([key, on]) => on === true && key.startsWith(prefix)).map(([key]) => key.slice(prefix.length))
    if (this.canvas) this.canvas.setLocked(locks, !this.isFacilitator)
    const meta = this.metaDoc.getMap('meta')
    const flagged = (map) => [...map.entries()].filter(([, v]) => v === true).map(([k]) => k).sort()
    this.applyRoomState({
      title: meta.get('title') || '',
      locked: meta.get('locked') === true,
      ended: meta.get('ended') === true,
      muted: flagged(this.metaDoc.getMap('muted')),
      removed: flagged(this.metaDoc.getMap('removed')),
      roles: parseRoles(Object.fromEntries(this.metaDoc.getMap('roles').entries())),
      // Only room:state says which documents are full, and whether saving
      // works; the meta document does not.
      full: this.roomState.full,
      saving: this.roomState.saving
    })
  }

  /** The room's state, from room:state (`fromServer`) or the meta document. */
  applyRoomState (state, fromServer = false) {
    if (!state || typeof state !== 'object' || this.destroyed) return
    const prev = this.roomState
    const prevRole = this.role
    const seen = this.stateSeen
    this.stateSeen = true
    this.roomState = {
      title: typeof state.title === 'string' ? state.title : '',
      locked: state.locked === true,
      ended: state.ended === true,
      muted: Array.isArray(state.muted) ? state.muted.map(String) : [],
      removed: Array.isArray(state.removed) ? state.removed.map(String) : [],
      roles: parseRoles(state.roles),
      full: Array.isArray(state.full) ? state.full.map(String) : [],
      saving: SAVING_STATES.includes(state.saving) ? state.saving : 'ok'
    }
    const now = this.roomState
    const me = this.identity.id
    const role = this.role
    if (seen && prevRole !== role && !now.ended) {
      toast(t(role === 'observer' ? 'state.madeObserver' : 'state.madeParticipant'), 'info')
    }
    // A lock is told by its banner (announced too): only the unlock, which
    // takes the banner away, gets a toast.
    if (prev.locked && !now.locked && !now.ended && !this.isFacilitator) {
      toast(t('state.unlocked'), 'info')
    }
    if (!prev.ended && now.ended) toast(t('state.ended'), 'info')
    if (prev.muted.includes(me) !== now.muted.includes(me)) {
      toast(t(now.muted.includes(me) ? 'state.mutedYou' : 'state.unmutedYou'), 'info')
    }
    if (prev.saving !== 'ok' && now.saving === 'ok') {
      toast(t('saving.back'), 'info')
      this.chat.retryPending(true)
    }
    this.renderState()
    // The server stamps a connection with its role when it connects: only a
    // change after that needs our presence sent again.
    if (fromServer && this.announcedRole === null) this.announcedRole = role
    else if (fromServer && role !== this.announcedRole) this.reannounce(role)
  }

  /**
   * Send our presence again after the server changed our role: it stamps every
   * awareness state with the connection's current role (§3.1, §6.3), so the
   * others see the new role on our cursor and in their list of people.
   */
  reannounce (role) {
    const awareness = this.board && this.board.awareness
    if (!awareness || !this.board.socket.connected) return
    this.announcedRole = role
    awareness.setLocalState({ ...(awareness.getLocalState() || {}) })
  }

  block (code, message) {
    if (this.blocked) return
    if (this.breakouts.leaving(code)) return
    this.blocked = code
    this.closeContextMenu()
    for (const p of this.providers()) {
      if (code !== 'expired_token') p.socket.disconnect()
    }
    this.renderState()
    this.renderStatus()
    const text = BLOCKING(code) || describe(code, message)
    const actions = el('div', { class: 'dialog-actions' })
    const body = el('p', { class: 'blocker-detail' })
    if (code === 'expired_token') {
      this.gate.renew(this.entry).then((note) => {
        if (note) body.textContent = note
        else {
          const rejoin = el('button', { type: 'button', class: 'primary' }, t('blocking.rejoin'))
          rejoin.addEventListener('click', async () => {
            rejoin.disabled = true
            try {
              const fresh = await devToken(this.room, this.identity.name, this.identity.role, this.identity.id)
              saveToken(this.room, fresh)
              this.refreshToken(fresh.token)
            } catch (err) {
              body.textContent = t('blocking.couldNotRejoin', { message: err.message })
              rejoin.disabled = false
            }
          })
          actions.append(rejoin)
        }
      })
    } else {
      if (['invalid_token', 'missing_token', 'wrong_room'].includes(code)) clearToken(this.room)
      body.textContent = code === 'removed' ? t('blocking.removedText') : t('blocking.closed', { code })
      if (this.config.dev && !this.embedded) actions.append(el('a', { class: 'button', href: '/?room=' + encodeURIComponent(this.room) }, t('blocking.toLobby')))
    }
    this.blocker.replaceChildren(el('div', { class: 'blocker-card', role: 'alertdialog', 'aria-modal': 'true', 'aria-labelledby': 'blocker-title', 'data-code': code },
      el('h2', { id: 'blocker-title' }, text), body, actions))
    // Removed or deleted: the content is not theirs to see any more.
    this.blocker.classList.toggle('opaque', code === 'removed' || code === 'room_deleted')
    this.blocker.hidden = false
  }

  unblock () {
    this.blocked = null
    this.blocker.hidden = true
    this.blocker.replaceChildren()
    this.renderState()
  }

  destroy () {
    this.destroyed = true
    clearTimeout(this.resyncTimer)
    window.removeEventListener('keydown', this.keydown)
    window.removeEventListener('keyup', this.keyup)
    window.removeEventListener('offline', this.onOffline)
    window.removeEventListener('online', this.onOnline)
    this.canvas.detach()
    this.activities.detach()
    this.privateLine.destroy()
    this.facilitation.destroy()
    this.breakouts.destroy()
    this.checkins.destroy()
    this.imageInput.unbind()
    this.images.clear()
    for (const p of this.providers()) destroyProvider(p)
  }

  // -- moderation and export ---------------------------------------------------------

  /** A moderation event (§6.3); `messages` words its error codes for this action. */
  async moderate (event, payload, messages = () => undefined) {
    const socket = [this.board, this.chatProvider, this.metaProvider].map((p) => p && p.socket).find((s) => s && s.connected)
    if (!socket) {
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
    if (!ack || !ack.ok) {
      const err = (ack && ack.error) || {}
      toast(messages(err.code) || describe(err.code, err.message), 'error')
      return null
    }
    if (ack.state) this.applyRoomState(ack.state)
    return ack
  }

  async exportRoom (format) {
    const ext = { json: 'json', markdown: 'md', svg: 'svg' }[format]
    // The transcript's times are the viewer's local times (the server says UTC otherwise).
    const query = new URLSearchParams({ format })
    if (format === 'markdown') query.set('tz', currentTimeZone())
    try {
      const res = await fetch('/api/rooms/' + encodeURIComponent(this.room) + '/export?' + query, {
        headers: { Authorization: 'Bearer ' + this.token },
        cache: 'no-store'
      })
      if (!res.ok) {
        const body = await res.json().catch(() => ({}))
        const code = body.error && typeof body.error.code === 'string' ? body.error.code : ''
        const refusal = this.exportRefusal(res.status, code)
        if (refusal) {
          // An instruction for the platform's people: leave it up long enough to read.
          toast(refusal, 'error', 15000)
          return
        }
        throw new Error((body.error && body.error.message) || t('common.http', { status: res.status }))
      }
      const blob = await res.blob()
      const url = URL.createObjectURL(blob)
      const a = el('a', { href: url, download: this.room.replace(/\//g, '_') + '.' + ext, hidden: true })
      document.body.append(a)
      a.click()
      a.remove()
      setTimeout(() => URL.revokeObjectURL(url), 10000)
      toast(t('export.downloaded', { format: ext.toUpperCase() }), 'info')
    } catch (err) {
      toast(t('export.failed', { message: err.message }), 'error')
    }
  }

  /** The shape menu of a secondary click: facilitators only (redact, delete). */
  openContextMenu ({ ids, x, y }) {
    this.closeContextMenu()
    if (!this.isFacilitator || this.blocked || !ids.length) return
    const items = []
    if (this.canvas.writable) {
      const del = el('button', { type: 'button', role: 'menuitem' }, icon('trash', 16), t('shapes.delete', { count: ids.length }))
      del.addEventListener('click', () => {
        this.closeContextMenu()
        this.canvas.selection = new Set(ids)
        this.canvas.deleteSelection()
      })
      items.push(del)
    }
    const allLocked = ids.every((id) => this.canvas.locked.has(id))
    const lock = el('button', { type: 'button', role: 'menuitem' }, icon(allLocked ? 'unlock' : 'lock', 16), t(allLocked ? 'shapes.unlockItem' : 'shapes.lockItem', { count: ids.length }))
    lock.addEventListener('click', () => {
      this.closeContextMenu()
      this.lockShapes(ids, !allLocked)
    })
    items.push(lock)
    const redact = el('button', { type: 'button', role: 'menuitem', class: 'danger' }, icon('redact', 16), t('shapes.redactItem', { count: ids.length }))
    redact.addEventListener('click', () => {
      this.closeContextMenu()
      this.redactShapes(ids)
    })
    items.push(redact)
    this.contextMenu.replaceChildren(...items)
    this.contextMenu.hidden = false
    // Inside the window, next to the pointer.
    const w = this.contextMenu.offsetWidth
    const h = this.contextMenu.offsetHeight
    this.contextMenu.style.left = Math.max(4, Math.min(x, window.innerWidth - w - 4)) + 'px'
    this.contextMenu.style.top = Math.max(4, Math.min(y, window.innerHeight - h - 4)) + 'px'
    items[0].focus()
  }

  closeContextMenu () {
    if (this.contextMenu.hidden) return
    this.contextMenu.hidden = true
    this.contextMenu.replaceChildren()
  }

  /**
   * Redact shapes (`mod:redact-shape`, §6.3): unlike a delete, which is an
   * ordinary change anyone's undo can take back, the server erases each shape
   * and all it held from the board's history and storage for good.
   */
  async redactShapes (ids) {
    if (!this.isFacilitator || !ids.length) return
    const ok = await confirmDialog(
      t('shapes.redactConfirm', { count: ids.length }),
      t('shapes.redact', { count: ids.length }))
    if (!ok) return
    let done = 0
    for (const shapeId of ids) {
      if (await this.moderate('mod:redact-shape', { shapeId, doc: BOARD_DOC }, REDACT_SHAPE_ERRORS)) done++
      else break
    }
    if (done) {
      toast(t('shapes.redacted', { count: done }), 'info')
    }
  }

  /** Why the server refused this page's token for an export (§10.1), in words; '' if not known. */
  exportRefusal (status, code) {
    const claim = (decodeToken(this.token) || {}).room
    if (code === 'permission_denied') {
      if (typeof claim === 'string' && claim.endsWith('/*')) {
        return t('export.wildcard', { scope: claim.slice(0, -1), room: this.room })
      }
      return t('export.needsFacilitator')
    }
    if (code === 'wrong_room') return t('export.wrongRoom')
    if (code === 'removed') return t('export.removed')
    if (code === 'revoked') return t('export.revoked')
    if (status === 401) return t('export.expired')
    return ''
  }

  // -- UI ----------------------------------------------------------------------------

  build () {
    const user = this.identity
    this.canvas = new Board({
      user,
      images: this.images,
      onChange: () => this.renderTools(),
      onReadOnlyAttempt: () => this.readOnlyNotice(),
      onFullAttempt: () => toast(t('board.full'), 'warn'),
      onLockedAttempt: () => this.lockedNotice(),
      onContextMenu: (info) => this.openContextMenu(info)
    })
    this.chat = new Chat({
      user,
      onUnread: (n) => this.renderUnread(n),
      redact: (messageId) => this.moderate('mod:redact', { messageId }),
      confirm: confirmDialog,
      // One's own recent messages (§6.6 `chat:delete`), within the server's window.
      deleteOwn: (messageId) => this.moderate('chat:delete', { messageId }, DELETE_OWN_ERRORS),
      deleteWindowMs: this.config.chatDeleteWindowS * 1000
    })
    this.people = new People({
      user,
      moderate: (e, p) => this.moderate(e, p, e === 'mod:role' ? ROLE_ERRORS : undefined),
      confirm: confirmDialog
    })
    // The private line to the facilitators (§6.8: private.js).
    this.privateLine = new PrivateLine({
      room: this.room,
      user,
      isFacilitator: this.isFacilitator,
      socket: () => this.providers().map((p) => p.socket).find((s) => s.connected) || null,
      token: () => this.token,
      confirm: confirmDialog
    })
    // Raise hand, reactions, the notice (§6.6: activities.js).
    this.activities = new Activities({
      room: this.room, user, people: this.people, cursorLayer: () => this.canvas.cursorLayer, moderate: (...args) => this.moderate(...args)
    })
    // Check-ins and polls (checkins.js; protocol.md §6.9).
    this.checkins = new Checkins({ room: this.room, user, moderate: (...args) => this.moderate(...args) })
    // The timer, follow me, bring here, the pointer (facilitation.js; protocol.md §6.6).
    this.facilitation = new Facilitation({ canvas: this.canvas, user, isFacilitator: this.isFacilitator, moderate: (...args) => this.moderate(...args) })
    // Breakout groups (breakouts.js; protocol.md §6.8).
    this.breakouts = new Breakouts({ room: this.room, user, entry: this.entry, isFacilitator: this.isFacilitator, clock: this.facilitation.clock, moderate: (...args) => this.moderate(...args) })

    // Header
    this.titleEl = el('h1', { class: 'session-title' }, this.room)
    this.roomIdEl = el('span', { class: 'room-id', hidden: true }, this.room)
    this.statusEl = el('div', { class: 'conn-status', role: 'status', 'aria-live': 'polite', 'data-state': 'connecting' },
      el('span', { class: 'dot', 'aria-hidden': 'true' }), el('span', { class: 'conn-text' }, t('common.connecting')))
    this.unreadEl = el('span', { class: 'badge', hidden: true, 'aria-hidden': 'true' })
    this.panelButton = el('button', { type: 'button', class: 'icon-button panel-toggle', 'aria-controls': 'side-panel' }, icon('chat'), this.unreadEl)
    this.panelButton.addEventListener('click', () => this.togglePanel())
    const help = el('button', { type: 'button', class: 'icon-button', 'aria-label': t('ui.help'), title: t('ui.helpTitle'), 'aria-haspopup': 'dialog' }, icon('help'))
    help.addEventListener('click', () => helpDialog())

    this.facilitatorBar = el('div', { class: 'facilitator-bar', role: 'group', 'aria-label': t('ui.facilitatorControls'), hidden: !this.isFacilitator })
    if (this.isFacilitator) {
      this.lockButton = el('button', { type: 'button', class: 'tool-button labeled' })
      this.lockButton.addEventListener('click', () => this.moderate('mod:lock', { locked: !this.roomState.locked }))
      this.endButton = el('button', { type: 'button', class: 'tool-button labeled danger', 'aria-label': t('ui.endLabel') }, icon('end', 18), el('span', {}, t('ui.end')))
      this.endButton.addEventListener('click', async () => {
        if (await confirmDialog(t('ui.endConfirm'), t('ui.endSession'))) {
          this.moderate('mod:end', {})
        }
      })
      const exportMenu = el('div', { class: 'menu', role: 'menu', hidden: true, id: 'export-menu', 'aria-label': t('export.menu') })
      const exportButton = el('button', { type: 'button', class: 'tool-button labeled', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': 'export-menu', 'aria-label': t('export.button') }, icon('download', 18), el('span', {}, t('export.label')))
      const closeMenu = () => { exportMenu.hidden = true; exportButton.setAttribute('aria-expanded', 'false') }
      for (const format of ['json', 'markdown', 'svg']) {
        const item = el('button', { type: 'button', role: 'menuitem', 'data-format': format }, t('export.' + format))
        item.addEventListener('click', () => { closeMenu(); this.exportRoom(format) })
        exportMenu.append(item)
      }
      const openMenu = (item) => {
        exportMenu.hidden = false
        exportButton.setAttribute('aria-expanded', 'true')
        item.focus()
      }
      exportButton.addEventListener('click', () => {
        if (exportMenu.hidden) openMenu(exportMenu.firstChild)
        else closeMenu()
      })
      // ArrowDown or ArrowUp on the button opens the menu at its first or last item.
      exportButton.addEventListener('keydown', (e) => {
        if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return
        e.preventDefault()
        e.stopPropagation()
        openMenu(e.key === 'ArrowDown' ? exportMenu.firstChild : exportMenu.lastChild)
      })
      exportMenu.addEventListener('keydown', (e) => {
        if (e.key === 'Escape' || e.key === 'Tab') {
          if (e.key === 'Escape') e.preventDefault()
          e.stopPropagation()
          closeMenu()
          if (e.key === 'Escape') exportButton.focus()
          return
        }
        if (menuKey(exportMenu, e)) e.stopPropagation()
      })
      document.addEventListener('pointerdown', (e) => { if (!exportMenu.hidden && !exportMenu.parentNode.contains(e.target)) closeMenu() })
      this.templateButton = el('button', { type: 'button', class: 'tool-button labeled', 'aria-label': t('templates.label'), title: t('templates.label') },
        icon('template', 18), el('span', {}, t('templates.button')))
      this.templateButton.addEventListener('click', () => this.chooseTemplate())
      this.historyButton = el('button', { type: 'button', class: 'tool-button labeled', 'aria-label': t('history.label'), title: t('history.label') },
        icon('history', 18), el('span', {}, t('history.button')))
      this.historyButton.addEventListener('click', () => historyDialog({
        metaDoc: this.metaDoc, doc: BOARD_DOC, moderate: (...args) => this.moderate(...args), confirm: confirmDialog
      }))
      this.facilitatorBar.append(this.lockButton, this.templateButton, this.historyButton, el('div', { class: 'menu-wrap' }, exportButton, exportMenu), this.endButton)
    }

    this.roleBadge = el('span', { class: 'role-badge role-' + user.role }, roleLabel(user.role))
    const who = el('span', { class: 'whoami' }, user.name, ' · ', this.roleBadge)
    const header = el('header', { class: 'topbar' },
      el('div', { class: 'title-wrap' }, this.titleEl, this.roomIdEl),
      this.statusEl,
      el('div', { class: 'topbar-actions' }, this.facilitatorBar, who, help, this.panelButton))

    this.banners = el('div', { class: 'banners', 'aria-live': 'polite' })

    // Tools
    this.toolButtons = new Map()
    const tools = el('div', { class: 'toolbar', role: 'toolbar', 'aria-label': t('ui.tools'), 'aria-orientation': 'vertical' })
    for (const tool of TOOLS) {
      const label = t('tool.' + tool.id)
      const b = el('button', {
        type: 'button', class: 'tool-button', 'data-tool': tool.id, 'aria-label': label, title: t('ui.toolTitle', { label, key: tool.key.toUpperCase() }), 'aria-keyshortcuts': tool.key.toUpperCase(), 'aria-pressed': 'false'
      }, icon(tool.icon))
      b.addEventListener('click', () => this.canvas.setTool(tool.id))
      this.toolButtons.set(tool.id, b)
      tools.append(b)
    }
    // Images (protocol.md §10.6): a file, a paste or a drop; not for observers (renderTools).
    this.imageButton = el('button', { type: 'button', class: 'tool-button', 'data-action': 'image', 'aria-label': t('image.add'), title: t('image.addTitle') }, icon('image'))
    this.imageInput = bindImageInput({
      store: this.images,
      board: this.canvas,
      button: this.imageButton,
      canAdd: () => {
        if (!this.canvas.writable) this.readOnlyNotice()
        else if (this.canvas.full) toast(t('board.full'), 'warn')
        return this.canvas.writable && !this.canvas.full
      }
    })
    tools.append(this.imageButton, this.imageInput.input)
    this.undoButton = el('button', { type: 'button', class: 'tool-button', 'aria-label': t('ui.undo'), title: t('ui.undoTitle'), 'aria-keyshortcuts': 'Control+Z' }, icon('undo'))
    this.redoButton = el('button', { type: 'button', class: 'tool-button', 'aria-label': t('ui.redo'), title: t('ui.redoTitle'), 'aria-keyshortcuts': 'Control+Shift+Z' }, icon('redo'))
    this.deleteButton = el('button', { type: 'button', class: 'tool-button', 'aria-label': t('ui.delete'), title: t('ui.deleteTitle'), 'aria-keyshortcuts': 'Delete' }, icon('trash'))
    this.undoButton.addEventListener('click', () => this.canvas.undoLast())
    this.redoButton.addEventListener('click', () => this.canvas.redoLast())
    this.deleteButton.addEventListener('click', () => this.canvas.deleteSelection())
    tools.append(el('span', { class: 'separator', role: 'separator' }), this.undoButton, this.redoButton, this.deleteButton)

    // Style
    this.colorButtons = COLORS.map((c) => {
      const b = el('button', { type: 'button', class: 'swatch', 'aria-label': t('ui.colour', { name: t('colour.' + c.name) }), title: t('colour.' + c.name), 'data-color': c.value, style: '--swatch:' + c.value, 'aria-pressed': 'false' })
      b.addEventListener('click', () => this.canvas.setStyle({ color: c.value }))
      return b
    })
    this.widthButtons = WIDTHS.map((w) => {
      const b = el('button', { type: 'button', class: 'width-button', 'aria-label': t('ui.stroke', { name: t('stroke.' + w.name).toLocaleLowerCase() }), title: t('ui.strokeTitle', { name: t('stroke.' + w.name) }), 'data-width': w.value, 'aria-pressed': 'false' },
        el('span', { class: 'width-sample', style: 'height:' + w.value + 'px' }))
      b.addEventListener('click', () => this.canvas.setStyle({ width: w.value }))
      return b
    })
    this.fillButton = el('button', { type: 'button', class: 'tool-button small', 'aria-label': t('ui.fill'), title: t('ui.fillTitle'), 'aria-pressed': 'false' }, icon('fill', 16))
    this.fillButton.addEventListener('click', () => this.canvas.setStyle({ fill: !this.canvas.style.fill }))
    // On a narrow board the stroke controls fold into a menu, so the bar stays one row (app.css).
    this.strokeMenu = el('div', { class: 'stroke-group', id: 'stroke-menu', role: 'group', 'aria-label': t('ui.strokeGroup') }, ...this.widthButtons, this.fillButton)
    this.strokeToggle = el('button', {
      type: 'button', class: 'tool-button small stroke-toggle', 'aria-label': t('ui.strokeToggle'), title: t('ui.strokeToggle'), 'aria-expanded': 'false', 'aria-controls': 'stroke-menu'
    }, this.strokeSample = el('span', { class: 'width-sample' }))
    this.strokeToggle.addEventListener('click', () => this.toggleStrokeMenu())
    this.strokeMenu.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.strokeToggle.getAttribute('aria-expanded') === 'true') {
        e.stopPropagation()
        this.toggleStrokeMenu(false)
        this.strokeToggle.focus()
      }
    })
    document.addEventListener('pointerdown', (e) => {
      if (!this.stylebar.contains(e.target)) this.toggleStrokeMenu(false)
    })
    this.stylebar = el('div', { class: 'stylebar', role: 'toolbar', 'aria-label': t('ui.style') },
      ...this.colorButtons, el('span', { class: 'separator' }), this.strokeToggle, this.strokeMenu)

    // Zoom
    this.zoomLabel = el('button', { type: 'button', class: 'zoom-label', 'aria-label': t('ui.zoomReset'), title: t('ui.zoomResetTitle') }, '100%')
    const zoomOut = el('button', { type: 'button', class: 'icon-button', 'aria-label': t('ui.zoomOut'), title: t('ui.zoomOutTitle') }, icon('minus', 18))
    const zoomIn = el('button', { type: 'button', class: 'icon-button', 'aria-label': t('ui.zoomIn'), title: t('ui.zoomInTitle') }, icon('plus', 18))
    const fit = el('button', { type: 'button', class: 'icon-button', 'aria-label': t('ui.fit'), title: t('ui.fitTitle') }, icon('fit', 18))
    zoomOut.addEventListener('click', () => this.canvas.zoomBy(1 / 1.25))
    zoomIn.addEventListener('click', () => this.canvas.zoomBy(1.25))
    this.zoomLabel.addEventListener('click', () => this.canvas.resetZoom())
    fit.addEventListener('click', () => this.canvas.fit())
    const zoombar = el('div', { class: 'zoombar', role: 'toolbar', 'aria-label': t('ui.zoom') }, zoomOut, this.zoomLabel, zoomIn, fit)

    // What a facilitator can do with the selected shapes besides the tools: redact them.
    this.redactButton = el('button', {
      type: 'button', class: 'tool-button labeled danger', 'aria-label': t('ui.redactLabel'), title: t('ui.redactTitle')
    }, icon('redact', 18), el('span', {}, t('ui.redact')))
    this.redactButton.addEventListener('click', () => this.redactShapes([...this.canvas.selection]))
    this.lockShapesButton = el('button', { type: 'button', class: 'tool-button labeled', 'data-action': 'lock-shapes' })
    this.lockShapesButton.addEventListener('click', () => {
      const ids = [...this.canvas.selection]
      this.lockShapes(ids, !ids.every((id) => this.canvas.locked.has(id)))
    })
    this.selectionBar = el('div', { class: 'selectionbar', role: 'toolbar', 'aria-label': t('ui.selection'), hidden: true }, this.lockShapesButton, this.redactButton)
    this.contextMenu = el('div', { class: 'menu context-menu', role: 'menu', 'aria-label': t('ui.shapeActions'), hidden: true })
    this.contextMenu.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' || e.key === 'Tab') {
        e.preventDefault()
        e.stopPropagation()
        this.closeContextMenu()
        this.canvas.svg.focus({ preventScroll: true })
      } else if (menuKey(this.contextMenu, e)) e.stopPropagation()
    })
    document.addEventListener('pointerdown', (e) => { if (!this.contextMenu.hidden && !this.contextMenu.contains(e.target)) this.closeContextMenu() })

    const boardArea = el('div', { class: 'board-area' }, this.canvas.root, this.stylebar, zoombar, this.selectionBar,
      el('div', { class: 'board-bars' }, this.activities.bar, this.facilitation.bar, this.checkins.openButton, this.breakouts.bar), ...this.facilitation.elements, ...this.breakouts.elements,
      this.checkins.card)
    this.panel = el('aside', { class: 'side-panel', id: 'side-panel', 'aria-label': t('ui.panel') },
      this.people.root,
      el('h2', { class: 'chat-title', id: 'chat-title' }, t('chat.title')),
      this.chat.root,
      this.privateLine.root)
    this.workspace = el('div', { class: 'workspace' }, tools, boardArea, this.panel)
    this.blocker = el('div', { class: 'blocker', hidden: true })
    // The session notice (§6.6) above the state's banners, in one row of the page's grid.
    const banners = el('div', { class: 'banners-wrap' }, this.activities.noticeBanner, this.banners)
    this.root.replaceChildren(el('div', { class: 'session' }, header, banners, this.workspace), this.contextMenu, this.blocker)
    this.renderPanel()
    this.renderState()
    this.renderStatus()
  }

  /** Open or close the stroke menu of a narrow board's style bar (`open`: toggle when omitted). */
  toggleStrokeMenu (open) {
    const now = open === undefined ? this.strokeToggle.getAttribute('aria-expanded') !== 'true' : open
    this.strokeToggle.setAttribute('aria-expanded', String(now))
    this.stylebar.classList.toggle('stroke-open', now)
  }

  togglePanel () {
    this.panelOpen = !this.panelOpen
    this.renderPanel()
    if (this.panelOpen) this.chat.input.focus({ preventScroll: true })
  }

  renderPanel () {
    this.workspace.classList.toggle('panel-closed', !this.panelOpen)
    this.panel.hidden = !this.panelOpen
    this.panelButton.setAttribute('aria-expanded', String(this.panelOpen))
    this.chat.setVisible(this.panelOpen)
    this.renderUnread(this.chat.unread)
  }

  renderUnread (n) {
    this.unreadEl.hidden = !n || this.panelOpen
    this.unreadEl.textContent = n > 99 ? '99+' : String(n)
    const label = this.panelOpen ? t('ui.hidePanel') : n ? t('ui.showPanelUnread', { count: n }) : t('ui.showPanel')
    this.panelButton.setAttribute('aria-label', label)
    this.panelButton.title = label
  }

  readOnlyReason () {
    const s = this.roomState
    if (this.blocked) return t('why.disconnected')
    if (s.ended) return t('why.ended')
    if (this.role === 'observer') return t('why.observing')
    if (s.locked && !this.isFacilitator) return t('why.locked')
    if (s.saving === 'read_only') return t('why.notSaving')
    return ''
  }

  /**
   * An attempt to change a read-only board: the banner that says why is
   * brought to the reader's attention (highlighted and announced again), so
   * the notice is there once; a toast only when no banner says it.
   */
  /** A participant reached for a locked shape: say so, at most every few seconds. */
  lockedNotice () {
    const now = Date.now()
    if (now - (this.lockedNoticeAt || 0) < LOCKED_NOTICE_MS) return
    this.lockedNoticeAt = now
    toast(t('shapes.lockedNotice'), 'info')
  }

  /** Start from a template (`mod:template`, §6.3): placed in the middle of the view, locked. */
  async chooseTemplate () {
    if (!this.isFacilitator) return
    const lang = locale()
    const listed = await this.moderate('templates:list', { lang })
    if (!listed) return
    const templateId = await templateDialog(listed.templates)
    if (!templateId) return
    const [x, y] = this.canvas.viewCentre()
    if (await this.moderate('mod:template', { templateId, lang, x: Math.round(x), y: Math.round(y) }, TEMPLATE_ERRORS)) {
      toast(t('templates.placed'), 'info')
    }
  }

  /** Lock or unlock shapes (`mod:lock-shapes`, §6.3): participants cannot change locked ones. */
  async lockShapes (ids, locked) {
    if (!this.isFacilitator || !ids.length) return
    if (await this.moderate('mod:lock-shapes', { shapeIds: ids, locked, doc: BOARD_DOC }, LOCK_SHAPE_ERRORS)) {
      toast(t(locked ? 'shapes.lockedDone' : 'shapes.unlockedDone', { count: ids.length }), 'info')
    }
  }

  readOnlyNotice () {
    const reason = this.readOnlyReason()
    const kind = READ_ONLY_BANNERS.find((k) => this.banners.querySelector('[data-banner="' + k + '"]'))
    const banner = !this.blocked && kind && this.banners.querySelector('[data-banner="' + kind + '"]')
    if (!banner) {
      toast(reason || t('why.cannotDraw'), 'warn')
      return
    }
    const text = banner.lastChild
    banner.classList.remove('attention')
    void banner.offsetWidth // restart the highlight
    banner.classList.add('attention')
    clearTimeout(this.attentionTimer)
    this.attentionTimer = setTimeout(() => banner.classList.remove('attention'), 1500)
    text.replaceChildren(text.textContent)
    banner.dataset.attention = String(Number(banner.dataset.attention || 0) + 1)
  }

  renderState () {
    const s = this.roomState
    const role = this.role
    const me = this.identity.id
    const overridden = role !== this.identity.role
    const muted = s.muted.includes(me)
    const boardFull = s.full.includes(BOARD_DOC)
    this.titleEl.textContent = s.title || this.room
    this.roomIdEl.hidden = !s.title || s.title === this.room
    document.title = (s.title || this.room) + ' · collab'
    this.roleBadge.className = 'role-badge role-' + role
    this.roleBadge.textContent = roleLabel(role)
    this.roleBadge.title = overridden ? t('people.setByFacilitator') : ''
    this.canvas.setFull(boardFull)
    this.canvas.setWritable(!this.readOnlyReason())
    const chatReason = this.blocked ? t('why.disconnected')
      : s.ended ? t('chatWhy.ended')
        : role === 'observer' ? t('chatWhy.observer')
          : muted ? t('chatWhy.muted')
            : s.full.includes(CHAT_DOC) ? t('chatWhy.full') : ''
    this.chat.setSendState(!chatReason, chatReason)
    this.chat.setCanModerate(this.isFacilitator && !this.blocked)
    this.chat.setCanDeleteOwn(role !== 'observer' && !this.blocked)
    this.activities.setState({ role, ended: s.ended, blocked: !!this.blocked })
    this.privateLine.setState({ role, ended: s.ended, blocked: !!this.blocked })
    this.people.setState(s, this.isFacilitator && !this.blocked)
    this.facilitation.render({ role, live: !s.ended && !this.blocked })
    this.checkins.setState({ role, live: !s.ended && !this.blocked })

    const banners = []
    if (s.ended) banners.push(['ended', t('banner.ended')])
    else if (s.locked) {
      banners.push(['locked', t(this.isFacilitator ? 'banner.lockedFacilitator' : 'banner.locked')])
    }
    if (role === 'observer' && !s.ended) {
      banners.push(['observer', t(overridden ? 'banner.madeObserver' : 'banner.observer')])
    }
    if (muted && !s.ended) banners.push(['muted', t('banner.muted')])
    if (boardFull && !s.ended) {
      banners.push(['full', t(this.readOnlyReason() ? 'board.fullReadOnly' : 'board.full')])
    }
    if (s.saving === 'delayed') banners.push(['saving-delayed', t('saving.delayed')])
    if (s.saving === 'read_only') banners.push(['saving-stopped', t('saving.read_only')])
    const icons = { locked: 'lock', muted: 'mute', ended: 'end', full: 'full', observer: 'eye', 'saving-delayed': 'cloudOff', 'saving-stopped': 'cloudOff' }
    this.banners.replaceChildren(...banners.map(([kind, text]) =>
      el('div', { class: 'banner banner-' + kind, 'data-banner': kind, role: 'status' }, icon(icons[kind] || 'users', 16), el('span', {}, text))))

    if (this.lockButton) {
      const disabled = s.ended || !!this.blocked
      this.lockButton.replaceChildren(icon(s.locked ? 'unlock' : 'lock', 18), el('span', {}, t(s.locked ? 'ui.unlock' : 'ui.lock')))
      this.lockButton.setAttribute('aria-label', t(s.locked ? 'ui.unlockLabel' : 'ui.lockLabel'))
      this.lockButton.setAttribute('aria-pressed', String(s.locked))
      this.lockButton.disabled = disabled
      this.templateButton.disabled = disabled
      this.historyButton.disabled = !!this.blocked
      this.endButton.disabled = disabled
    }
    this.renderTools()
  }

  renderTools () {
    if (!this.toolButtons) return
    const b = this.canvas
    for (const [id, button] of this.toolButtons) {
      button.setAttribute('aria-pressed', String(b.tool === id))
      button.disabled = (!b.writable && id !== 'pan') || (b.full && addsShapes(id))
    }
    this.imageButton.hidden = this.role === 'observer'
    this.imageButton.disabled = !b.writable || b.full
    this.undoButton.disabled = !b.writable || !b.canUndo
    this.redoButton.disabled = !b.writable || !b.canRedo
    this.deleteButton.disabled = !b.writable || b.selection.size === 0
    for (const button of this.colorButtons) button.setAttribute('aria-pressed', String(button.dataset.color === b.style.color))
    for (const button of this.widthButtons) button.setAttribute('aria-pressed', String(Number(button.dataset.width) === b.style.width))
    this.fillButton.setAttribute('aria-pressed', String(!!b.style.fill))
    this.strokeSample.style.height = b.style.width + 'px'
    // Redaction works whatever the board's state (even after the end, §6.3): only facilitators, connected.
    if (this.selectionBar) this.selectionBar.hidden = !(this.isFacilitator && !this.blocked && b.selection.size > 0)
    if (this.lockShapesButton && b.selection.size) {
      const unlock = [...b.selection].every((id) => b.locked.has(id))
      this.lockShapesButton.replaceChildren(icon(unlock ? 'unlock' : 'lock', 18), el('span', {}, t(unlock ? 'shapes.unlock' : 'shapes.lock')))
      this.lockShapesButton.setAttribute('aria-label', t(unlock ? 'shapes.unlockLabel' : 'shapes.lockLabel', { count: b.selection.size }))
      this.lockShapesButton.title = t(unlock ? 'shapes.unlockLabel' : 'shapes.lockLabel', { count: b.selection.size })
    }
    this.stylebar.classList.toggle('disabled', !b.writable)
    for (const button of [...this.colorButtons, ...this.widthButtons, this.fillButton, this.strokeToggle]) button.disabled = !b.writable
    if (!b.writable) this.toggleStrokeMenu(false)
    this.zoomLabel.textContent = Math.round(b.zoom * 100) + '%'
  }

  renderStatus () {
    if (!this.statusEl) return
    const all = ['board', 'chat', 'meta'].every((n) => this.status[n] === 'connected')
    let state
    let text
    if (this.blocked) {
      state = 'blocked'
      text = t('conn.disconnected')
    } else if (all && this.synced) {
      state = 'synced'
      text = t('conn.synced')
    } else if (this.everConnected && Object.values(this.status).some((s) => s === 'disconnected')) {
      state = 'offline'
      text = t('conn.offline')
    } else {
      state = 'connecting'
      text = t('common.connecting')
    }
    if (this.statusEl.dataset.state === state) return
    this.statusEl.dataset.state = state
    this.statusEl.lastChild.textContent = text
    this.statusEl.title = text
  }

  bindKeys () {
    const b = this.canvas
    this.keydown = (e) => {
      if (e.defaultPrevented || this.blocked) return
      const target = e.target
      const typing = target && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))
      if (typing || document.querySelector('dialog[open]')) return
      const mod = e.ctrlKey || e.metaKey
      const key = e.key.length === 1 ? e.key.toLowerCase() : e.key
      const onControl = target && target.tagName === 'BUTTON'
      if (key === ' ' && !onControl) {
        b.space = true
        b.svg.classList.add('space-pan')
        e.preventDefault()
        return
      }
      if (mod && key === 'z') {
        e.preventDefault()
        if (e.shiftKey) b.redoLast()
        else b.undoLast()
        return
      }
      if (mod && key === 'y') {
        e.preventDefault()
        b.redoLast()
        return
      }
      if (mod && key === 'a') {
        e.preventDefault()
        b.selectAll()
        return
      }
      if (mod || e.altKey) return
      if (key === '?') {
        e.preventDefault()
        helpDialog()
        return
      }
      if (key === 'Delete' || key === 'Backspace') {
        if (b.selection.size) {
          e.preventDefault()
          b.deleteSelection()
        }
        return
      }
      if (key === 'Escape') {
        b.cancelGesture()
        b.selection.clear()
        b.flush()
        return
      }
      if (key === 'Enter' && !onControl) {
        if (b.editSelection()) e.preventDefault()
        return
      }
      const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }
      if (arrows[key] && b.selection.size && !onControl) {
        e.preventDefault()
        const step = e.shiftKey ? 10 : 1
        b.nudge(arrows[key][0] * step, arrows[key][1] * step)
        return
      }
      if (key === '+' || key === '=') return b.zoomBy(1.25)
      if (key === '-' || key === '_') return b.zoomBy(1 / 1.25)
      if (key === '0') return b.resetZoom()
      if (key === 'f') return b.fit()
      if (key === '[' || key === ']') return b.restack(key === ']')
      const tool = TOOLS.find((x) => x.key === key)
      if (tool) {
        e.preventDefault()
        b.setTool(tool.id)
      }
    }
    this.keyup = (e) => {
      if (e.key === ' ') {
        b.space = false
        b.svg.classList.remove('space-pan')
      }
    }
    window.addEventListener('keydown', this.keydown)
    window.addEventListener('keyup', this.keyup)
  }
}

/**
 * The largest WebSocket frame the server takes: the `maxPayload` of the
 * Engine.IO handshake (protocol.md §1), which engine.io-client keeps in
 * `_maxPayload` (socket.io-client is pinned in package.json). Infinity until
 * known, or if an upgrade moves it: then only a close with 1009 is noticed.
 */
function maxFrameBytes (provider) {
  const engine = provider.socket.io.engine
  const max = engine && engine._maxPayload
  return typeof max === 'number' && max > 0 ? max : Infinity
}

/**
 * Arrow keys in a menu (WAI-ARIA menu pattern): ArrowDown and ArrowUp move
 * the focus to the next and previous item (wrapping), Home and End to the
 * first and last. True when the key was one of these (and handled).
 */
function menuKey (menu, e) {
  const items = [...menu.querySelectorAll('[role="menuitem"]:not(:disabled)')]
  if (!items.length) return false
  const at = items.indexOf(document.activeElement)
  const next = {
    ArrowDown: (at + 1) % items.length,
    ArrowUp: (at <= 0 ? items.length : at) - 1,
    Home: 0,
    End: items.length - 1
  }[e.key]
  if (next === undefined) return false
  e.preventDefault()
  items[next].focus()
  return true
}

function destroyProvider (provider) {
  if (!provider) return
  provider.destroy()
  // destroy() only disconnects a connected socket: stop reconnection attempts too.
  provider.socket.disconnect()
}

const DESCRIPTIONS = worded('error', [
  'permission_denied', 'muted', 'session_ended', 'board_locked', 'shape_locked', 'not_found', 'invalid_payload', 'room_unavailable', 'internal_error', 'awareness_client_not_owned', 'document_too_large'
])

/** Refusals of `mod:redact-shape`, in words. */
const REDACT_SHAPE_ERRORS = worded('redactError', ['not_found', 'permission_denied', 'invalid_payload'])

/** Refusals of `mod:template`, in words. */
const TEMPLATE_ERRORS = worded('templateError', ['not_found', 'document_too_large'])

/** Refusals of `mod:lock-shapes`, in words. */
const LOCK_SHAPE_ERRORS = worded('lockError', ['not_found', 'permission_denied', 'invalid_payload'])

/** How often a participant is told that a shape is locked, at most. */
const LOCKED_NOTICE_MS = 4000

/** Refusals of `chat:delete` (one's own message, §6.6), in words. */
const DELETE_OWN_ERRORS = worded('deleteOwnError', ['delete_window_expired', 'permission_denied', 'not_found'])

/** Refusals of `mod:role`, in words. */
const ROLE_ERRORS = worded('roleError', ['permission_denied', 'invalid_payload'])

function describe (code, message) {
  return DESCRIPTIONS(code) || (message ? String(message) : t('error.other', { code }))
}

/**
 * The words for error codes: the catalogue's `<prefix>.<code>` (i18n.js) for
 * the codes listed, undefined for others.
 */
function worded (prefix, codes) {
  return (code) => (codes.includes(code) ? t(prefix + '.' + code) : undefined)
}

