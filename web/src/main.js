// Entry point of /static/app.js: the lobby (`/`) or a session (`/r/<room>`).
import { initLocale } from './i18n.js'
import { startLobby } from './lobby.js'
import { startSession } from './session.js'

initLocale()
const root = document.getElementById('app')
if (document.body.dataset.page === 'session') startSession(root)
else startLobby(root)
