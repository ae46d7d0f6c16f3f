// Check-ins and polls (protocol.md §6.9). A facilitator opens one (a single
// or multiple choice, a 0–10 scale, a feelings pick; named or anonymous),
// sees the results live and shows them to the group or not; a member answers
// on a card over the board and may change the answer until it closes. The
// check-ins and who answered are meta's (`checkins`, `checkinAnswers`); the
// results come from the server (`checkin:results`), asked again whenever
// meta changes: unshown results are never in meta in the clear.
import { el, toast } from './util.js'
import { t } from './i18n.js'

/** A feelings pick's feelings (rooms/checkin_kinds.py FEELINGS), each with its picture. */
export const FEELINGS = [
  ['calm', '😌'], ['happy', '😊'], ['hopeful', '🌱'], ['grateful', '🙏'], ['tired', '😴'],
  ['anxious', '😟'], ['sad', '😢'], ['angry', '😠'], ['confused', '😕'], ['overwhelmed', '😵']
]
const FEELING_EMOJI = Object.fromEntries(FEELINGS)
/** The kinds a facilitator may open. */
export const KINDS = ['single', 'multiple', 'scale', 'feelings']
/** Limits (protocol.md §8.1). */
const MAX_QUESTION_CHARS = 300
const MAX_OPTIONS = 12
const MAX_OPTION_CHARS = 80
/** How long after a change of meta the results are asked for (many answers come in bursts). */
const RESULTS_DELAY_MS = 250
/** Where this browser keeps an anonymous answer's receipt, and its own answer. */
const RECEIPT_KEY = 'collab:checkin-receipt:'
const ANSWER_KEY = 'collab:checkin-answer:'
/** The refusals worded here (i18n `checkinError.<code>`). */
const ERRORS = ['checkin_unknown', 'checkin_closed', 'checkin_limit', 'invalid_answer', 'invalid_receipt',
  'rate_limited', 'permission_denied', 'session_ended', 'invalid_payload', 'document_too_large', 'store_unavailable']
const worded = (code) => (ERRORS.includes(code) ? t('checkinError.' + code) : undefined)

/** Meta's `checkins` map → the check-ins, oldest first. */
export function readCheckins (map) {
  const list = []
  for (const [id, value] of map.entries()) {
    if (!/^[0-9a-f]{16}$/.test(id) || !value || typeof value !== 'object') continue
    list.push({ id, ...value, options: Array.isArray(value.options) ? value.options.map(String) : [] })
  }
  return list.sort((a, b) => (a.openedAt - b.openedAt) || (a.id < b.id ? -1 : 1))
}

function stored (key) {
  try { return localStorage.getItem(key) } catch { return null }
}

function store (key, value) {
  try { localStorage.setItem(key, value) } catch {}
}

/** An option's words: a feeling's name in the viewer's language, with its picture. */
function optionLabel (checkin, option) {
  if (checkin.kind === 'feelings') return `${FEELING_EMOJI[option] || ''} ${t('feeling.' + option)}`
  return option
}

export class Checkins {
  /**
   * `room`, `user`: this page's; `moderate(event, payload, messages)`: the
   * session's acknowledged events (they word refusals and apply the state).
   */
  constructor ({ room, user, moderate }) {
    Object.assign(this, { room, user, moderate })
    this.isFacilitator = user.role === 'facilitator'
    this.state = { role: user.role, live: true }
    this.checkins = []
    this.answered = new Set()
    this.results = new Map()
    this.dismissed = new Set()
    this.openButton = el('button', {
      type: 'button', class: 'tool-button labeled checkin-open-button', hidden: !this.isFacilitator, 'aria-haspopup': 'dialog', title: t('checkin.openTitle')
    }, el('span', { 'aria-hidden': 'true' }, '📊'), el('span', {}, t('checkin.open')))
    this.openButton.addEventListener('click', () => this.openDialog())
    this.card = el('section', { class: 'checkin-card', hidden: true, 'aria-live': 'polite', 'aria-labelledby': 'checkin-question' })
  }

  /** Read the check-ins from `metaDoc`; ask for results over `socket`. */
  attach (metaDoc, socket) {
    this.socket = socket
    this.checkinsMap = metaDoc.getMap('checkins')
    this.answersMap = metaDoc.getMap('checkinAnswers')
    this.talliesMap = metaDoc.getMap('checkinTallies')
    const changed = () => this.read()
    this.checkinsMap.observe(changed)
    this.answersMap.observe(changed)
    this.talliesMap.observe(changed)
    socket.on('connect', changed)
    this.read()
  }

  destroy () {
    clearTimeout(this.resultsTimer)
  }

  /** `{ role, live }` (live: connected and the session not ended). */
  setState (state) {
    this.state = state
    this.openButton.hidden = !this.isFacilitator
    this.openButton.disabled = !state.live
    this.render()
  }

  /** The check-in the card shows: the open one, else the latest (for members, the latest shown). */
  get current () {
    const open = this.checkins.find((c) => c.state === 'open')
    if (open) return open
    const shown = this.checkins.filter((c) => this.isFacilitator || c.revealed)
    return shown.length ? shown[shown.length - 1] : null
  }

  read () {
    this.checkins = readCheckins(this.checkinsMap)
    const current = this.current
    this.answered = new Set()
    if (current) {
      const prefix = current.id + '|'
      for (const key of this.answersMap.keys()) if (key.startsWith(prefix)) this.answered.add(key.slice(prefix.length))
    }
    this.render()
    clearTimeout(this.resultsTimer)
    this.resultsTimer = setTimeout(() => this.fetchResults(), RESULTS_DELAY_MS)
  }

  /** The current check-in's results, if this viewer may see them (facilitators: always). */
  async fetchResults () {
    const current = this.current
    const socket = this.socket
    if (!current || !socket || !socket.connected || !(this.isFacilitator || current.revealed)) return
    let ack
    try {
      ack = await socket.timeout(10000).emitWithAck('checkin:results', { id: current.id })
    } catch {
      return
    }
    if (ack && ack.ok && ack.checkin) {
      this.results.set(current.id, ack.checkin)
      this.render()
    }
  }

  // -- the facilitator --------------------------------------------------------------

  async openDialog () {
    const fields = await openCheckinDialog()
    if (!fields) return
    const ack = await this.moderate('mod:checkin', { action: 'open', ...fields }, worded)
    if (ack) {
      this.dismissed.clear()
      toast(t('checkin.opened'), 'info')
    }
  }

  async act (action, checkin) {
    const ack = await this.moderate('mod:checkin', { action, id: checkin.id }, worded)
    if (ack) this.read()
  }

  // -- a member ---------------------------------------------------------------------

  /** Send the answer the card's form holds (a change keeps the receipt going). */
  async answer (checkin, value) {
    const payload = { id: checkin.id, value }
    const receipt = stored(RECEIPT_KEY + this.room + ':' + checkin.id)
    if (checkin.anonymous && receipt) payload.receipt = receipt
    const ack = await this.moderate('checkin:answer', payload, worded)
    if (!ack) return
    if (typeof ack.receipt === 'string') store(RECEIPT_KEY + this.room + ':' + checkin.id, ack.receipt)
    store(ANSWER_KEY + this.room + ':' + checkin.id, JSON.stringify(value))
    toast(t(ack.changed ? 'checkin.changed' : 'checkin.answered'), 'info')
    this.render()
  }

  myAnswer (checkin) {
    try { return JSON.parse(stored(ANSWER_KEY + this.room + ':' + checkin.id)) } catch { return null }
  }

  // -- the card ---------------------------------------------------------------------

  render () {
    const checkin = this.current
    if (!checkin || this.dismissed.has(checkin.id) || (this.state.role === 'observer' && !checkin.revealed && !this.isFacilitator)) {
      this.card.hidden = true
      this.card.replaceChildren()
      return
    }
    this.card.hidden = false
    this.card.dataset.checkin = checkin.id
    this.card.dataset.state = checkin.state
    const flags = [t('checkin.kind.' + checkin.kind), t(checkin.anonymous ? 'checkin.anonymous' : 'checkin.named'),
      t(checkin.state === 'open' ? 'checkin.isOpen' : 'checkin.isClosed')]
    // A facilitator keeps an open check-in's card (its controls are there).
    const dismiss = el('button', {
      type: 'button', class: 'icon-button small checkin-dismiss', 'aria-label': t('checkin.dismiss'), title: t('checkin.dismiss'), hidden: this.isFacilitator && checkin.state === 'open'
    }, '×')
    dismiss.addEventListener('click', () => { this.dismissed.add(checkin.id); this.render() })
    const parts = [
      el('header', { class: 'checkin-head' },
        el('h2', { class: 'checkin-question', id: 'checkin-question' }, checkin.question), dismiss),
      el('p', { class: 'checkin-flags' }, flags.join(' · '))
    ]
    const results = this.results.get(checkin.id)
    if (this.isFacilitator) parts.push(...this.facilitatorView(checkin, results))
    else parts.push(...this.memberView(checkin, results))
    this.card.replaceChildren(...parts)
  }

  facilitatorView (checkin, results) {
    const count = results ? results.answered : this.answered.size
    const parts = [el('p', { class: 'checkin-count' }, t('checkin.answeredCount', { count }))]
    if (results) parts.push(resultsView(checkin, results))
    const live = this.state.live
    const buttons = []
    const button = (action, label, cls = '') => {
      const b = el('button', { type: 'button', class: 'checkin-action ' + cls, 'data-action': action, disabled: !live && action !== 'delete' }, label)
      b.addEventListener('click', () => this.act(action, checkin))
      buttons.push(b)
    }
    button(checkin.revealed ? 'hide' : 'reveal', t(checkin.revealed ? 'checkin.hide' : 'checkin.reveal'), 'primary')
    if (checkin.state === 'open') button('close', t('checkin.close'))
    button('delete', t('checkin.delete'), 'danger')
    parts.push(el('p', { class: 'checkin-visibility' }, t(checkin.revealed ? 'checkin.shownToGroup' : 'checkin.hiddenFromGroup')))
    parts.push(el('div', { class: 'checkin-actions' }, ...buttons))
    return parts
  }

  memberView (checkin, results) {
    const parts = []
    const answered = this.answered.has(this.user.id)
    const canAnswer = checkin.state === 'open' && this.state.role !== 'observer' && this.state.live
    if (canAnswer) parts.push(this.answerForm(checkin, answered))
    if (answered) parts.push(el('p', { class: 'checkin-status' }, t(checkin.state === 'open' ? 'checkin.yourAnswerIn' : 'checkin.closedAnswered')))
    else if (checkin.state !== 'open') parts.push(el('p', { class: 'checkin-status' }, t('checkin.closedNotice')))
    if (checkin.anonymous && canAnswer) parts.push(el('p', { class: 'hint checkin-anon-hint' }, t('checkin.anonymousHint')))
    if (checkin.revealed && results) parts.push(el('h3', { class: 'checkin-results-title' }, t('checkin.results')), resultsView(checkin, results))
    return parts
  }

  answerForm (checkin, answered) {
    const mine = this.myAnswer(checkin)
    const multiple = checkin.kind === 'multiple'
    const name = 'checkin-' + checkin.id
    const choices = checkin.options.map((option, index) => {
      const value = checkin.kind === 'feelings' ? option : index
      const input = el('input', { type: multiple ? 'checkbox' : 'radio', name, value: String(index) })
      input.checked = multiple ? Array.isArray(mine) && mine.includes(index) : mine === value
      return el('label', { class: 'checkin-choice checkin-kind-' + checkin.kind }, input, el('span', {}, optionLabel(checkin, option)))
    })
    const submit = el('button', { type: 'submit', class: 'primary checkin-submit' }, t(answered ? 'checkin.change' : 'checkin.send'))
    const form = el('form', { class: 'checkin-form' },
      el('fieldset', { class: 'checkin-choices checkin-choices-' + checkin.kind },
        el('legend', { class: 'visually-hidden' }, checkin.question), ...choices),
      el('div', { class: 'checkin-actions' }, submit))
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      const picked = [...form.querySelectorAll('input:checked')].map((i) => Number(i.value))
      if (!picked.length) {
        toast(t('checkin.pickFirst'), 'warn')
        return
      }
      const value = multiple ? picked : checkin.kind === 'feelings' ? checkin.options[picked[0]] : picked[0]
      this.answer(checkin, value)
    })
    return form
  }
}

/** The results as bars: each option, its count and its share of the answers. */
function resultsView (checkin, results) {
  const counts = Array.isArray(results.counts) ? results.counts : []
  const most = Math.max(1, ...counts)
  const rows = checkin.options.map((option, i) => {
    const n = counts[i] || 0
    const bar = el('span', { class: 'checkin-bar', 'aria-hidden': 'true' })
    bar.style.width = Math.round((n / most) * 100) + '%'
    return el('li', { class: 'checkin-result', 'data-option': String(i), 'data-count': String(n) },
      el('span', { class: 'checkin-result-label' }, optionLabel(checkin, option)),
      el('span', { class: 'checkin-bar-track' }, bar),
      el('span', { class: 'checkin-result-count' }, String(n)))
  })
  const list = el('ul', { class: 'checkin-results', 'aria-label': t('checkin.results') }, ...rows)
  if (checkin.kind !== 'scale') return list
  const total = counts.reduce((a, b) => a + b, 0)
  const mean = total ? counts.reduce((sum, n, v) => sum + n * v, 0) / total : null
  return el('div', {}, list, el('p', { class: 'checkin-mean' }, mean === null ? '' : t('checkin.mean', { mean: mean.toFixed(1) })))
}

/** A facilitator's new check-in: resolves `{kind, question, options?, anonymous}`, or null. */
function openCheckinDialog () {
  return new Promise((resolve) => {
    let result = null
    const kind = el('select', { id: 'checkin-kind' }, ...KINDS.map((k) => el('option', { value: k }, t('checkin.kind.' + k))))
    const question = el('input', { id: 'checkin-question-input', type: 'text', maxlength: MAX_QUESTION_CHARS, autocomplete: 'off', required: true })
    const options = el('textarea', { id: 'checkin-options', rows: 4 })
    const optionsRow = el('div', { class: 'checkin-options-row' },
      el('label', { for: 'checkin-options' }, t('checkin.optionsLabel')), options,
      el('p', { class: 'hint' }, t('checkin.optionsHint', { max: MAX_OPTIONS })))
    const anonymous = el('input', { id: 'checkin-anonymous', type: 'checkbox' })
    const error = el('p', { class: 'checkin-form-error', role: 'alert' })
    const save = el('button', { type: 'submit', class: 'primary' }, t('checkin.openSubmit'))
    const cancel = el('button', { type: 'button' }, t('common.cancel'))
    const syncKind = () => { optionsRow.hidden = !['single', 'multiple'].includes(kind.value) }
    kind.addEventListener('change', syncKind)
    const form = el('form', { method: 'dialog', class: 'checkin-dialog-form' },
      el('h2', { id: 'checkin-dialog-title' }, t('checkin.dialogTitle')),
      el('label', { for: 'checkin-kind' }, t('checkin.kindLabel')), kind,
      el('label', { for: 'checkin-question-input' }, t('checkin.questionLabel')), question,
      optionsRow,
      el('label', { class: 'checkin-anonymous-row' }, anonymous, el('span', {}, t('checkin.anonymousLabel'))),
      el('p', { class: 'hint' }, t('checkin.anonymousExplain')),
      error,
      el('div', { class: 'dialog-actions' }, cancel, save))
    const dialog = el('dialog', { class: 'dialog checkin-dialog', 'aria-labelledby': 'checkin-dialog-title' }, form)
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      const fields = { kind: kind.value, question: question.value.replace(/[\r\n\t]+/g, ' ').trim(), anonymous: anonymous.checked }
      if (!fields.question) {
        error.textContent = t('checkin.needQuestion')
        return
      }
      if (!optionsRow.hidden) {
        const labels = options.value.split('\n').map((s) => s.trim()).filter(Boolean)
        if (labels.length < 2 || labels.length > MAX_OPTIONS || labels.some((s) => s.length > MAX_OPTION_CHARS) || new Set(labels).size !== labels.length) {
          error.textContent = t('checkin.badOptions', { max: MAX_OPTIONS, chars: MAX_OPTION_CHARS })
          return
        }
        fields.options = labels
      }
      result = fields
      dialog.close()
    })
    cancel.addEventListener('click', () => dialog.close())
    dialog.addEventListener('close', () => {
      dialog.remove()
      resolve(result)
    })
    syncKind()
    document.body.append(dialog)
    dialog.showModal()
    question.focus()
  })
}
