// The shared timer (protocol.md §6.6): meta's `timer` map, shown to everyone
// as a countdown computed from the server's clock (clock.js), with the
// facilitator's controls (start, pause, resume, +1 min, stop) and an
// optional gentle chime at the end.
import { el } from './util.js'
import { t } from './i18n.js'

/** The server's limits (rooms/timer.py): at most 4 hours, labels of 80 characters. */
export const MAX_TIMER_S = 4 * 3600
const MAX_LABEL_CHARS = 80
/** Durations offered with one press (minutes). */
const PRESETS_MIN = [1, 3, 5, 10]
/** How often a running countdown is redrawn (ms). */
const TICK_MS = 250
/** A timer that ran out stays shown this long (ms of server time), unless stopped. */
const DONE_SHOWN_MS = 10 * 60 * 1000
/** How much the facilitator's +1 adds (seconds). */
const EXTEND_S = 60

const pad = (n) => String(n).padStart(2, '0')

/** Milliseconds as the countdown shows them: m:ss, or h:mm:ss; rounded up (0:01 until it is over). */
export function formatRemaining (ms) {
  const s = Math.ceil(Math.max(0, ms) / 1000)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h ? h + ':' + pad(m) + ':' + pad(s % 60) : m + ':' + pad(s % 60)
}

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null)

/** Meta's `timer` map as a plain timer; a map that does not fit reads as stopped. */
export function readTimer (map) {
  const state = map.get('state')
  const timer = {
    state: ['running', 'paused'].includes(state) ? state : 'stopped',
    endsAt: num(map.get('endsAt')),
    remainingMs: num(map.get('remainingMs')),
    durationMs: num(map.get('durationMs')) || 0,
    label: typeof map.get('label') === 'string' ? map.get('label') : '',
    chime: map.get('chime') === true,
    seq: num(map.get('seq')) || 0
  }
  if ((timer.state === 'running' && timer.endsAt === null) || (timer.state === 'paused' && timer.remainingMs === null)) timer.state = 'stopped'
  return timer
}

/** The timer's phase at server time `now`: a running timer whose end passed is `done`. */
export function phaseAt (timer, now) {
  return timer.state === 'running' && timer.endsAt <= now ? 'done' : timer.state
}

/** Milliseconds left at server time `now`. */
export function remainingAt (timer, now) {
  if (timer.state === 'paused') return timer.remainingMs
  if (timer.state === 'running') return Math.max(0, timer.endsAt - now)
  return 0
}

let audio = null

/** The page's audio context, made at the first use (a browser lets it sound after a gesture). */
function audioContext () {
  const Context = window.AudioContext || window.webkitAudioContext
  if (!Context) return null
  if (!audio) audio = new Context()
  if (audio.state === 'suspended') audio.resume().catch(() => {})
  return audio
}

/** A short, quiet two-note chime (Web Audio): the timer's end. */
export function playChime () {
  const ctx = audioContext()
  if (!ctx) return false
  const start = ctx.currentTime + 0.02
  for (const [freq, delay] of [[659.25, 0], [987.77, 0.22]]) {
    const osc = ctx.createOscillator()
    const gain = ctx.createGain()
    osc.type = 'sine'
    osc.frequency.value = freq
    gain.gain.setValueAtTime(0.0001, start + delay)
    gain.gain.exponentialRampToValueAtTime(0.05, start + delay + 0.03)
    gain.gain.exponentialRampToValueAtTime(0.0001, start + delay + 1.4)
    osc.connect(gain).connect(ctx.destination)
    osc.start(start + delay)
    osc.stop(start + delay + 1.5)
  }
  return true
}

export class SharedTimer {
  /**
   * `clock`: the server's clock; `moderate(event, payload, messages)`: the
   * session's acknowledged events; `announce(text)`: a polite status line;
   * `icon(name)`: a decorative icon.
   */
  constructor ({ clock, isFacilitator, moderate, announce, icon }) {
    Object.assign(this, { clock, isFacilitator, moderate, announce, icon })
    this.timer = readTimer(new Map())
    this.phase = 'stopped'
    this.ticker = 0
    this.enabled = true
    this.time = el('span', { class: 'timer-time' }, '0:00')
    this.label = el('span', { class: 'timer-label' })
    this.note = el('span', { class: 'timer-note' })
    this.bar = el('span', { class: 'timer-bar' })
    this.controls = el('span', { class: 'timer-controls' })
    this.root = el('div', { class: 'timer-chip', role: 'timer', 'aria-label': t('timer.region'), hidden: true, 'data-state': 'stopped' },
      this.label, this.time, this.note, this.controls, el('span', { class: 'timer-progress', 'aria-hidden': 'true' }, this.bar))
    if (isFacilitator) this.buildControls()
    this.unsubscribe = clock.onChange(() => this.render())
  }

  buildControls () {
    this.openButton = el('button', { type: 'button', class: 'tool-button', 'data-action': 'timer', 'aria-label': t('timer.open'), title: t('timer.open') }, this.icon('timer'))
    this.openButton.addEventListener('click', () => this.start())
    this.pauseButton = el('button', { type: 'button', class: 'icon-button small', 'data-action': 'timer-pause' })
    this.pauseButton.addEventListener('click', () => this.act(this.timer.state === 'paused' ? 'resume' : 'pause'))
    this.extendButton = el('button', { type: 'button', class: 'timer-extend', 'aria-label': t('timer.addMinuteLabel'), title: t('timer.addMinuteLabel') }, t('timer.addMinute'))
    this.extendButton.addEventListener('click', () => this.act('extend', { seconds: EXTEND_S }))
    this.stopButton = el('button', { type: 'button', class: 'icon-button small', 'aria-label': t('timer.stopLabel'), title: t('timer.stopLabel') }, this.icon('stop'))
    this.stopButton.addEventListener('click', () => this.act('stop'))
    this.controls.append(this.pauseButton, this.extendButton, this.stopButton)
  }

  /** Read meta's `timer` map now and whenever it changes. */
  attach (metaDoc) {
    this.map = metaDoc.getMap('timer')
    this.map.observe(() => this.read(true))
    this.read(false)
  }

  /** The map changed (`live`: by someone now, not the state found on joining): show it, say what happened. */
  read (live) {
    const before = this.timer
    this.timer = readTimer(this.map)
    const now = this.clock.now()
    const phase = Number.isNaN(now) ? this.timer.state : phaseAt(this.timer, now)
    if (live && this.timer.seq !== before.seq) {
      if (phase === 'running' && before.state !== 'running' && before.state !== 'paused') {
        this.announce(t('timer.started', { time: formatRemaining(this.timer.durationMs) }))
      } else if (phase === 'paused' && before.state === 'running') this.announce(t('timer.announcePaused'))
      else if (phase === 'running' && before.state === 'paused') this.announce(t('timer.announceResumed'))
      else if (phase === 'stopped' && before.state !== 'stopped') this.announce(t('timer.announceStopped'))
    }
    // A new run (or a stop) forgets that the last one rang.
    if (this.timer.seq !== before.seq && phase !== 'done') delete this.root.dataset.chimed
    this.render()
  }

  /** The facilitator's controls are usable (connected, the session not ended). */
  setEnabled (enabled) {
    this.enabled = enabled
    if (this.openButton) this.openButton.disabled = !enabled
    this.render()
  }

  render () {
    const now = this.clock.now()
    const known = !Number.isNaN(now)
    const timer = this.timer
    const phase = known ? phaseAt(timer, now) : timer.state === 'paused' ? 'paused' : 'stopped'
    const stale = phase === 'done' && now - timer.endsAt > DONE_SHOWN_MS
    const previous = this.phase
    this.phase = phase
    this.root.hidden = phase === 'stopped' || stale
    this.root.dataset.state = phase
    if (this.root.hidden) {
      this.stopTicking()
      return
    }
    const left = phase === 'done' ? 0 : remainingAt(timer, now)
    const text = formatRemaining(left)
    if (this.time.textContent !== text) this.time.textContent = text
    this.label.textContent = timer.label
    this.label.hidden = !timer.label
    this.note.textContent = phase === 'paused' ? t('timer.paused') : phase === 'done' ? t('timer.done') : ''
    this.note.hidden = phase === 'running'
    const fraction = timer.durationMs > 0 ? Math.min(1, left / timer.durationMs) : 0
    this.bar.style.transform = 'scaleX(' + fraction.toFixed(4) + ')'
    this.root.setAttribute('aria-label', timer.label ? t('timer.regionNamed', { label: timer.label }) : t('timer.region'))
    if (this.pauseButton) {
      const paused = phase === 'paused'
      this.pauseButton.replaceChildren(this.icon(paused ? 'play' : 'pause'))
      this.pauseButton.setAttribute('aria-label', t(paused ? 'timer.resume' : 'timer.pause'))
      this.pauseButton.title = t(paused ? 'timer.resume' : 'timer.pause')
      this.pauseButton.disabled = !this.enabled || phase === 'done'
      this.extendButton.disabled = !this.enabled
      this.stopButton.disabled = !this.enabled
    }
    if (previous === 'running' && phase === 'done') this.finished()
    if (phase === 'running' || phase === 'done') this.startTicking()
    else this.stopTicking()
  }

  /** It ran out while this page watched: say so, and chime if it was asked for. */
  finished () {
    this.announce(t('timer.announceDone'))
    if (this.timer.chime && this.root.dataset.chimed !== 'true') {
      this.root.dataset.chimed = 'true'
      playChime()
    }
  }

  startTicking () {
    if (!this.ticker) this.ticker = setInterval(() => this.render(), TICK_MS)
  }

  stopTicking () {
    clearInterval(this.ticker)
    this.ticker = 0
  }

  async act (action, fields = {}) {
    await this.moderate('mod:timer', { action, ...fields }, (code) => (['timer_state', 'invalid_payload'].includes(code) ? t('timerError.' + code) : undefined))
  }

  /** Ask for a duration, a label and the chime, then start the timer for everyone. */
  async start () {
    const chosen = await startDialog()
    if (!chosen) return
    await this.act('start', chosen)
  }

  destroy () {
    this.stopTicking()
    this.unsubscribe()
  }
}

/** The facilitator's dialog: a duration (a preset, or minutes and seconds), a label, the chime. */
function startDialog () {
  return new Promise((resolve) => {
    let result = null
    const minutes = el('input', { id: 'timer-minutes', type: 'number', min: 0, max: MAX_TIMER_S / 60, step: 1, value: 3, inputmode: 'numeric' })
    const seconds = el('input', { id: 'timer-seconds', type: 'number', min: 0, max: 59, step: 1, value: 0, inputmode: 'numeric' })
    const label = el('input', { id: 'timer-label', type: 'text', maxlength: MAX_LABEL_CHARS, placeholder: t('timer.labelPlaceholder'), autocomplete: 'off' })
    const chime = el('input', { id: 'timer-chime', type: 'checkbox', checked: true })
    const error = el('p', { class: 'form-status', role: 'alert' })
    const presets = PRESETS_MIN.map((m) => {
      const b = el('button', { type: 'button', class: 'timer-preset', 'data-minutes': m }, t('timer.minutesShort', { count: m }))
      b.addEventListener('click', () => { minutes.value = m; seconds.value = 0; minutes.focus() })
      return b
    })
    const start = el('button', { type: 'submit', class: 'primary' }, t('timer.start'))
    const cancel = el('button', { type: 'button' }, t('common.cancel'))
    const form = el('form', { class: 'timer-form' },
      el('div', { class: 'timer-presets', role: 'group', 'aria-label': t('timer.presets') }, presets),
      el('div', { class: 'timer-duration' },
        el('label', { for: 'timer-minutes' }, t('timer.minutes')), minutes,
        el('label', { for: 'timer-seconds' }, t('timer.seconds')), seconds),
      el('label', { for: 'timer-label' }, t('timer.label')), label,
      el('label', { class: 'timer-chime-row', for: 'timer-chime' }, chime, t('timer.chime')),
      error,
      el('div', { class: 'dialog-actions' }, cancel, start))
    const dialog = el('dialog', { class: 'dialog timer-dialog', 'aria-labelledby': 'timer-title' },
      el('h2', { id: 'timer-title' }, t('timer.title')),
      el('p', { class: 'hint' }, t('timer.hint')),
      form)
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      const total = Math.round((Number(minutes.value) || 0) * 60 + (Number(seconds.value) || 0))
      if (!(total >= 1 && total <= MAX_TIMER_S)) {
        error.textContent = t('timer.invalid')
        return
      }
      result = { seconds: total, label: label.value.trim().slice(0, MAX_LABEL_CHARS), chime: chime.checked }
      dialog.close()
    })
    cancel.addEventListener('click', () => dialog.close())
    dialog.addEventListener('close', () => {
      dialog.remove()
      resolve(result)
    })
    document.body.append(dialog)
    dialog.showModal()
    minutes.focus()
    minutes.select()
  })
}
