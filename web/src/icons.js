// Inline SVG icons (24×24, stroked), so the app needs no image files.
import { svg } from './util.js'

const PATHS = {
  select: 'M5 3l13 8.5-6 1.2L9 19z',
  pan: 'M12 3v18M3 12h18M12 3l-3 3M12 3l3 3M12 21l-3-3M12 21l3-3M3 12l3-3M3 12l3 3M21 12l-3-3M21 12l-3 3',
  pen: 'M4 20l1-4L16 5l3 3L8 19zM14 7l3 3',
  line: 'M5 19L19 5',
  arrow: 'M5 19L19 5M10 5h9v9',
  rect: 'M4 6h16v12H4z',
  ellipse: 'M12 6c4.4 0 8 2.7 8 6s-3.6 6-8 6-8-2.7-8-6 3.6-6 8-6z',
  sticky: 'M5 4h14v10l-5 6H5zM14 20v-6h5',
  text: 'M5 6V4h14v2M12 4v16M9 20h6',
  image: 'M4 5h16v14H4zM4 16l5-5 5 5M13 14l3-3 4 4M16 8.5a1.5 1.5 0 100 .01',
  eraser: 'M9 20h11M4.5 15.5l9-9 6 6-7.5 7.5H8.5z',
  undo: 'M9 14L4 9l5-5M4 9h10.5a5.5 5.5 0 010 11H11',
  redo: 'M15 14l5-5-5-5M20 9H9.5a5.5 5.5 0 000 11H13',
  trash: 'M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6',
  plus: 'M12 5v14M5 12h14',
  minus: 'M5 12h14',
  fit: 'M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5',
  help: 'M9.5 9a2.5 2.5 0 115 0c0 2-2.5 2-2.5 4M12 17v.5',
  lock: 'M6 11h12v9H6zM8 11V7a4 4 0 018 0v4',
  unlock: 'M6 11h12v9H6zM8 11V7a4 4 0 017.5-2',
  chat: 'M4 5h16v11H9l-5 4z',
  users: 'M9 11a3.5 3.5 0 100-7 3.5 3.5 0 000 7zM2.5 20c.5-3.5 3-5.5 6.5-5.5s6 2 6.5 5.5M16 4.5a3.5 3.5 0 010 6.5M18 14.5c2 .6 3.2 2.6 3.5 5.5',
  download: 'M12 4v11M7 10l5 5 5-5M5 20h14',
  send: 'M4 12l16-8-6 16-2.5-6.5z',
  mute: 'M4 5h16v11H9l-5 4zM3 3l18 18',
  unmute: 'M4 5h16v11H9l-5 4z',
  remove: 'M9 11a3.5 3.5 0 100-7 3.5 3.5 0 000 7zM2.5 20c.5-3.5 3-5.5 6.5-5.5 1.7 0 3.1.5 4.2 1.3M16 14l5 5M21 14l-5 5',
  readmit: 'M9 11a3.5 3.5 0 100-7 3.5 3.5 0 000 7zM2.5 20c.5-3.5 3-5.5 6.5-5.5 1.7 0 3.1.5 4.2 1.3M15 17l2 2 4-4',
  end: 'M6 6h12v12H6z',
  full: 'M4 5h16v14H4zM12 8.5v5M12 16.5v.5',
  close: 'M6 6l12 12M18 6L6 18',
  fill: 'M5 5h14v14H5z',
  template: 'M4 4h7v7H4zM13 4h7v7h-7zM4 13h7v7H4zM13 13h7v7h-7z',
  history: 'M4 12a8 8 0 103-6.2M4 4v4h4M12 8v4l3 2',
  redact: 'M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13',
  eye: 'M2 12s3.5-7 10-7 10 7 10 7-3.5 7-10 7S2 12 2 12zM12 15a3 3 0 100-6 3 3 0 000 6z',
  cloudOff: 'M7 18h10a4 4 0 00.6-7.95A6 6 0 006.1 9.6 4.2 4.2 0 007 18zM3 3l18 18',
  hand: 'M8 12.5V5.5a1.5 1.5 0 013 0V11M11 10.5V4a1.5 1.5 0 013 0v7M14 10.5V5.5a1.5 1.5 0 013 0V14c0 4-2.6 7-6.2 7-2.4 0-4-1.3-5.4-3.5l-2.1-3.6a1.5 1.5 0 012.5-1.6L8 14.5',
  megaphone: 'M3 10v4h3l8 4.5v-13L6 10zM17.5 9a4 4 0 010 6M6 14l1.5 5.5h3L9.5 15'
}

/** An icon as an inline <svg> (decorative: the button carries the label). */
export function icon (name, size = 20) {
  const node = svg('svg', {
    viewBox: '0 0 24 24',
    width: size,
    height: size,
    fill: 'none',
    stroke: 'currentColor',
    'stroke-width': 2,
    'stroke-linecap': 'round',
    'stroke-linejoin': 'round',
    'aria-hidden': 'true',
    focusable: 'false',
    class: 'icon'
  }, svg('path', { d: PATHS[name] || PATHS.help }))
  if (name === 'fill') node.firstChild.setAttribute('fill', 'currentColor')
  return node
}
