// Every word the web app shows or announces, in English and Spanish, and the
// viewer's locale and time zone. The locale comes from the embedding page's
// handshake (`locale`), else `?lang=`, else the browser's languages, else
// English; the time zone from the handshake (`timeZone`), else `?tz=`, else
// the browser's. Messages name their placeholders (`{name}`); a message with
// a `{count}` may have plural forms ({one, other}, chosen by Intl.PluralRules).

/** The locales the app ships, the first the fallback. */
export const LOCALES = ['en', 'es']

const en = {
  // Shared
  'role.facilitator': 'Facilitator',
  'role.participant': 'Participant',
  'role.observer': 'Observer',
  'common.guest': 'Guest',
  'common.unknown': 'Unknown',
  'common.you': ' (you)',
  'common.dismiss': 'Dismiss',
  'common.confirm': 'Confirm',
  'common.cancel': 'Cancel',
  'common.close': 'Close',
  'common.yourName': 'Your name',
  'common.role': 'Role',
  'common.joinSession': 'Join session',
  'common.enterName': 'Please enter your name.',
  'common.couldNotJoin': 'Could not join: {message}',
  'common.serverRefused': 'the server refused (HTTP {status})',
  'common.http': 'HTTP {status}',
  'common.connecting': 'Connecting…',
  'common.loading': 'Loading…',

  // Lobby
  'lobby.roomPlaceholder': 'clinic-7/group-a',
  'lobby.roleParticipant': 'Participant — draw and chat',
  'lobby.roleFacilitator': 'Facilitator — moderate the session',
  'lobby.roleObserver': 'Observer — watch only',
  'lobby.room': 'Room',
  'lobby.roomHelp': 'Letters, digits and - _ . ~; use / for sub-rooms (e.g. clinic-7/group-a).',
  'lobby.devNotice': 'Development mode: this lobby mints test tokens. Never use it in production.',
  'lobby.platformNotice': 'Sessions are opened by the platform that embeds collab: it signs a token for you and opens the session with it.',
  'lobby.platformBack': 'If you reached this page directly, go back to your platform and open the session from there.',
  'lobby.invalidRoom': 'That is not a valid room id.',
  'lobby.needsToken': 'Joining needs a token from your platform.',
  'lobby.joining': 'Joining…',
  'lobby.lead': 'A shared whiteboard and chat for group sessions.',

  // Dialogs
  'help.title': 'Keyboard shortcuts',
  'help.hint': 'Undo and redo only take back your own changes. On a touch screen, use two fingers to pan and zoom.',
  'help.keys.pan': 'Space + drag, middle drag',
  'help.pan': 'Pan the board',
  'help.keys.zoom': 'Wheel, Ctrl + wheel, pinch',
  'help.zoom': 'Zoom',
  'help.zoomInOut': 'Zoom in / out',
  'help.zoom100': 'Zoom to 100 %',
  'help.fit': 'Fit the board in view',
  'help.keys.shift': 'Shift while drawing',
  'help.shift': 'Straight angles, squares and circles',
  'help.keys.edit': 'Double-click, Enter',
  'help.edit': 'Edit a sticky note or text',
  'help.keys.add': 'Enter (a shape tool picked)',
  'help.add': 'Add its shape in the middle of the view',
  'help.pasteImage': 'Paste an image onto the board',
  'help.keys.delete': 'Delete, Backspace',
  'help.delete': 'Delete the selection',
  'help.keys.nudge': 'Arrow keys',
  'help.nudge': 'Nudge the selection (Shift: 10 units)',
  'help.order': 'Send to back / bring to front',
  'help.selectAll': 'Select everything',
  'help.undo': 'Undo your last change',
  'help.keys.redo': 'Ctrl + Shift + Z, Ctrl + Y',
  'help.redo': 'Redo',
  'help.keys.escape': 'Escape',
  'help.escape': 'Deselect, stop editing',
  'help.help': 'This help',

  // Board
  'tool.select': 'Select',
  'tool.pan': 'Pan',
  'tool.pen': 'Pen',
  'tool.line': 'Line',
  'tool.arrow': 'Arrow',
  'tool.rect': 'Rectangle',
  'tool.ellipse': 'Ellipse',
  'tool.sticky': 'Sticky note',
  'tool.text': 'Text',
  'tool.eraser': 'Eraser',
  'colour.black': 'Black',
  'colour.red': 'Red',
  'colour.orange': 'Orange',
  'colour.green': 'Green',
  'colour.blue': 'Blue',
  'colour.purple': 'Purple',
  'stroke.thin': 'Thin',
  'stroke.medium': 'Medium',
  'stroke.thick': 'Thick',
  'board.label': 'Whiteboard. Use the toolbar or keyboard shortcuts to pick a tool, then press Enter to add its shape in the middle of the view; press ? for help.',
  'board.editText': 'Edit text',
  'board.shapeCount': { one: '{count} shape on the board', other: '{count} shapes on the board' },
  'board.textSize': 'Text size',
  'board.textSizeNamed': 'Text size {size}',
  'size.S': 'Small',
  'size.M': 'Medium',
  'size.L': 'Large',
  'size.XL': 'Extra large',
  'board.placed.sticky': 'Sticky note added in the middle of the view. Type its text, then press Escape.',
  'board.placed.text': 'Text added in the middle of the view. Type it, then press Escape.',
  'board.placed.shape': '{label} added in the middle of the view. Arrow keys move it, Delete removes it, Enter adds another.',
  'board.undoGone': 'Your last change was already removed by someone else: nothing to undo.',
  'board.redoGone': 'That change was already removed by someone else: nothing to redo.',

  // Chat
  'chat.title': 'Chat',
  'chat.error.muted': 'A facilitator has muted you: you cannot send messages for now.',
  'chat.error.permission_denied': 'Observers cannot send messages.',
  'chat.error.session_ended': 'The session has ended: chat is read-only.',
  'chat.error.invalid_chat_message': 'That message cannot be sent (empty or too long).',
  'chat.error.document_too_large': 'Not sent: the chat of this session is full.',
  'chat.error.timeout': 'The server did not answer. Check your connection and try again.',
  'chat.newMessages': { one: '{count} new message', other: '{count} new messages' },
  'chat.newMessagesHint': 'Scroll to the newest messages',
  'chat.messages': 'Chat messages',
  'chat.empty': 'No messages yet.',
  'chat.placeholder': 'Write a message…',
  'chat.placeholderOff': 'Sending is off',
  'chat.message': 'Message',
  'chat.send': 'Send message',
  'chat.sendTitle': 'Send (Enter)',
  'chat.removed': 'message removed',
  'chat.removeFrom': 'Remove message from {name}',
  'chat.removeTitle': 'Remove this message for everyone',
  'chat.removeConfirm': 'Remove this message for everyone? Its text is deleted from the session and cannot be recovered.',
  'chat.removeMessage': 'Remove message',
  'chat.sending': 'sending…',
  'chat.sent': 'sent',
  'chat.retry': 'Retry',
  'chat.retryLabel': 'Retry sending this message',
  'chat.discard': 'Discard',
  'chat.discardLabel': 'Discard this message',
  'chat.retrying': 'not sent — retrying',

  // People
  'people.title': 'People',
  'people.list': 'People in this session',
  'people.removedList': 'Removed people',
  'people.removed': 'Removed',
  'people.mute': 'Mute {name}',
  'people.unmute': 'Unmute {name}',
  'people.muteTitle': 'Stop {name} from chatting',
  'people.unmuteTitle': 'Allow {name} to chat again',
  'people.makeObserver': 'Make observer: {name}',
  'people.makeParticipant': 'Make participant: {name}',
  'people.makeObserverTitle': 'Make {name} an observer: they can follow the board and chat but not change them',
  'people.makeParticipantTitle': 'Make {name} a participant: they can draw and chat',
  'people.remove': 'Remove {name} from the session',
  'people.removeTitle': 'Remove {name}',
  'people.removeConfirm': 'Remove {name} from this session? They are disconnected and cannot rejoin until you readmit them.',
  'people.setByFacilitator': 'Set by a facilitator in this session',
  'people.setByFacilitatorShort': ' (set by a facilitator)',
  'people.muted': 'Muted',
  'people.mutedLabel': 'muted',
  'people.readmit': 'Readmit',
  'people.readmitLabel': 'Readmit {name}',

  // Session: the gate
  'gate.notRoom': 'Not a room',
  'gate.notRoomText': 'This address does not name a room.',
  'gate.toLobby': 'Go to the lobby',
  'gate.noToken': 'No access token',
  'gate.noTokenText': 'The page embedding this session did not provide an access token.',
  'gate.askingToken': 'Asking the platform for a new access token…',
  'gate.openAgain': 'Open the session again from your platform to continue.',
  'gate.waiting': 'Waiting for the platform to provide access to this session.',
  'gate.fromPlatform': 'Open this session from your platform',
  'gate.fromPlatformText': 'Sessions are opened by the platform that embeds collab: it provides your access token. Tokens are never part of a link.',
  'gate.room': 'Room: ',
  'gate.join': 'Join ',
  'gate.devNotice': 'Development mode: this form mints a test token.',

  // Session: why the connection stopped
  'blocking.expired_token': 'Your access to this session has expired.',
  'blocking.removed': 'A facilitator removed you from this session.',
  'blocking.room_deleted': 'This room was deleted.',
  'blocking.invalid_token': 'The access token for this session is not valid.',
  'blocking.missing_token': 'This session needs an access token.',
  'blocking.wrong_room': 'The access token is for another room.',
  'blocking.invalid_name': 'This is not a valid room.',
  'blocking.invalid_payload': 'The server refused the connection request.',
  'blocking.rejoin': 'Rejoin',
  'blocking.couldNotRejoin': 'Could not rejoin: {message}',
  'blocking.removedText': 'You can no longer see or change this session. Ask the facilitator if you think this is a mistake.',
  'blocking.closed': 'The connection to this session was closed ({code}).',
  'blocking.toLobby': 'Back to the lobby',

  // Session: refused board changes
  'refused.board_locked': 'The board is locked: your last change was not saved.',
  'refused.shape_locked': 'That shape is locked by the facilitator: your last change was not saved.',
  'refused.session_ended': 'The session has ended: your last change was not saved.',
  'refused.permission_denied': 'You cannot change the board in this session.',
  'refused.schema_violation': 'The server only accepts whiteboard shapes here: your last change was not saved.',
  'refused.malformed_update': 'Your last change could not be read by the server and was not saved.',
  'refused.message_too_large': 'Your last change was too large to save.',
  'refused.document_too_large': 'The board is full: your last change was not saved.',
  'refused.store_unavailable': 'The server cannot save right now: your last change was not kept. Try again when saving is back.',

  'saving.delayed': 'Saving is delayed: the server cannot store changes right now. Your work is kept and will be saved when it can.',
  'saving.read_only': 'Saving has stopped for now: the board is read-only until the server can save again, and messages wait to be sent. Nothing already on the board is lost.',
  'saving.back': 'Saving works again: everything is saved.',
  'board.full': 'This board is full. Delete shapes to make room.',
  'board.fullReadOnly': 'This board is full: nothing more can be added until shapes are deleted.',

  // Session: toasts about the room's state
  'state.reconnected': 'Reconnected with a new access token.',
  'state.madeObserver': 'A facilitator made you an observer: you can follow the board and chat but not change them.',
  'state.madeParticipant': 'A facilitator made you a participant: you can draw and chat.',
  'state.unlocked': 'The facilitator unlocked the board.',
  'state.ended': 'The session has ended.',
  'state.mutedYou': 'A facilitator muted you in the chat.',
  'state.unmutedYou': 'You can chat again.',
  'state.offline': 'You are offline: try again when the connection is back.',
  'state.noAnswer': 'The server did not answer. Try again.',

  // Session: exports
  'export.downloaded': 'Export downloaded ({format}).',
  'export.failed': 'Export failed: {message}',
  'export.wildcard': 'Export refused: your access token covers every room under {scope} and exports need a token for this one room. The platform must open the session with a token for exactly "{room}" to export it.',
  'export.needsFacilitator': 'Export refused: exports need a facilitator\'s token for exactly this room. Ask the platform to open the session with one.',
  'export.wrongRoom': 'Export refused: your access token is for another room.',
  'export.removed': 'Export refused: a facilitator removed you from this session.',
  'export.revoked': 'Export refused: your access token was revoked.',
  'export.expired': 'Export refused: the server no longer accepts your access token (it may have expired). Open the session again from your platform.',
  'export.menu': 'Export formats',
  'export.button': 'Export the session',
  'export.label': 'Export',
  'export.json': 'Download JSON (everything)',
  'export.markdown': 'Download chat transcript (Markdown)',
  'export.svg': 'Download board (SVG)',

  // Session: shape actions
  'shapes.delete': { one: 'Delete shape', other: 'Delete {count} shapes' },
  'shapes.redactItem': { one: 'Redact shape…', other: 'Redact {count} shapes…' },
  'shapes.lockItem': { one: 'Lock shape', other: 'Lock {count} shapes' },
  'shapes.unlockItem': { one: 'Unlock shape', other: 'Unlock {count} shapes' },
  'shapes.lock': 'Lock',
  'shapes.unlock': 'Unlock',
  'shapes.lockLabel': { one: 'Lock the selected shape: participants cannot move, edit or erase it', other: 'Lock the {count} selected shapes: participants cannot move, edit or erase them' },
  'shapes.unlockLabel': { one: 'Unlock the selected shape', other: 'Unlock the {count} selected shapes' },
  'shapes.lockedDone': { one: 'Shape locked.', other: '{count} shapes locked.' },
  'shapes.unlockedDone': { one: 'Shape unlocked.', other: '{count} shapes unlocked.' },
  'shapes.lockedNotice': 'This shape is locked by the facilitator.',
  'shapes.redactConfirm': {
    one: 'Redact this shape for everyone? Unlike Delete, which can be undone, redaction removes the shape and everything in it (such as the text of a note) from the session for good: from the board, its history and the server\'s storage. It cannot be undone.',
    other: 'Redact these {count} shapes for everyone? Unlike Delete, which can be undone, redaction removes the shapes and everything in them (such as the text of a note) from the session for good: from the board, its history and the server\'s storage. It cannot be undone.'
  },
  'shapes.redact': { one: 'Redact shape', other: 'Redact {count} shapes' },
  'shapes.redacted': { one: 'Shape redacted: it is gone for everyone, for good.', other: '{count} shapes redacted: they are gone for everyone, for good.' },

  // Session: the layout
  'ui.help': 'Keyboard shortcuts and help',
  'ui.helpTitle': 'Help (?)',
  'ui.facilitatorControls': 'Facilitator controls',
  'ui.endLabel': 'End the session for everyone',
  'ui.end': 'End',
  'ui.endConfirm': 'End this session for everyone? The board and chat become read-only; this cannot be undone.',
  'ui.endSession': 'End session',
  'ui.tools': 'Drawing tools',
  'ui.toolTitle': '{label} ({key})',
  'ui.undo': 'Undo',
  'ui.undoTitle': 'Undo (Ctrl+Z)',
  'ui.redo': 'Redo',
  'ui.redoTitle': 'Redo (Ctrl+Shift+Z)',
  'ui.delete': 'Delete selection',
  'ui.deleteTitle': 'Delete (Del)',
  'ui.colour': 'Colour {name}',
  'ui.stroke': 'Stroke {name}',
  'ui.strokeTitle': '{name} stroke',
  'ui.fill': 'Fill shapes',
  'ui.fillTitle': 'Fill rectangles and ellipses',
  'ui.strokeGroup': 'Stroke width and fill',
  'ui.strokeToggle': 'More stroke options',
  'ui.style': 'Colour and stroke',
  'ui.zoomReset': 'Reset zoom to 100 %',
  'ui.zoomResetTitle': 'Reset zoom (0)',
  'ui.zoomOut': 'Zoom out',
  'ui.zoomOutTitle': 'Zoom out (−)',
  'ui.zoomIn': 'Zoom in',
  'ui.zoomInTitle': 'Zoom in (+)',
  'ui.fit': 'Fit board in view',
  'ui.fitTitle': 'Fit (F)',
  'ui.zoom': 'Zoom',
  'ui.redactLabel': 'Redact the selection',
  'ui.redactTitle': 'Remove the selected shapes and their content for good',
  'ui.redact': 'Redact',
  'ui.selection': 'Selection',
  'ui.shapeActions': 'Shape actions',
  'ui.panel': 'People and chat',
  'ui.hidePanel': 'Hide chat and people',
  'ui.showPanel': 'Show chat and people',
  'ui.showPanelUnread': { one: 'Show chat and people ({count} unread)', other: 'Show chat and people ({count} unread)' },
  'ui.lock': 'Lock',
  'ui.unlock': 'Unlock',
  'ui.lockLabel': 'Lock the board',
  'ui.unlockLabel': 'Unlock the board',

  // Session: read-only reasons and banners
  'why.disconnected': 'You are disconnected from this session.',
  'why.ended': 'The session has ended: the board is read-only.',
  'why.observing': 'You are observing: the board is read-only for you.',
  'why.locked': 'The board is locked by the facilitator.',
  'why.notSaving': 'The server cannot save right now: the board is read-only until it can.',
  'why.cannotDraw': 'You cannot draw right now.',
  'chatWhy.ended': 'The session has ended: chat is read-only.',
  'chatWhy.observer': 'Observers can read the chat but not write.',
  'chatWhy.muted': 'A facilitator has muted you: you can read the chat but not send messages.',
  'chatWhy.full': 'The chat of this session is full: no more messages can be sent.',
  'banner.ended': 'This session has ended. The board and chat are read-only.',
  'banner.lockedFacilitator': 'The board is locked: participants cannot draw. You still can.',
  'banner.locked': 'The board is locked by the facilitator: you can look but not draw.',
  'banner.madeObserver': 'A facilitator made you an observer: the board and chat are read-only for you.',
  'banner.observer': 'You are observing: the board and chat are read-only for you.',
  'banner.muted': 'You are muted: you can read the chat but not send messages.',

  // Session: the connection
  'conn.disconnected': 'Disconnected',
  'conn.synced': 'Synced',
  'conn.offline': 'Offline — your changes will sync when you are back',

  // Session: refusals of requests, in words
  'error.permission_denied': 'You are not allowed to do that.',
  'error.muted': 'A facilitator has muted you.',
  'error.session_ended': 'The session has ended.',
  'error.board_locked': 'The board is locked.',
  'error.shape_locked': 'That shape is locked.',
  'error.not_found': 'That no longer exists.',
  'error.invalid_payload': 'The server did not accept that request.',
  'error.room_unavailable': 'The room is not available right now; try again shortly.',
  'error.internal_error': 'Something went wrong on the server.',
  'error.awareness_client_not_owned': 'Your presence could not be shared (another tab?).',
  'error.document_too_large': 'There is no room left in this session for that change.',
  'error.other': 'Error: {code}',
  'redactError.not_found': 'That shape is no longer on the board: nothing was redacted.',
  'redactError.permission_denied': 'Only facilitators can redact shapes.',
  'redactError.invalid_payload': 'The server could not redact that shape (it is not a shape of this board).',
  'roleError.permission_denied': 'Only facilitators can change roles.',
  'roleError.invalid_payload': 'The server did not accept that role change.',
  'lockError.not_found': 'Those shapes are no longer on the board: nothing was locked.',
  'lockError.permission_denied': 'Only facilitators can lock shapes.',
  'lockError.invalid_payload': 'The server did not accept that lock.',
  'templates.button': 'Templates',
  'templates.label': 'Start from a template: its shapes arrive locked',
  'templates.title': 'Add a template to the board',
  'templates.hint': 'It is placed in the middle of your view. Its shapes arrive locked: participants add their own notes on top. Select one to unlock it.',
  'templates.placed': 'Template added to the board.',
  'templateError.not_found': 'That template is no longer available.',
  'templateError.document_too_large': 'The board is too full for this template: remove some shapes first.',

  // Images (images.js; protocol.md §10.6)
  'image.add': 'Image',
  'image.addTitle': 'Add an image (PNG, JPEG or WebP); you can also paste or drop one on the board',
  'image.uploading': 'Uploading the image…',
  'image.placed': 'Image added to the board.',
  'imageError.unsupported_image': 'That file is not a PNG, JPEG or WebP image the server can read.',
  'imageError.image_too_large': 'That image is too large: use a smaller one.',
  'imageError.image_quota_exceeded': 'This room has no space left for images: delete some first.',
  'imageError.images_unavailable': 'This server does not keep images.',
  'imageError.rate_limited': 'Too many images at once: wait a moment and try again.',
  'imageError.permission_denied': 'Observers cannot add images.',
  'imageError.board_locked': 'The board is locked: images cannot be added now.',
  'imageError.session_ended': 'The session has ended: images cannot be added.',
  'imageError.store_unavailable': 'The server cannot save images right now: try again in a moment.',
  'imageError.expired_token': 'Your session has expired: reload the page to add images.',
  'imageError.network': 'The image could not be sent: check your connection.',
  'imageError.other': 'The image could not be added ({code}).'
}

const es = {
  'role.facilitator': 'Facilitador/a',
  'role.participant': 'Participante',
  'role.observer': 'Observador/a',
  'common.guest': 'Invitado/a',
  'common.unknown': 'Desconocido',
  'common.you': ' (tú)',
  'common.dismiss': 'Cerrar aviso',
  'common.confirm': 'Confirmar',
  'common.cancel': 'Cancelar',
  'common.close': 'Cerrar',
  'common.yourName': 'Tu nombre',
  'common.role': 'Rol',
  'common.joinSession': 'Entrar en la sesión',
  'common.enterName': 'Escribe tu nombre.',
  'common.couldNotJoin': 'No se pudo entrar: {message}',
  'common.serverRefused': 'el servidor lo rechazó (HTTP {status})',
  'common.http': 'HTTP {status}',
  'common.connecting': 'Conectando…',
  'common.loading': 'Cargando…',

  'lobby.roomPlaceholder': 'clinica-7/grupo-a',
  'lobby.roleParticipant': 'Participante: dibujar y chatear',
  'lobby.roleFacilitator': 'Facilitador/a: moderar la sesión',
  'lobby.roleObserver': 'Observador/a: solo mirar',
  'lobby.room': 'Sala',
  'lobby.roomHelp': 'Letras, dígitos y - _ . ~; usa / para subsalas (p. ej. clinica-7/grupo-a).',
  'lobby.devNotice': 'Modo de desarrollo: esta recepción genera tokens de prueba. No la uses nunca en producción.',
  'lobby.platformNotice': 'Las sesiones las abre la plataforma que integra collab: firma un token para ti y abre la sesión con él.',
  'lobby.platformBack': 'Si has llegado a esta página directamente, vuelve a tu plataforma y abre la sesión desde allí.',
  'lobby.invalidRoom': 'Ese identificador de sala no es válido.',
  'lobby.needsToken': 'Para entrar necesitas un token de tu plataforma.',
  'lobby.joining': 'Entrando…',
  'lobby.lead': 'Una pizarra y un chat compartidos para sesiones de grupo.',

  'help.title': 'Atajos de teclado',
  'help.hint': 'Deshacer y rehacer solo afectan a tus propios cambios. En una pantalla táctil, usa dos dedos para desplazarte y hacer zoom.',
  'help.keys.pan': 'Espacio + arrastrar, arrastrar con el botón central',
  'help.pan': 'Desplazar la pizarra',
  'help.keys.zoom': 'Rueda, Ctrl + rueda, pellizcar',
  'help.zoom': 'Zoom',
  'help.zoomInOut': 'Acercar / alejar',
  'help.zoom100': 'Zoom al 100 %',
  'help.fit': 'Ajustar la pizarra a la vista',
  'help.keys.shift': 'Mayús mientras dibujas',
  'help.shift': 'Ángulos rectos, cuadrados y círculos',
  'help.keys.edit': 'Doble clic, Intro',
  'help.edit': 'Editar una nota adhesiva o un texto',
  'help.keys.add': 'Intro (con una herramienta de forma elegida)',
  'help.add': 'Añadir su forma en el centro de la vista',
  'help.pasteImage': 'Pegar una imagen en la pizarra',
  'help.keys.delete': 'Supr, Retroceso',
  'help.delete': 'Eliminar la selección',
  'help.keys.nudge': 'Teclas de flecha',
  'help.nudge': 'Mover la selección un poco (Mayús: 10 unidades)',
  'help.order': 'Enviar al fondo / traer al frente',
  'help.selectAll': 'Seleccionar todo',
  'help.undo': 'Deshacer tu último cambio',
  'help.keys.redo': 'Ctrl + Mayús + Z, Ctrl + Y',
  'help.redo': 'Rehacer',
  'help.keys.escape': 'Esc',
  'help.escape': 'Quitar la selección, dejar de editar',
  'help.help': 'Esta ayuda',

  'tool.select': 'Seleccionar',
  'tool.pan': 'Desplazar',
  'tool.pen': 'Lápiz',
  'tool.line': 'Línea',
  'tool.arrow': 'Flecha',
  'tool.rect': 'Rectángulo',
  'tool.ellipse': 'Elipse',
  'tool.sticky': 'Nota adhesiva',
  'tool.text': 'Texto',
  'tool.eraser': 'Borrador',
  'colour.black': 'Negro',
  'colour.red': 'Rojo',
  'colour.orange': 'Naranja',
  'colour.green': 'Verde',
  'colour.blue': 'Azul',
  'colour.purple': 'Morado',
  'stroke.thin': 'Fino',
  'stroke.medium': 'Medio',
  'stroke.thick': 'Grueso',
  'board.label': 'Pizarra. Usa la barra de herramientas o los atajos de teclado para elegir una herramienta y pulsa Intro para añadir su forma en el centro de la vista; pulsa ? para ver la ayuda.',
  'board.editText': 'Editar texto',
  'board.shapeCount': { one: '{count} forma en la pizarra', other: '{count} formas en la pizarra' },
  'board.textSize': 'Tamaño del texto',
  'board.textSizeNamed': 'Tamaño del texto {size}',
  'size.S': 'Pequeño',
  'size.M': 'Mediano',
  'size.L': 'Grande',
  'size.XL': 'Muy grande',
  'board.placed.sticky': 'Nota adhesiva añadida en el centro de la vista. Escribe su texto y pulsa Esc.',
  'board.placed.text': 'Texto añadido en el centro de la vista. Escríbelo y pulsa Esc.',
  'board.placed.shape': '{label}: añadido en el centro de la vista. Las flechas lo mueven, Supr lo elimina, Intro añade otro.',
  'board.undoGone': 'Otra persona ya quitó tu último cambio: no hay nada que deshacer.',
  'board.redoGone': 'Otra persona ya quitó ese cambio: no hay nada que rehacer.',

  'chat.title': 'Chat',
  'chat.error.muted': 'Un/a facilitador/a te ha silenciado: por ahora no puedes enviar mensajes.',
  'chat.error.permission_denied': 'Los observadores no pueden enviar mensajes.',
  'chat.error.session_ended': 'La sesión ha terminado: el chat es de solo lectura.',
  'chat.error.invalid_chat_message': 'Ese mensaje no se puede enviar (está vacío o es demasiado largo).',
  'chat.error.document_too_large': 'No enviado: el chat de esta sesión está lleno.',
  'chat.error.timeout': 'El servidor no respondió. Comprueba tu conexión y vuelve a intentarlo.',
  'chat.newMessages': { one: '{count} mensaje nuevo', other: '{count} mensajes nuevos' },
  'chat.newMessagesHint': 'Ir a los mensajes más recientes',
  'chat.messages': 'Mensajes del chat',
  'chat.empty': 'Todavía no hay mensajes.',
  'chat.placeholder': 'Escribe un mensaje…',
  'chat.placeholderOff': 'El envío está desactivado',
  'chat.message': 'Mensaje',
  'chat.send': 'Enviar mensaje',
  'chat.sendTitle': 'Enviar (Intro)',
  'chat.removed': 'mensaje eliminado',
  'chat.removeFrom': 'Eliminar el mensaje de {name}',
  'chat.removeTitle': 'Eliminar este mensaje para todos',
  'chat.removeConfirm': '¿Eliminar este mensaje para todos? Su texto se borra de la sesión y no se puede recuperar.',
  'chat.removeMessage': 'Eliminar mensaje',
  'chat.sending': 'enviando…',
  'chat.sent': 'enviado',
  'chat.retry': 'Reintentar',
  'chat.retryLabel': 'Volver a enviar este mensaje',
  'chat.discard': 'Descartar',
  'chat.discardLabel': 'Descartar este mensaje',
  'chat.retrying': 'no enviado: reintentando',

  'people.title': 'Personas',
  'people.list': 'Personas en esta sesión',
  'people.removedList': 'Personas expulsadas',
  'people.removed': 'Expulsadas',
  'people.mute': 'Silenciar a {name}',
  'people.unmute': 'Quitar el silencio a {name}',
  'people.muteTitle': 'Impedir que {name} escriba en el chat',
  'people.unmuteTitle': 'Permitir que {name} vuelva a escribir en el chat',
  'people.makeObserver': 'Pasar a observador/a: {name}',
  'people.makeParticipant': 'Pasar a participante: {name}',
  'people.makeObserverTitle': 'Pasar a {name} a observador/a: podrá seguir la pizarra y el chat, pero no cambiarlos',
  'people.makeParticipantTitle': 'Pasar a {name} a participante: podrá dibujar y chatear',
  'people.remove': 'Expulsar a {name} de la sesión',
  'people.removeTitle': 'Expulsar a {name}',
  'people.removeConfirm': '¿Expulsar a {name} de esta sesión? Se le desconecta y no podrá volver a entrar hasta que le readmitas.',
  'people.setByFacilitator': 'Asignado por un/a facilitador/a en esta sesión',
  'people.setByFacilitatorShort': ' (asignado por un/a facilitador/a)',
  'people.muted': 'Silenciado/a',
  'people.mutedLabel': 'silenciado/a',
  'people.readmit': 'Readmitir',
  'people.readmitLabel': 'Readmitir a {name}',

  'gate.notRoom': 'No es una sala',
  'gate.notRoomText': 'Esta dirección no corresponde a ninguna sala.',
  'gate.toLobby': 'Ir a la recepción',
  'gate.noToken': 'Sin token de acceso',
  'gate.noTokenText': 'La página que integra esta sesión no proporcionó un token de acceso.',
  'gate.askingToken': 'Pidiendo a la plataforma un nuevo token de acceso…',
  'gate.openAgain': 'Abre de nuevo la sesión desde tu plataforma para continuar.',
  'gate.waiting': 'Esperando a que la plataforma dé acceso a esta sesión.',
  'gate.fromPlatform': 'Abre esta sesión desde tu plataforma',
  'gate.fromPlatformText': 'Las sesiones las abre la plataforma que integra collab: ella te da tu token de acceso. Los tokens nunca forman parte de un enlace.',
  'gate.room': 'Sala: ',
  'gate.join': 'Entrar en ',
  'gate.devNotice': 'Modo de desarrollo: este formulario genera un token de prueba.',

  'blocking.expired_token': 'Tu acceso a esta sesión ha caducado.',
  'blocking.removed': 'Un/a facilitador/a te ha expulsado de esta sesión.',
  'blocking.room_deleted': 'Esta sala se ha eliminado.',
  'blocking.invalid_token': 'El token de acceso de esta sesión no es válido.',
  'blocking.missing_token': 'Esta sesión necesita un token de acceso.',
  'blocking.wrong_room': 'El token de acceso es de otra sala.',
  'blocking.invalid_name': 'Esta no es una sala válida.',
  'blocking.invalid_payload': 'El servidor rechazó la solicitud de conexión.',
  'blocking.rejoin': 'Volver a entrar',
  'blocking.couldNotRejoin': 'No se pudo volver a entrar: {message}',
  'blocking.removedText': 'Ya no puedes ver ni cambiar esta sesión. Habla con quien facilita la sesión si crees que es un error.',
  'blocking.closed': 'Se cerró la conexión con esta sesión ({code}).',
  'blocking.toLobby': 'Volver a la recepción',

  'refused.board_locked': 'La pizarra está bloqueada: tu último cambio no se guardó.',
  'refused.shape_locked': 'Quien facilita la sesión ha bloqueado esa forma: tu último cambio no se guardó.',
  'refused.session_ended': 'La sesión ha terminado: tu último cambio no se guardó.',
  'refused.permission_denied': 'No puedes cambiar la pizarra en esta sesión.',
  'refused.schema_violation': 'Aquí el servidor solo acepta formas de la pizarra: tu último cambio no se guardó.',
  'refused.malformed_update': 'El servidor no pudo leer tu último cambio y no se guardó.',
  'refused.message_too_large': 'Tu último cambio era demasiado grande para guardarlo.',
  'refused.document_too_large': 'La pizarra está llena: tu último cambio no se guardó.',
  'refused.store_unavailable': 'El servidor no puede guardar ahora mismo: tu último cambio no se conservó. Vuelve a intentarlo cuando se pueda guardar de nuevo.',

  'saving.delayed': 'El guardado va con retraso: el servidor no puede almacenar cambios ahora mismo. Tu trabajo se conserva y se guardará en cuanto sea posible.',
  'saving.read_only': 'El guardado se ha detenido por ahora: la pizarra es de solo lectura hasta que el servidor pueda volver a guardar, y los mensajes esperan para enviarse. No se pierde nada de lo que ya está en la pizarra.',
  'saving.back': 'El guardado vuelve a funcionar: todo está guardado.',
  'board.full': 'Esta pizarra está llena. Elimina formas para hacer sitio.',
  'board.fullReadOnly': 'Esta pizarra está llena: no se puede añadir nada más hasta que se eliminen formas.',

  'state.reconnected': 'Conectado de nuevo con un nuevo token de acceso.',
  'state.madeObserver': 'Un/a facilitador/a te ha pasado a observador/a: puedes seguir la pizarra y el chat, pero no cambiarlos.',
  'state.madeParticipant': 'Un/a facilitador/a te ha pasado a participante: puedes dibujar y chatear.',
  'state.unlocked': 'Quien facilita la sesión ha desbloqueado la pizarra.',
  'state.ended': 'La sesión ha terminado.',
  'state.mutedYou': 'Un/a facilitador/a te ha silenciado en el chat.',
  'state.unmutedYou': 'Ya puedes volver a escribir en el chat.',
  'state.offline': 'No tienes conexión: vuelve a intentarlo cuando se recupere.',
  'state.noAnswer': 'El servidor no respondió. Vuelve a intentarlo.',

  'export.downloaded': 'Exportación descargada ({format}).',
  'export.failed': 'La exportación falló: {message}',
  'export.wildcard': 'Exportación rechazada: tu token de acceso cubre todas las salas bajo {scope} y para exportar hace falta un token de esta sala concreta. La plataforma debe abrir la sesión con un token exactamente para "{room}" para poder exportarla.',
  'export.needsFacilitator': 'Exportación rechazada: para exportar hace falta un token de facilitador/a exactamente para esta sala. Pide a la plataforma que abra la sesión con uno.',
  'export.wrongRoom': 'Exportación rechazada: tu token de acceso es de otra sala.',
  'export.removed': 'Exportación rechazada: un/a facilitador/a te ha expulsado de esta sesión.',
  'export.revoked': 'Exportación rechazada: tu token de acceso fue revocado.',
  'export.expired': 'Exportación rechazada: el servidor ya no acepta tu token de acceso (puede haber caducado). Abre de nuevo la sesión desde tu plataforma.',
  'export.menu': 'Formatos de exportación',
  'export.button': 'Exportar la sesión',
  'export.label': 'Exportar',
  'export.json': 'Descargar JSON (todo)',
  'export.markdown': 'Descargar la transcripción del chat (Markdown)',
  'export.svg': 'Descargar la pizarra (SVG)',

  'shapes.delete': { one: 'Eliminar forma', other: 'Eliminar {count} formas' },
  'shapes.redactItem': { one: 'Borrar forma definitivamente…', other: 'Borrar {count} formas definitivamente…' },
  'shapes.lockItem': { one: 'Bloquear forma', other: 'Bloquear {count} formas' },
  'shapes.unlockItem': { one: 'Desbloquear forma', other: 'Desbloquear {count} formas' },
  'shapes.lock': 'Bloquear',
  'shapes.unlock': 'Desbloquear',
  'shapes.lockLabel': { one: 'Bloquear la forma seleccionada: los participantes no podrán moverla, editarla ni borrarla', other: 'Bloquear las {count} formas seleccionadas: los participantes no podrán moverlas, editarlas ni borrarlas' },
  'shapes.unlockLabel': { one: 'Desbloquear la forma seleccionada', other: 'Desbloquear las {count} formas seleccionadas' },
  'shapes.lockedDone': { one: 'Forma bloqueada.', other: '{count} formas bloqueadas.' },
  'shapes.unlockedDone': { one: 'Forma desbloqueada.', other: '{count} formas desbloqueadas.' },
  'shapes.lockedNotice': 'Quien facilita la sesión ha bloqueado esta forma.',
  'shapes.redactConfirm': {
    one: '¿Borrar esta forma definitivamente para todos? A diferencia de Eliminar, que se puede deshacer, el borrado definitivo quita la forma y todo lo que contiene (como el texto de una nota) de la sesión para siempre: de la pizarra, de su historial y del almacenamiento del servidor. No se puede deshacer.',
    other: '¿Borrar estas {count} formas definitivamente para todos? A diferencia de Eliminar, que se puede deshacer, el borrado definitivo quita las formas y todo lo que contienen (como el texto de una nota) de la sesión para siempre: de la pizarra, de su historial y del almacenamiento del servidor. No se puede deshacer.'
  },
  'shapes.redact': { one: 'Borrar forma definitivamente', other: 'Borrar {count} formas definitivamente' },
  'shapes.redacted': { one: 'Forma borrada: ha desaparecido para todos, definitivamente.', other: '{count} formas borradas: han desaparecido para todos, definitivamente.' },

  'ui.help': 'Atajos de teclado y ayuda',
  'ui.helpTitle': 'Ayuda (?)',
  'ui.facilitatorControls': 'Controles de facilitación',
  'ui.endLabel': 'Terminar la sesión para todos',
  'ui.end': 'Terminar',
  'ui.endConfirm': '¿Terminar esta sesión para todos? La pizarra y el chat pasan a ser de solo lectura; no se puede deshacer.',
  'ui.endSession': 'Terminar la sesión',
  'ui.tools': 'Herramientas de dibujo',
  'ui.toolTitle': '{label} ({key})',
  'ui.undo': 'Deshacer',
  'ui.undoTitle': 'Deshacer (Ctrl+Z)',
  'ui.redo': 'Rehacer',
  'ui.redoTitle': 'Rehacer (Ctrl+Mayús+Z)',
  'ui.delete': 'Eliminar la selección',
  'ui.deleteTitle': 'Eliminar (Supr)',
  'ui.colour': 'Color {name}',
  'ui.stroke': 'Trazo {name}',
  'ui.strokeTitle': 'Grosor: {name}',
  'ui.fill': 'Rellenar formas',
  'ui.fillTitle': 'Rellenar rectángulos y elipses',
  'ui.strokeGroup': 'Grosor del trazo y relleno',
  'ui.strokeToggle': 'Más opciones de trazo',
  'ui.style': 'Color y trazo',
  'ui.zoomReset': 'Restablecer el zoom al 100 %',
  'ui.zoomResetTitle': 'Restablecer el zoom (0)',
  'ui.zoomOut': 'Alejar',
  'ui.zoomOutTitle': 'Alejar (−)',
  'ui.zoomIn': 'Acercar',
  'ui.zoomInTitle': 'Acercar (+)',
  'ui.fit': 'Ajustar la pizarra a la vista',
  'ui.fitTitle': 'Ajustar (F)',
  'ui.zoom': 'Zoom',
  'ui.redactLabel': 'Borrar la selección definitivamente',
  'ui.redactTitle': 'Quitar para siempre las formas seleccionadas y su contenido',
  'ui.redact': 'Borrar',
  'ui.selection': 'Selección',
  'ui.shapeActions': 'Acciones de la forma',
  'ui.panel': 'Personas y chat',
  'ui.hidePanel': 'Ocultar el chat y las personas',
  'ui.showPanel': 'Mostrar el chat y las personas',
  'ui.showPanelUnread': { one: 'Mostrar el chat y las personas ({count} sin leer)', other: 'Mostrar el chat y las personas ({count} sin leer)' },
  'ui.lock': 'Bloquear',
  'ui.unlock': 'Desbloquear',
  'ui.lockLabel': 'Bloquear la pizarra',
  'ui.unlockLabel': 'Desbloquear la pizarra',

  'why.disconnected': 'Estás desconectado/a de esta sesión.',
  'why.ended': 'La sesión ha terminado: la pizarra es de solo lectura.',
  'why.observing': 'Estás como observador/a: la pizarra es de solo lectura para ti.',
  'why.locked': 'Quien facilita la sesión ha bloqueado la pizarra.',
  'why.notSaving': 'El servidor no puede guardar ahora mismo: la pizarra es de solo lectura hasta que pueda.',
  'why.cannotDraw': 'Ahora mismo no puedes dibujar.',
  'chatWhy.ended': 'La sesión ha terminado: el chat es de solo lectura.',
  'chatWhy.observer': 'Los observadores pueden leer el chat, pero no escribir.',
  'chatWhy.muted': 'Un/a facilitador/a te ha silenciado: puedes leer el chat, pero no enviar mensajes.',
  'chatWhy.full': 'El chat de esta sesión está lleno: no se pueden enviar más mensajes.',
  'banner.ended': 'Esta sesión ha terminado. La pizarra y el chat son de solo lectura.',
  'banner.lockedFacilitator': 'La pizarra está bloqueada: los participantes no pueden dibujar. Tú sí puedes.',
  'banner.locked': 'Quien facilita la sesión ha bloqueado la pizarra: puedes mirar, pero no dibujar.',
  'banner.madeObserver': 'Un/a facilitador/a te ha pasado a observador/a: la pizarra y el chat son de solo lectura para ti.',
  'banner.observer': 'Estás como observador/a: la pizarra y el chat son de solo lectura para ti.',
  'banner.muted': 'Estás silenciado/a: puedes leer el chat, pero no enviar mensajes.',

  'conn.disconnected': 'Desconectado',
  'conn.synced': 'Sincronizado',
  'conn.offline': 'Sin conexión: tus cambios se sincronizarán cuando vuelvas',

  'error.permission_denied': 'No tienes permiso para hacer eso.',
  'error.muted': 'Un/a facilitador/a te ha silenciado.',
  'error.session_ended': 'La sesión ha terminado.',
  'error.board_locked': 'La pizarra está bloqueada.',
  'error.shape_locked': 'Esa forma está bloqueada.',
  'error.not_found': 'Eso ya no existe.',
  'error.invalid_payload': 'El servidor no aceptó esa solicitud.',
  'error.room_unavailable': 'La sala no está disponible ahora mismo; vuelve a intentarlo en un momento.',
  'error.internal_error': 'Algo ha fallado en el servidor.',
  'error.awareness_client_not_owned': 'No se pudo compartir tu presencia (¿otra pestaña?).',
  'error.document_too_large': 'No queda espacio en esta sesión para ese cambio.',
  'error.other': 'Error: {code}',
  'redactError.not_found': 'Esa forma ya no está en la pizarra: no se borró nada.',
  'redactError.permission_denied': 'Solo quien facilita la sesión puede borrar formas definitivamente.',
  'redactError.invalid_payload': 'El servidor no pudo borrar esa forma (no es una forma de esta pizarra).',
  'roleError.permission_denied': 'Solo quien facilita la sesión puede cambiar los roles.',
  'roleError.invalid_payload': 'El servidor no aceptó ese cambio de rol.',
  'lockError.not_found': 'Esas formas ya no están en la pizarra: no se bloqueó nada.',
  'lockError.permission_denied': 'Solo quien facilita la sesión puede bloquear formas.',
  'lockError.invalid_payload': 'El servidor no aceptó ese bloqueo.',
  'templates.button': 'Plantillas',
  'templates.label': 'Empezar con una plantilla: sus formas llegan bloqueadas',
  'templates.title': 'Añadir una plantilla a la pizarra',
  'templates.hint': 'Se coloca en el centro de tu vista. Sus formas llegan bloqueadas: los participantes añaden sus notas encima. Selecciona una para desbloquearla.',
  'templates.placed': 'Plantilla añadida a la pizarra.',
  'templateError.not_found': 'Esa plantilla ya no está disponible.',
  'templateError.document_too_large': 'La pizarra está demasiado llena para esta plantilla: quita algunas formas primero.',

  'image.add': 'Imagen',
  'image.addTitle': 'Añadir una imagen (PNG, JPEG o WebP); también puedes pegarla o soltarla en la pizarra',
  'image.uploading': 'Subiendo la imagen…',
  'image.placed': 'Imagen añadida a la pizarra.',
  'imageError.unsupported_image': 'Ese archivo no es una imagen PNG, JPEG o WebP que el servidor pueda leer.',
  'imageError.image_too_large': 'Esa imagen es demasiado grande: usa una más pequeña.',
  'imageError.image_quota_exceeded': 'Esta sala no tiene más espacio para imágenes: borra alguna primero.',
  'imageError.images_unavailable': 'Este servidor no guarda imágenes.',
  'imageError.rate_limited': 'Demasiadas imágenes seguidas: espera un momento y vuelve a intentarlo.',
  'imageError.permission_denied': 'Los observadores no pueden añadir imágenes.',
  'imageError.board_locked': 'La pizarra está bloqueada: ahora no se pueden añadir imágenes.',
  'imageError.session_ended': 'La sesión ha terminado: no se pueden añadir imágenes.',
  'imageError.store_unavailable': 'El servidor no puede guardar imágenes ahora: inténtalo de nuevo en un momento.',
  'imageError.expired_token': 'Tu sesión ha caducado: recarga la página para añadir imágenes.',
  'imageError.network': 'No se pudo enviar la imagen: comprueba tu conexión.',
  'imageError.other': 'No se pudo añadir la imagen ({code}).'
}

/** The catalogues, by locale (the check in tests/unit/test_web_i18n.py compares their keys). */
export const CATALOGUES = { en, es }

let current = LOCALES[0]
/** The full tag the locale was chosen by (es-MX): dates and times follow its region's habits. */
let formatTag = LOCALES[0]
let timeZone

/** The first of `candidates` (BCP 47 tags) whose primary subtag is a shipped locale, or null. */
export function matchLocale (candidates) {
  for (const tag of candidates || []) {
    if (typeof tag !== 'string') continue
    const primary = tag.trim().toLowerCase().split(/[-_]/)[0]
    if (LOCALES.includes(primary)) return tag.trim().replace(/_/g, '-')
  }
  return null
}

/** Whether `zone` is an IANA time zone this browser knows. */
export function validTimeZone (zone) {
  if (typeof zone !== 'string' || !zone) return false
  try {
    Intl.DateTimeFormat('en', { timeZone: zone })
    return true
  } catch {
    return false
  }
}

/**
 * Take the locale and time zone from the page's address (`?lang=`, `?tz=`),
 * else the browser's; call once, before anything is shown.
 */
export function initLocale () {
  const params = new URLSearchParams(location.search)
  setLocale(matchLocale([params.get('lang')]) || matchLocale(navigator.languages || [navigator.language]) || LOCALES[0])
  setTimeZone(params.get('tz'))
}

/**
 * Use `locale` (a BCP 47 tag: es, es-MX) from now on, ignored unless its
 * language is shipped; `<html lang>` follows. Returns whether it was taken.
 */
export function setLocale (locale) {
  const match = matchLocale([locale])
  if (!match) return false
  current = match.toLowerCase().split('-')[0]
  try {
    formatTag = Intl.getCanonicalLocales(match)[0]
  } catch {
    formatTag = current
  }
  document.documentElement.lang = current
  return true
}

/** Show times in `zone` (IANA) from now on; ignored unless valid. Returns whether it was taken. */
export function setTimeZone (zone) {
  if (!validTimeZone(zone)) return false
  timeZone = zone
  return true
}

/** The language shown: one of LOCALES. */
export function locale () {
  return current
}

/** The time zone times are shown in: the one set, else the browser's. */
export function currentTimeZone () {
  return timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'
}

/** The message `key` in the current locale, its `{placeholders}` filled from `params`. */
export function t (key, params = {}) {
  let message = CATALOGUES[current][key] ?? en[key] ?? key
  if (typeof message === 'object') {
    const form = new Intl.PluralRules(current).select(Number(params.count))
    message = message[form] ?? message.other
  }
  return message.replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all))
}

/** A chat time (ms since the epoch) as hours and minutes in the viewer's locale and time zone. */
export function formatTime (ts) {
  const d = new Date(ts)
  if (Number.isNaN(d.getTime())) return ''
  return new Intl.DateTimeFormat(formatTag, { hour: '2-digit', minute: '2-digit', timeZone: currentTimeZone() }).format(d)
}

/** A date and time in full, in the viewer's locale and time zone (a time's tooltip). */
export function formatDateTime (ts) {
  const d = new Date(ts)
  if (Number.isNaN(d.getTime())) return ''
  return new Intl.DateTimeFormat(formatTag, { dateStyle: 'full', timeStyle: 'short', timeZone: currentTimeZone() }).format(d)
}
