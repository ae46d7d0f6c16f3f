// Modal dialogs: confirmations and the keyboard-shortcut help.
import { el } from './util.js'
import { TOOLS } from './board.js'

/** Ask before a destructive action; resolves true when confirmed. */
export function confirmDialog (message, confirmLabel = 'Confirm') {
  return new Promise((resolve) => {
    const ok = el('button', { type: 'button', class: 'primary danger', value: 'ok' }, confirmLabel)
    const cancel = el('button', { type: 'button', value: 'cancel' }, 'Cancel')
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

const SHORTCUTS = [
  ...TOOLS.map((t) => [t.key.toUpperCase(), t.label]),
  ['Space + drag, middle drag', 'Pan the board'],
  ['Wheel, Ctrl + wheel, pinch', 'Zoom'],
  ['+ / −', 'Zoom in / out'],
  ['0', 'Zoom to 100 %'],
  ['F', 'Fit the board in view'],
  ['Shift while drawing', 'Straight angles, squares and circles'],
  ['Double-click, Enter', 'Edit a sticky note or text'],
  ['Enter (a shape tool picked)', 'Add its shape in the middle of the view'],
  ['Delete, Backspace', 'Delete the selection'],
  ['Arrow keys', 'Nudge the selection (Shift: 10 units)'],
  ['[ / ]', 'Send to back / bring to front'],
  ['Ctrl + A', 'Select everything'],
  ['Ctrl + Z', 'Undo your last change'],
  ['Ctrl + Shift + Z, Ctrl + Y', 'Redo'],
  ['Escape', 'Deselect, stop editing'],
  ['?', 'This help']
]

export function helpDialog () {
  const close = el('button', { type: 'button', class: 'primary' }, 'Close')
  const rows = SHORTCUTS.map(([keys, what]) => el('tr', {}, el('th', { scope: 'row' }, el('kbd', {}, keys)), el('td', {}, what)))
  const dialog = el('dialog', { class: 'dialog help-dialog', 'aria-labelledby': 'help-title' },
    el('h2', { id: 'help-title' }, 'Keyboard shortcuts'),
    el('table', { class: 'shortcuts' }, el('tbody', {}, rows)),
    el('p', { class: 'hint' }, 'Undo and redo only take back your own changes. On a touch screen, use two fingers to pan and zoom.'),
    el('div', { class: 'dialog-actions' }, close))
  close.addEventListener('click', () => dialog.close())
  dialog.addEventListener('close', () => dialog.remove())
  document.body.append(dialog)
  dialog.showModal()
  // Close is at the end of a long list: focusing it must not scroll the dialog there.
  close.focus({ preventScroll: true })
  dialog.scrollTop = 0
}
