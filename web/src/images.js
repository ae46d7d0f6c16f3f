// Images on the board (protocol.md §5.1, §10.6): uploading a picture with the
// session's token, then showing stored pictures. An <image> cannot send the
// Authorization header the server asks for, so each picture is fetched with
// it once and shown from an object URL, cached per digest.
import { el, svg, toast } from './util.js'
import { t } from './i18n.js'

/** What the server takes (it decodes the bytes to be sure). */
export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp']
/** A new image is placed at most this many board units wide and high. */
export const MAX_PLACED_SIZE = 400
/** A picture larger than this is not sent, unless the server says otherwise (/web/config.json). */
const MAX_UPLOAD_BYTES = 5 * 1024 * 1024
/** Files taken from one paste or drop. */
const MAX_FILES = 5
/** An image's `src`: a digest, 64 lowercase hex digits. */
export const isDigest = (value) => typeof value === 'string' && /^[0-9a-f]{64}$/.test(value)

/** Refusals of an upload (§7, §10.6), in words; the catalogue's `imageError.<code>`. */
const UPLOAD_ERRORS = [
  'unsupported_image', 'image_too_large', 'image_quota_exceeded', 'images_unavailable', 'rate_limited',
  'permission_denied', 'board_locked', 'session_ended', 'store_unavailable', 'expired_token'
]

/** An upload the server (or this page) refused, with the words to show. */
export class ImageError extends Error {
  constructor (code, message) {
    super(message)
    this.code = code
  }
}

/** The room's pictures: upload, and fetch-once object URLs. */
export class ImageStore {
  constructor ({ room, token, maxBytes = null }) {
    this.room = room
    this.token = token
    /** The server's --max-image-bytes (its default when not known). */
    this.maxBytes = maxBytes || MAX_UPLOAD_BYTES
    /** digest → Promise of an object URL (null: not available now). */
    this.urls = new Map()
  }

  setToken (token) {
    this.token = token
  }

  path (suffix = '') {
    return '/api/rooms/' + encodeURIComponent(this.room) + '/images' + suffix
  }

  /** Upload a File or Blob; the server's answer {id, width, height, mediaType}, or an ImageError. */
  async upload (file) {
    if (!IMAGE_TYPES.includes(file.type)) throw new ImageError('unsupported_image', t('imageError.unsupported_image'))
    if (file.size > this.maxBytes) throw new ImageError('image_too_large', t('imageError.image_too_large'))
    let res
    try {
      res = await fetch(this.path(), {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + this.token, 'Content-Type': file.type },
        body: file
      })
    } catch (err) {
      throw new ImageError('network', t('imageError.network'))
    }
    const body = await res.json().catch(() => ({}))
    if (res.ok && isDigest(body.id)) {
      // Ours now: the bytes sent are not the stored ones (re-encoded), so fetch those.
      return body
    }
    const code = (body.error && body.error.code) || 'http'
    const words = UPLOAD_ERRORS.includes(code) ? t('imageError.' + code) : t('imageError.other', { code })
    throw new ImageError(code, words)
  }

  /** The object URL of a stored picture (cached), or null if it cannot be had now. */
  get (digest) {
    let url = this.urls.get(digest)
    if (!url) {
      url = this.fetch(digest)
      this.urls.set(digest, url)
      // Not there (yet, or any more): asked again the next time it is drawn.
      url.then((u) => { if (!u && this.urls.get(digest) === url) this.urls.delete(digest) })
    }
    return url
  }

  async fetch (digest) {
    try {
      const res = await fetch(this.path('/' + digest), { headers: { Authorization: 'Bearer ' + this.token } })
      if (!res.ok) return null
      return URL.createObjectURL(await res.blob())
    } catch {
      return null
    }
  }

  /** Forget every picture (a new session): their object URLs are released. */
  clear () {
    for (const url of this.urls.values()) url.then((u) => u && URL.revokeObjectURL(u))
    this.urls.clear()
  }
}

/** The SVG node of an image shape: its picture, or a frame while it loads or if it is gone. */
export function imageNode (attrs) {
  return svg('g', attrs,
    svg('rect', { class: 'image-frame', rx: 2 }),
    svg('image', { class: 'image-picture', preserveAspectRatio: 'none' }))
}

/** Put an image shape's box and picture on its node (the picture when it has arrived). */
export function updateImageNode (node, s, box, images) {
  const [frame, picture] = node.children
  for (const n of [frame, picture]) {
    n.setAttribute('x', box.x)
    n.setAttribute('y', box.y)
    n.setAttribute('width', box.w)
    n.setAttribute('height', box.h)
  }
  if (node.dataset.src === s.src) return
  node.dataset.src = s.src
  node.dataset.state = 'loading'
  picture.removeAttribute('href')
  if (!images) return
  images.get(s.src).then((url) => {
    if (node.dataset.src !== s.src) return // changed meanwhile
    node.dataset.state = url ? 'shown' : 'missing'
    if (url) picture.setAttribute('href', url)
    else delete node.dataset.src // drawn again later: asked again then
  })
}

/** The files of a paste or a drop that may be pictures (the server decides), at most MAX_FILES. */
export function imageFiles (dataTransfer) {
  if (!dataTransfer) return []
  const files = [...(dataTransfer.files || [])]
  return files.filter((f) => f.type.startsWith('image/')).slice(0, MAX_FILES)
}

/**
 * The ways a picture gets on the board: the Image button (a file picker), a
 * paste, a drop on the board (placed where it falls). Each file is uploaded
 * with the session's token, then placed (board.placeImage). `canAdd()` says
 * whether this user may add now, and says why not when not. Returns the file
 * input (to put in the page) and `unbind`.
 */
export function bindImageInput ({ store, board, button, canAdd }) {
  const input = el('input', { type: 'file', class: 'image-input', accept: IMAGE_TYPES.join(','), multiple: true, hidden: true, tabindex: -1 })
  const place = async (files, at = null) => {
    for (const file of files) {
      board.announce(t('image.uploading'))
      try {
        board.placeImage(await store.upload(file), at)
      } catch (err) {
        toast(err instanceof ImageError ? err.message : t('imageError.network'), 'error')
      }
    }
  }
  input.addEventListener('change', () => {
    const files = [...input.files].slice(0, MAX_FILES)
    input.value = ''
    place(files)
  })
  button.addEventListener('click', () => { if (canAdd()) input.click() })
  const onPaste = (e) => {
    const target = e.target
    if (target && (target.isContentEditable || ['INPUT', 'TEXTAREA'].includes(target.tagName))) return
    const files = imageFiles(e.clipboardData)
    if (!files.length) return
    e.preventDefault()
    if (canAdd()) place(files)
  }
  const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files')
  const onDragOver = (e) => {
    if (!hasFiles(e)) return
    e.preventDefault()
    board.svg.classList.add('dropping')
  }
  const onDragLeave = () => board.svg.classList.remove('dropping')
  const onDrop = (e) => {
    if (!hasFiles(e)) return
    e.preventDefault()
    board.svg.classList.remove('dropping')
    const files = imageFiles(e.dataTransfer)
    if (files.length && canAdd()) place(files, board.toBoard(e))
  }
  document.addEventListener('paste', onPaste)
  board.root.addEventListener('dragover', onDragOver)
  board.root.addEventListener('dragleave', onDragLeave)
  board.root.addEventListener('drop', onDrop)
  const unbind = () => {
    document.removeEventListener('paste', onPaste)
    board.root.removeEventListener('dragover', onDragOver)
    board.root.removeEventListener('dragleave', onDragLeave)
    board.root.removeEventListener('drop', onDrop)
  }
  return { input, unbind }
}
