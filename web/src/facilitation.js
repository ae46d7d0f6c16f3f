// Session activities on the board (protocol.md §6.6): the shared timer
// (timer.js), follow me and bring everyone here (follow.js), the laser
// pointer (pointer.js), and the server's clock they go by (clock.js). The
// session (session.js) builds one, places its elements on the board area,
// and tells it about its documents, its providers and the room's state.
import { el, svg } from './util.js'
import { t } from './i18n.js'
import { ServerClock } from './clock.js'
import { SharedTimer } from './timer.js'
import { FollowMe } from './follow.js'
import { LaserPointer } from './pointer.js'

const PATHS = {
  timer: 'M12 21a8 8 0 100-16 8 8 0 000 16zM12 9v4l2.5 2M9 2h6',
  follow: 'M2 12s3.5-7 10-7 10 7 10 7-3.5 7-10 7S2 12 2 12zM12 15a3 3 0 100-6 3 3 0 000 6z',
  bring: 'M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5M12 8v8M8 12h8',
  pointer: 'M12 14a2 2 0 100-4 2 2 0 000 4zM12 3v3M12 18v3M3 12h3M18 12h3M5.6 5.6l2 2M16.4 16.4l2 2',
  pause: 'M8 5v14M16 5v14',
  play: 'M7 5l12 7-12 7z',
  stop: 'M6 6h12v12H6z'
}

/** A decorative icon of this module's (the button carries the label), as icons.js draws them. */
function icon (name, size = 20) {
  return svg('svg', {
    viewBox: '0 0 24 24', width: size, height: size, fill: 'none', stroke: 'currentColor', 'stroke-width': 2,
    'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true', focusable: 'false', class: 'icon'
  }, svg('path', { d: PATHS[name] }))
}

export class Facilitation {
  /**
   * `canvas`: the board; `user`: this page's identity; `moderate(event,
   * payload, messages)`: the session's acknowledged events (they show their
   * refusals).
   */
  constructor ({ canvas, user, isFacilitator, moderate }) {
    this.clock = new ServerClock()
    this.announcer = el('p', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' })
    const announce = (text) => { this.announcer.textContent = text }
    this.timer = new SharedTimer({ clock: this.clock, isFacilitator, moderate, announce, icon })
    this.follow = new FollowMe({ canvas, clock: this.clock, user, isFacilitator, moderate, icon })
    this.pointer = new LaserPointer({ canvas, clock: this.clock, icon })
    // The countdown and the follow banner, over the board's top; the buttons, at its bottom.
    this.status = el('div', { class: 'activity-status' }, this.timer.root, this.follow.banner, this.announcer)
    const buttons = [this.pointer.button]
    if (isFacilitator) buttons.push(this.follow.followButton, this.follow.bringButton, this.timer.openButton)
    this.bar = el('div', { class: 'facilitationbar', role: 'toolbar', 'aria-label': t('activity.bar') }, buttons)
    canvas.onView = (view) => {
      this.follow.viewChanged(view)
      this.pointer.schedule()
    }
  }

  /** The elements to place on the board area (the bar goes with the session's others: session.js). */
  get elements () {
    return [this.status]
  }

  /** The room's meta document and its provider (the server's clock comes over its socket). */
  attachMeta (metaDoc, provider) {
    this.clock.watch(provider.socket)
    this.timer.attach(metaDoc)
    this.follow.attachMeta(metaDoc, provider)
  }

  /** A (new) board provider: its awareness carries views and pointers. */
  attachBoard (provider) {
    this.follow.attachBoard(provider)
    this.pointer.attachBoard(provider)
  }

  /** The room's state changed: `{ role, live }` (live: connected and the session not ended). */
  render ({ role, live }) {
    this.pointer.setAllowed(role !== 'observer' && live)
    this.timer.setEnabled(live)
    this.follow.setEnabled(live)
    this.bar.hidden = !this.bar.querySelector('button:not([hidden])')
  }

  destroy () {
    this.clock.stop()
    this.timer.destroy()
    this.follow.destroy()
    this.pointer.destroy()
  }
}
