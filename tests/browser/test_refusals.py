"""A board change the server refuses for its size (issue 14, finding 4), as
the people in the room see it: the author is told once, their board is
reloaded from the server (it does not drift away from everyone else's), and
their next changes reach the others. Never a reload or reconnect loop: not
when the change is over the per-update limit (``message_too_large``), nor
when it is larger than a WebSocket frame may be (the server closes the
connection with 1009 and no code; the provider would send the change again
on every reconnect)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from playwright.async_api import WebSocket, expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "refusals"
#: The per-update limit of this test's server (64 KiB).
LIMIT = "65536"
TOO_LARGE = "Your last change was too large to save."

#: Counts the notices shown, by text: a toast added, or one shown again while
#: still visible (the same element, its timer restarted).
COUNT_NOTICES = """
window.notices = {}
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType === 1 && node.classList.contains('toast')) {
        const text = node.dataset.message
        window.notices[text] = (window.notices[text] || 0) + 1
      }
    }
    if (record.type === 'attributes' && record.oldValue !== null) {
      const text = record.target.dataset.message
      window.notices[text] = (window.notices[text] || 0) + 1
    }
  }
}).observe(document, {
  childList: true, subtree: true, attributeFilter: ['data-timer'], attributeOldValue: true
})
"""


async def notices(s: SessionPage, text: str) -> int:
    return int(await s.page.evaluate("(text) => window.notices[text] || 0", text))


async def add_sticky(s: SessionPage, at: tuple[float, float], text: str) -> None:
    """A sticky note with this text: the note first, then its text, in one change."""
    await s.tool("Sticky note").click()
    await s.page.mouse.click(*await s.board_point(*at))
    editor = s.page.get_by_role("textbox", name="Edit text")
    await expect(editor).to_be_focused()
    await editor.fill(text)
    await s.page.keyboard.press("Escape")


async def refuse_then_go_on(
    browsers: Browsers, collab: CollabNode, note_chars: int, *, closes: bool = False
) -> None:
    """A participant adds a note with ``note_chars`` characters, which the
    server refuses (``closes``: by closing the connection); then goes on
    drawing, and does it once more."""
    facilitator = SessionPage(await browsers.page())
    await facilitator.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    participant = SessionPage(await browsers.page())
    if closes:
        # What the browser logs when something is sent (a ping, a cursor)
        # between the server's close frame and the socket's close event.
        log = participant.page.context.log  # type: ignore[attr-defined]
        log.allow.append(re.compile("WebSocket is already in CLOSING or CLOSED state"))
    sockets: list[WebSocket] = []
    participant.page.on("websocket", lambda ws: sockets.append(ws))
    await participant.page.add_init_script(COUNT_NOTICES)
    await participant.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    assert len(sockets) == 3  # board, chat, meta

    await participant.draw_rect((0.1, 0.1), (0.2, 0.2))
    await expect(facilitator.shapes("rect")).to_have_count(1)
    await add_sticky(participant, (0.5, 0.4), "big " + "x" * note_chars)

    # Told once, calmly; the board is the server's again: the note is there
    # (it was stored before its text), the refused text is nowhere.
    await expect(participant.toast(TOO_LARGE)).to_have_count(1)
    await participant.wait_synced()
    for s in (participant, facilitator):
        await expect(s.shapes("sticky")).to_have_count(1)
        await expect(s.page.locator(".sticky-text", has_text="big ")).to_have_count(0)
        await expect(s.shapes("rect")).to_have_count(1)

    # What the participant does next reaches everyone (no silent divergence),
    # and the facilitator's changes reach the participant.
    await participant.draw_rect((0.6, 0.6), (0.8, 0.8))
    await add_sticky(participant, (0.3, 0.7), "small note")
    await expect(facilitator.shapes("rect")).to_have_count(2)
    await expect(facilitator.page.locator(".sticky-text", has_text="small note")).to_have_count(1)
    await facilitator.draw_rect((0.05, 0.6), (0.15, 0.7))
    await expect(participant.shapes("rect")).to_have_count(3)
    # The board was loaded again once: no reconnect or reload loop.
    assert len(sockets) == 4, len(sockets)
    assert await notices(participant, TOO_LARGE) == 1
    await expect(participant.page.locator(".toast-error")).to_have_count(0)
    assert await facilitator.page.locator(".toast").count() == 0

    # A second refused change is told, and handled, once more.
    await add_sticky(participant, (0.7, 0.2), "again " + "y" * note_chars)
    await expect(participant.page.locator(".sticky-text", has_text="again ")).to_have_count(0)
    await participant.wait_synced()
    await facilitator.draw_rect((0.85, 0.85), (0.95, 0.95))
    await expect(participant.shapes("rect")).to_have_count(4)
    assert await notices(participant, TOO_LARGE) == 2
    assert len(sockets) == 5, len(sockets)
    await expect(participant.shapes("sticky")).to_have_count(3)
    await browsers.screenshot(participant.page, "refused-change-participant")


async def test_a_change_over_the_update_limit_reloads_the_board_once(
    browsers: Browsers, collab_factory: Callable[..., Awaitable[CollabNode]]
) -> None:
    collab = await collab_factory("--max-message-bytes", LIMIT)
    await refuse_then_go_on(browsers, collab, 100_000)


async def test_a_change_over_the_frame_limit_reloads_the_board_once(
    browsers: Browsers, collab_factory: Callable[..., Awaitable[CollabNode]]
) -> None:
    """600 KB: over every limit of this server, the WebSocket frame's too
    where it is derived from them (protocol.md §1, §8)."""
    caps = ("--max-board-bytes", LIMIT, "--max-chat-bytes", LIMIT, "--max-meta-bytes", LIMIT)
    collab = await collab_factory("--max-message-bytes", LIMIT, *caps)
    await refuse_then_go_on(browsers, collab, 600_000, closes=True)


async def test_changes_refused_for_their_rate_reach_everyone(
    browsers: Browsers, collab_factory: Callable[..., Awaitable[CollabNode]]
) -> None:
    """Shapes drawn faster than the server takes updates (``rate_limited``,
    protocol.md §8.2): the board connects again, keeping its document, and
    the handshake delivers what was refused. No notice, no error."""
    collab = await collab_factory(
        "--update-rate-per-s", "2", "--update-burst", "4", "--max-refusals-per-min", "1000"
    )
    facilitator = SessionPage(await browsers.page())
    await facilitator.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    participant = SessionPage(await browsers.page())
    await participant.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    for i in range(4):  # each drag is an update per pointer move
        await participant.draw_rect((0.1 + 0.2 * i, 0.2), (0.2 + 0.2 * i, 0.4 + 0.1 * i))
    await participant.tool("Select").click()
    await participant.page.keyboard.press("Escape")  # nothing selected
    drawn = await participant.page.locator(".shapes").inner_html()
    # Every shape, as the participant drew it, reaches the facilitator.
    await expect(facilitator.page.locator(".shapes")).to_have_js_property("innerHTML", drawn)
    await participant.wait_synced()
    await expect(participant.page.locator(".toast")).to_have_count(0)
