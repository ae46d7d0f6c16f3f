// The lobby at `/`: pick a room, a name and a role; in dev mode, get a token and go.
import { el, fetchConfig, roomPath, validRoomId } from './util.js'
import { devToken, saveToken } from './token.js'

export async function startLobby (root) {
  const config = await fetchConfig()
  const params = new URLSearchParams(location.search)
  const status = el('p', { class: 'form-status', role: 'alert', 'aria-live': 'assertive' })
  const room = el('input', {
    id: 'room', name: 'room', required: true, maxlength: 128, autocomplete: 'off', spellcheck: 'false',
    placeholder: 'clinic-7/group-a', value: params.get('room') || '', 'aria-describedby': 'room-help'
  })
  const name = el('input', { id: 'name', name: 'name', required: true, maxlength: 64, autocomplete: 'nickname', placeholder: 'Your name' })
  try { name.value = localStorage.getItem('collab:name') || '' } catch {}
  const role = el('select', { id: 'role', name: 'role' },
    el('option', { value: 'participant' }, 'Participant — draw and chat'),
    el('option', { value: 'facilitator' }, 'Facilitator — moderate the session'),
    el('option', { value: 'observer' }, 'Observer — watch only'))
  const join = el('button', { type: 'submit', class: 'primary', disabled: !config.dev }, 'Join session')
  const form = el('form', { class: 'lobby-form', novalidate: true, 'aria-labelledby': 'lobby-title' },
    el('label', { for: 'room' }, 'Room'),
    room,
    el('p', { id: 'room-help', class: 'hint' }, 'Letters, digits and - _ . ~; use / for sub-rooms (e.g. clinic-7/group-a).'),
    el('label', { for: 'name' }, 'Your name'),
    name,
    el('label', { for: 'role' }, 'Role'),
    role,
    join,
    status)

  const notice = config.dev
    ? el('p', { class: 'notice notice-warn' }, 'Development mode: this lobby mints test tokens. Never use it in production.')
    : el('div', { class: 'notice' },
      el('p', {}, 'Sessions are opened by the platform that embeds collab: it signs a token for you and opens the session with it.'),
      el('p', {}, 'If you reached this page directly, go back to your platform and open the session from there.'))

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    status.textContent = ''
    const roomId = room.value.trim()
    const who = name.value.trim()
    if (!validRoomId(roomId)) {
      status.textContent = 'That is not a valid room id.'
      room.focus()
      return
    }
    if (!who) {
      status.textContent = 'Please enter your name.'
      name.focus()
      return
    }
    if (!config.dev) {
      status.textContent = 'Joining needs a token from your platform.'
      return
    }
    join.disabled = true
    join.textContent = 'Joining…'
    try {
      const entry = await devToken(roomId, who, role.value)
      saveToken(roomId, entry)
      try { localStorage.setItem('collab:name', who) } catch {}
      location.assign(roomPath(roomId))
    } catch (err) {
      status.textContent = 'Could not join: ' + err.message
      join.disabled = false
      join.textContent = 'Join session'
    }
  })

  root.replaceChildren(
    el('main', { class: 'lobby' },
      el('h1', { id: 'lobby-title' }, 'collab'),
      el('p', { class: 'lead' }, 'A shared whiteboard and chat for group sessions.'),
      notice,
      config.dev ? form : null))
  if (config.dev) (room.value ? name : room).focus()
}
