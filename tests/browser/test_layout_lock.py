"""Calm notices (issue 16, finding 10): a locked participant's attempt to draw
does not move their view and the lock is told once (its banner, pointed at
again, no toast); toasts stack without covering each other or the middle of
the board, at most three, the oldest dropped."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.browser.test_layout import overlap
from tests.procs import CollabNode

ROOM = "clinic-7/calm"

#: The board's view transform (pan and zoom).
VIEW = "document.querySelector('.board .viewport').getAttribute('transform')"

#: The most toasts shown at once (``window.mostToasts``).
COUNT_TOASTS = """
window.mostToasts = 0
new MutationObserver(() => {
  window.mostToasts = Math.max(window.mostToasts, document.querySelectorAll('.toast').length)
}).observe(document, { childList: true, subtree: true })
"""


async def join_both(
    browsers: Browsers, collab: CollabNode, **options: Any
) -> tuple[SessionPage, SessionPage]:
    fac = SessionPage(await browsers.page(**options))
    par = SessionPage(await browsers.page(**options))
    await par.page.add_init_script(COUNT_TOASTS)
    await fac.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await par.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    return fac, par


async def test_a_locked_participant_keeps_their_view_and_one_notice(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac, par = await join_both(browsers, collab)
    page = par.page
    await par.tool("Pen").click()
    await fac.page.get_by_role("button", name="Lock the board").click()
    banner = par.banner("locked")
    await expect(banner).to_be_visible()
    # The lock is told by its banner alone.
    await expect(page.locator(".toast")).to_have_count(0)
    view = await page.evaluate(VIEW)

    # A drag with the pen in hand is an attempt to draw: the view stays, the
    # banner is pointed at (and announced again), no toast.
    await par.drag((0.3, 0.3), (0.6, 0.6))
    await expect(banner).to_have_attribute("data-attention", "1")
    assert await page.evaluate(VIEW) == view
    await expect(page.locator(".toast")).to_have_count(0)
    await expect(page.locator("[data-banner]:visible")).to_have_count(1)
    await expect(par.shapes()).to_have_count(0)
    await browsers.screenshot(page, "locked-attempt")
    # So is a tool's shortcut.
    await par.board.focus()
    await page.keyboard.press("r")
    await expect(banner).to_have_attribute("data-attention", "2")
    await expect(page.locator(".toast")).to_have_count(0)
    assert await page.evaluate(VIEW) == view

    # Panning stays at hand: the Pan tool, picked, pans.
    await par.tool("Pan").click()
    await par.drag((0.3, 0.3), (0.5, 0.4))
    assert await page.evaluate(VIEW) != view
    await expect(banner).to_have_attribute("data-attention", "2")

    # The unlock takes the banner away and is told once.
    await fac.page.get_by_role("button", name="Unlock the board").click()
    await expect(banner).to_have_count(0)
    await expect(par.toast("unlocked the board")).to_have_count(1)
    await expect(page.locator(".toast")).to_have_count(1)
    # The pen is back in hand.
    await expect(par.tool("Pen")).to_have_attribute("aria-pressed", "true")


@pytest.mark.parametrize(
    "viewport",
    [{"width": 1280, "height": 720}, {"width": 640, "height": 360}],
    ids=["desktop", "zoom200"],
)
async def test_toasts_stack_bounded(
    browsers: Browsers, collab: CollabNode, viewport: dict[str, int]
) -> None:
    fac, par = await join_both(browsers, collab, viewport=viewport)
    page = par.page
    # Five changes for Ann, each told by a toast of its own.
    steps = [
        ("Mute Ann", "muted you"),
        ("Unmute Ann", "You can chat again"),
        ("Make observer: Ann", "made you an observer"),
        ("Make participant: Ann", "made you a participant"),
    ]
    for button, text in steps:
        await fac.page.get_by_role("button", name=button).click()
        await expect(par.toast(text)).to_have_count(1)
    await fac.page.get_by_role("button", name="Lock the board").click()
    await expect(par.banner("locked")).to_be_visible()
    await fac.page.get_by_role("button", name="Unlock the board").click()
    await expect(par.toast("unlocked the board")).to_be_visible()

    # At most three at once, and no higher than 30 % of the window (two
    # here at 200 % zoom), the oldest gone first (they last 5 s: the first
    # are dropped, not expired).
    shown = 3 if viewport["height"] >= 720 else 2
    assert await page.evaluate("window.mostToasts") == shown
    toasts = page.locator(".toast")
    await expect(toasts).to_have_count(shown)
    stack = await page.locator(".toasts").bounding_box()
    assert stack is not None and stack["height"] <= 0.3 * viewport["height"], stack
    await expect(par.toast("muted you")).to_have_count(0)
    await expect(par.toast("You can chat again")).to_have_count(0)
    await expect(toasts.last).to_contain_text("unlocked the board")
    # Side by side, none over another, none over the middle of the board.
    boxes = [b for b in [await t.bounding_box() for t in await toasts.all()] if b]
    assert len(boxes) == shown
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not overlap(a, b), (a, b)
    board = await page.locator(".board-area").bounding_box()
    assert board is not None
    cx, cy = board["x"] + board["width"] / 2, board["y"] + board["height"] / 2
    for b in boxes:
        covers = b["x"] <= cx <= b["x"] + b["width"] and b["y"] <= cy <= b["y"] + b["height"]
        assert not covers, (b, cx, cy)
    await browsers.screenshot(page, f"toasts-{viewport['width']}")
