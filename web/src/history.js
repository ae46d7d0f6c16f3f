// The board's history for facilitators (protocol.md §5.5): restore points
// from meta's `restorePoints`, kept on request, restored whole or one deleted
// shape at a time. Restoring is an ordinary board update: everyone sees it.
import { el, toast } from './util.js'
import { formatDateTime, formatTime, t } from './i18n.js'
import { icon } from './icons.js'

/** Restore points of board `doc` in the meta document, newest first. */
export function restorePoints (metaDoc, doc) {
  const out = []
  for (const [id, p] of metaDoc.getMap('restorePoints').entries()) {
    if (p && typeof p === 'object' && p.doc === doc && Number.isFinite(p.ts)) out.push({ id, ...p })
  }
  return out.sort((a, b) => b.ts - a.ts)
}

/**
 * Open the history dialog. `moderate(event, payload, messages)` sends a
 * facilitator event and resolves its ack (null if refused: it said why);
 * `confirm(message, label)` asks before a whole-board restore.
 */
export function historyDialog ({ metaDoc, doc, moderate, confirm }) {
  const list = el('ol', { class: 'history-list', 'aria-live': 'polite' })
  const keep = el('button', { type: 'button', class: 'primary' }, icon('plus', 16), t('history.keep'))
  const close = el('button', { type: 'button' }, t('common.close'))
  const dialog = el('dialog', { class: 'dialog history-dialog', 'aria-labelledby': 'history-title' },
    el('h2', { id: 'history-title' }, t('history.title')),
    el('p', { class: 'hint' }, t('history.hint')),
    list,
    el('div', { class: 'dialog-actions' }, keep, close))

  const render = () => {
    const points = restorePoints(metaDoc, doc)
    if (!points.length) {
      list.replaceChildren(el('li', { class: 'history-empty' }, t('history.none')))
      return
    }
    list.replaceChildren(...points.map((p) => pointItem(p)))
  }

  const pointItem = (p) => {
    const when = el('time', { datetime: new Date(p.ts).toISOString(), title: formatDateTime(p.ts) }, formatTime(p.ts))
    const what = el('span', { class: 'history-what' }, t('history.reason.' + p.reason), ' · ', t('history.shapes', { count: p.shapes }))
    const restore = el('button', { type: 'button', 'data-point': p.id }, t('history.restoreBoard'))
    const deleted = el('button', { type: 'button', 'aria-expanded': 'false' }, t('history.deletedShapes'))
    const shapes = el('ul', { class: 'history-shapes', hidden: true })
    restore.addEventListener('click', async () => {
      const ok = await confirm(t('history.restoreConfirm', { time: formatTime(p.ts) }), t('history.restoreBoard'))
      if (!ok) return
      if (await moderate('mod:restore', { pointId: p.id, doc }, RESTORE_ERRORS)) toast(t('history.restored'), 'info')
    })
    deleted.addEventListener('click', async () => {
      if (!shapes.hidden) {
        shapes.hidden = true
        deleted.setAttribute('aria-expanded', 'false')
        return
      }
      const ack = await moderate('restore:shapes', { pointId: p.id, doc }, RESTORE_ERRORS)
      if (!ack) return
      shapes.replaceChildren(...(ack.shapes.length
        ? ack.shapes.map((s) => shapeItem(p, s))
        : [el('li', { class: 'history-empty' }, t('history.noneDeleted'))]))
      shapes.hidden = false
      deleted.setAttribute('aria-expanded', 'true')
    })
    return el('li', { class: 'history-point' },
      el('div', { class: 'history-row' }, when, what, el('span', { class: 'history-actions' }, deleted, restore)),
      shapes)
  }

  const shapeItem = (p, s) => {
    const kind = t('history.type.' + s.type)
    const label = s.text ? t('history.shapeText', { type: kind, text: s.text }) : kind
    const button = el('button', { type: 'button' }, t('history.restoreShape'))
    const item = el('li', {}, el('span', {}, label), button)
    button.addEventListener('click', async () => {
      if (await moderate('mod:restore', { pointId: p.id, shapeId: s.id, doc }, RESTORE_ERRORS)) {
        toast(t('history.shapeRestored'), 'info')
        item.remove()
      }
    })
    return item
  }

  keep.addEventListener('click', async () => {
    if (await moderate('mod:restore-point', { doc }, RESTORE_ERRORS)) toast(t('history.kept'), 'info')
  })
  close.addEventListener('click', () => dialog.close())
  const points = metaDoc.getMap('restorePoints')
  points.observe(render)
  dialog.addEventListener('close', () => {
    points.unobserve(render)
    dialog.remove()
  })
  render()
  document.body.append(dialog)
  dialog.showModal()
  keep.focus({ preventScroll: true })
}

/** Refusals of the history's events, in words. */
const RESTORE_ERRORS = (code) => (['not_found', 'restore_unavailable', 'store_unavailable'].includes(code) ? t('historyError.' + code) : undefined)
