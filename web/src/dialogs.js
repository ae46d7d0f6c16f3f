// Modal dialogs: confirmations, board templates and the keyboard-shortcut help.
import { el } from './util.js'
import { t } from './i18n.js'
import { TOOLS } from './board.js'

/** Ask before a destructive action; resolves true when confirmed. */
export function confirmDialog (message, confirmLabel = t('common.confirm')) {
  return new Promise((resolve) => {
    const ok = el('button', { type: 'button', class: 'primary danger', value: 'ok' }, confirmLabel)
    const cancel = el('button', { type: 'button', value: 'cancel' }, t('common.cancel'))
    const text = el('p', { id: 'confirm-text' }, message)
    const dialog = el('dialog', { class: 'dialog confirm-dialog', 'aria-describedby': 'confirm-text', 'aria-label': confirmLabel },
      text, el('div', { class: 'dialog-actions' }, cancel, ok))
    let result = false
    ok.addEventListener('click', () => { result = true; dialog.close() })
    cancel.addEventListener('click', () => dialog.close())
    dialog.addEventListener('close', () => {
      dialog.remove()
      resolve(result)
    })
    document.body.append(dialog)
    dialog.showModal()
    cancel.focus()
  })
}

/**
 * Pick a board template (`templates:list`, protocol.md §6.3): `templates` are
 * their summaries in the viewer's language; resolves the chosen id, or null.
 */
export function templateDialog (templates) {
  return new Promise((resolve) => {
    let chosen = null
    const cancel = el('button', { type: 'button' }, t('common.cancel'))
    const items = templates.map((tpl) => {
      const button = el('button', { type: 'button', class: 'template-item', 'data-template': tpl.id },
        el('strong', {}, tpl.title), el('span', {}, tpl.description))
      button.addEventListener('click', () => { chosen = tpl.id; dialog.close() })
      return el('li', {}, button)
    })
    const dialog = el('dialog', { class: 'dialog template-dialog', 'aria-labelledby': 'template-title' },
      el('h2', { id: 'template-title' }, t('templates.title')),
      el('p', { class: 'hint' }, t('templates.hint')),
      el('ul', { class: 'template-list' }, items),
      el('div', { class: 'dialog-actions' }, cancel))
    cancel.addEventListener('click', () => dialog.close())
    dialog.addEventListener('close', () => {
      dialog.remove()
      resolve(chosen)
    })
    document.body.append(dialog)
    dialog.showModal()
    const first = dialog.querySelector('.template-item')
    if (first) first.focus({ preventScroll: true })
  })
}

/** The help's rows in the viewer's language: the keys and what they do. */
const SHORTCUTS = () => [
  ...TOOLS.map((tool) => [tool.key.toUpperCase(), t('tool.' + tool.id)]),
  [t('help.keys.pan'), t('help.pan')],
  [t('help.keys.zoom'), t('help.zoom')],
  ['+ / −', t('help.zoomInOut')],
  ['0', t('help.zoom100')],
  ['F', t('help.fit')],
  [t('help.keys.shift'), t('help.shift')],
  [t('help.keys.edit'), t('help.edit')],
  [t('help.keys.add'), t('help.add')],
  ['Ctrl + V', t('help.pasteImage')],
  [t('help.keys.delete'), t('help.delete')],
  [t('help.keys.nudge'), t('help.nudge')],
  ['[ / ]', t('help.order')],
  ['Ctrl + A', t('help.selectAll')],
  ['Ctrl + Z', t('help.undo')],
  [t('help.keys.redo'), t('help.redo')],
  [t('help.keys.escape'), t('help.escape')],
  ['?', t('help.help')]
]

export function helpDialog () {
  const close = el('button', { type: 'button', class: 'primary' }, t('common.close'))
  const rows = SHORTCUTS().map(([keys, what]) => el('tr', {}, el('th', { scope: 'row' }, el('kbd', {}, keys)), el('td', {}, what)))
  const dialog = el('dialog', { class: 'dialog help-dialog', 'aria-labelledby': 'help-title' },
    el('h2', { id: 'help-title' }, t('help.title')),
    el('table', { class: 'shortcuts' }, el('tbody', {}, rows)),
    el('p', { class: 'hint' }, t('help.hint')),
    el('div', { class: 'dialog-actions' }, close))
  close.addEventListener('click', () => dialog.close())
  dialog.addEventListener('close', () => dialog.remove())
  document.body.append(dialog)
  dialog.showModal()
  // Close is at the end of a long list: focusing it must not scroll the dialog there.
  close.focus({ preventScroll: true })
  dialog.scrollTop = 0
}
