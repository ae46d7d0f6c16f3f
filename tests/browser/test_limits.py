"""Documents at their size limit (protocol.md §8.3), as the people in the room
see them: the server refuses what would grow a full document and lists it
under ``full`` in ``room:state`` (§6.4); the app says so once, calmly, and
deleting makes room again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "limits"
#: The smallest size limit the server takes (64 KiB).
LIMIT = "65536"
#: Characters of one sticky note: eight of them are more than the limit.
NOTE_CHARS = 9000
#: Characters of one chat message (the limit is 4000).
MESSAGE_CHARS = 3900
FULL_TEXT = "This board is full. Delete shapes to make room."
CHAT_FULL_TEXT = "The chat of this session is full"

#: Sets ``window.fullBannerGone`` if the page is ever rendered without the
#: board-full notice from now on (the banners are re-rendered on each change).
WATCH_FULL_BANNER = """() => {
  window.fullBannerGone = false
  const banners = document.querySelector('.banners')
  new MutationObserver(() => {
    if (!banners.querySelector('[data-banner="full"]')) window.fullBannerGone = true
  }).observe(banners, { childList: true, subtree: true })
}"""


async def join_both(browsers: Browsers, collab: CollabNode) -> tuple[SessionPage, SessionPage]:
    facilitator = SessionPage(await browsers.page())
    participant = SessionPage(await browsers.page())
    await facilitator.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await participant.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    return facilitator, participant


async def add_sticky(s: SessionPage, at: tuple[float, float], text: str) -> None:
    """A sticky note with this text: the text goes in as one change."""
    await s.tool("Sticky note").click()
    await s.page.mouse.click(*await s.board_point(*at))
    editor = s.page.get_by_role("textbox", name="Edit text")
    await expect(editor).to_be_focused()
    await editor.fill(text)
    await s.page.keyboard.press("Escape")


async def test_full_board_is_shown_to_everyone_and_deleting_makes_room(
    browsers: Browsers, collab_factory: Callable[..., Awaitable[CollabNode]]
) -> None:
    collab = await collab_factory("--max-board-bytes", LIMIT)
    fac, par = await join_both(browsers, collab)
    full_banner = fac.banner("full")

    # Large notes until the server refuses one: each is either stored (the
    # facilitator sees its text) or refused (the room is told the board is full).
    refused_at = None
    for i in range(16):
        marker = f"note {i:02d} "
        await add_sticky(
            par, (0.12 + 0.15 * (i % 6), 0.2 + 0.3 * (i // 6)), marker + "x" * NOTE_CHARS
        )
        stored = fac.page.locator(".sticky-text", has_text=marker)
        await expect(stored.or_(full_banner).first).to_be_visible()
        if await full_banner.is_visible():
            refused_at = i
            break
    assert refused_at is not None and refused_at >= 4, refused_at
    marker = f"note {refused_at:02d} "

    # Everyone sees the notice, facilitators included, as a polite status.
    for s in (par, fac):
        await expect(s.banner("full")).to_have_text(FULL_TEXT)
        await expect(s.banner("full")).to_have_attribute("role", "status")
        await expect(s.page.locator(".banners")).to_have_attribute("aria-live", "polite")
        # Adding is off; selecting, erasing and deleting are not.
        await expect(s.tool("Sticky note")).to_be_disabled()
        await expect(s.tool("Pen")).to_be_disabled()
        await expect(s.tool("Select")).to_be_enabled()
        await expect(s.tool("Eraser")).to_be_enabled()
    # The refused text is nowhere: the participant's board was reloaded from the server.
    for s in (par, fac):
        await expect(s.page.locator(".sticky-text", has_text=marker)).to_have_count(0)
        await expect(s.page.locator(".sticky-text", has_text="note 00 ")).to_have_count(1)
    notes = refused_at + 1  # the refused note's (empty) sticky was stored before its text
    await expect(par.shapes("sticky")).to_have_count(notes)

    # A shortcut for a tool that adds is answered here, not sent to be refused.
    await par.board.focus()
    await par.page.keyboard.press("s")
    await expect(par.toast(FULL_TEXT)).to_have_count(1)
    await expect(par.shapes("sticky")).to_have_count(notes)
    # Calm: no error toast, and at most one warning about the refused change.
    for s in (par, fac):
        await expect(s.page.locator(".toast-error")).to_have_count(0)
    assert await par.toast("not saved").count() <= 1
    assert await fac.page.locator(".toast").count() == 0
    await browsers.screenshot(par.page, "board-full-participant")
    await browsers.screenshot(fac.page, "board-full-facilitator")

    # The room's state on connect says so too.
    await fac.page.reload()
    await fac.wait_synced()
    await expect(fac.banner("full")).to_have_text(FULL_TEXT)

    # Changes of the meta document (a lock) do not hide the notice, not even
    # for a moment: only room:state knows which documents are full.
    await par.page.evaluate(WATCH_FULL_BANNER)
    await fac.page.get_by_role("button", name="Lock the board").click()
    await expect(par.banner("locked")).to_be_visible()
    await expect(par.banner("full")).to_have_text(
        "This board is full: nothing more can be added until shapes are deleted."
    )
    await fac.page.get_by_role("button", name="Unlock the board").click()
    await expect(par.banner("locked")).to_have_count(0)
    await expect(par.banner("full")).to_have_text(FULL_TEXT)
    assert await par.page.evaluate("window.fullBannerGone") is False

    # Deleting (every note, at once) makes room: the notice goes for everyone.
    await par.tool("Select").click()
    await par.board.focus()
    await par.page.keyboard.press("Control+a")
    await par.page.keyboard.press("Delete")
    await expect(fac.shapes()).to_have_count(0)
    for s in (par, fac):
        await expect(s.banner("full")).to_have_count(0)
        await expect(s.tool("Sticky note")).to_be_enabled()

    # A new shape is accepted again (the facilitator gets it from the server).
    await par.draw_rect((0.3, 0.3), (0.5, 0.5))
    await expect(fac.shapes("rect")).to_have_count(1)
    await add_sticky(par, (0.7, 0.6), "room again")
    await expect(fac.page.locator(".sticky-text")).to_have_text("room again")
    await expect(par.banner("full")).to_have_count(0)


async def test_full_chat_says_so_once(
    browsers: Browsers, collab_factory: Callable[..., Awaitable[CollabNode]]
) -> None:
    collab = await collab_factory("--max-chat-bytes", LIMIT)
    fac, par = await join_both(browsers, collab)
    failed = par.page.locator("li.chat-message.failed")

    # Long messages until one is refused (well within the chat burst of 20).
    refused_at = None
    for i in range(19):
        marker = f"message {i:02d} "
        await par.chat_input.fill(marker + "y" * MESSAGE_CHARS)
        await par.chat_input.press("Enter")
        await expect(par.chat_message(marker).or_(failed).first).to_be_visible()
        if await failed.count():
            refused_at = i
            break
    assert refused_at is not None and refused_at >= 4, refused_at

    # One clear message on the refused one, and sending is off for everyone, with why.
    await expect(failed.locator(".chat-error")).to_have_text(
        "Not sent: the chat of this session is full."
    )
    await expect(par.page.locator(".chat-error")).to_have_count(1)
    for s in (par, fac):
        await expect(s.chat_input).to_be_disabled()
        await expect(s.page.locator(".chat-notice")).to_contain_text(CHAT_FULL_TEXT)
        await expect(s.page.locator(".toast")).to_have_count(0)
    # What was stored stays readable.
    await expect(fac.chat_message("message 00 ")).to_be_visible()
    await expect(fac.page.locator("li.chat-message")).to_have_count(refused_at)
    await browsers.screenshot(par.page, "chat-full-participant")
