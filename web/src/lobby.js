// The lobby at `/`: pick a room, a name and a role; in dev mode, get a token and go.
import { el, fetchConfig, roomPath, validRoomId } from './util.js'
import { devToken, saveToken } from './token.js'
import { t } from './i18n.js'

export async function startLobby (root) {
  const config = await fetchConfig()
  const params = new URLSearchParams(location.search)
  const status = el('p', { class: 'form-status', role: 'alert', 'aria-live': 'assertive' })
  const room = el('input', {
    id: 'room', name: 'room', required: true, maxlength: 128, autocomplete: 'off', spellcheck: 'false',
    placeholder: t('lobby.roomPlaceholder'), value: params.get('room') || '', 'aria-describedby': 'room-help'
  })
  const name = el('input', { id: 'name', name: 'name', required: true, maxlength: 64, autocomplete: 'nickname', placeholder: t('common.yourName') })
  try { name.value = localStorage.getItem('collab:name') || '' } catch {}
  const role = el('select', { id: 'role', name: 'role' },
    el('option', { value: 'participant' }, t('lobby.roleParticipant')),
    el('option', { value: 'facilitator' }, t('lobby.roleFacilitator')),
    el('option', { value: 'observer' }, t('lobby.roleObserver')))
  const join = el('button', { type: 'submit', class: 'primary', disabled: !config.dev }, t('common.joinSession'))
  const form = el('form', { class: 'lobby-form', novalidate: true, 'aria-labelledby': 'lobby-title' },
    el('label', { for: 'room' }, t('lobby.room')),
    room,
    el('p', { id: 'room-help', class: 'hint' }, t('lobby.roomHelp')),
    el('label', { for: 'name' }, t('common.yourName')),
    name,
    el('label', { for: 'role' }, t('common.role')),
    role,
    join,
    status)

  const notice = config.dev
    ? el('p', { class: 'notice notice-warn' }, t('lobby.devNotice'))
    : el('div', { class: 'notice' },
      el('p', {}, t('lobby.platformNotice')),
      el('p', {}, t('lobby.platformBack')))

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    status.textContent = ''
    const roomId = room.value.trim()
    const who = name.value.trim()
    if (!validRoomId(roomId)) {
      status.textContent = t('lobby.invalidRoom')
      room.focus()
      return
    }
    if (!who) {
      status.textContent = t('common.enterName')
      name.focus()
      return
    }
    if (!config.dev) {
      status.textContent = t('lobby.needsToken')
      return
    }
    join.disabled = true
    join.textContent = t('lobby.joining')
    try {
      const entry = await devToken(roomId, who, role.value)
      saveToken(roomId, entry)
      try { localStorage.setItem('collab:name', who) } catch {}
      // The language and time zone asked for in the address go on to the session.
      const keep = new URLSearchParams([...params].filter(([key]) => key === 'lang' || key === 'tz')).toString()
      location.assign(roomPath(roomId) + (keep ? '?' + keep : ''))
    } catch (err) {
      status.textContent = t('common.couldNotJoin', { message: err.message })
      join.disabled = false
      join.textContent = t('common.joinSession')
    }
  })

  root.replaceChildren(
    el('main', { class: 'lobby' },
      el('h1', { id: 'lobby-title' }, 'collab'),
      el('p', { class: 'lead' }, t('lobby.lead')),
      notice,
      config.dev ? form : null))
  if (config.dev) (room.value ? name : room).focus()
}
