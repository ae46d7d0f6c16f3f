// Entry point of /static/app.js: the lobby (`/`) or a session (`/r/<room>`).
import { startLobby } from './lobby.js'
import { startSession } from './session.js'

const root = document.getElementById('app')
if (document.body.dataset.page === 'session') startSession(root)
else startLobby(root)
