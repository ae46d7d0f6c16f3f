"""Narrow and short boards, menus and the help (issue 16, findings 7 and 9):
the style bar stays one row (stroke options fold into a menu), the board
keeps its height at 200 % zoom without bars overlapping, the export menu
answers arrow keys, and the help opens at its top."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.browser.test_layout import box, inside, overlap
from tests.procs import CollabNode

ROOM = "clinic-7/narrow"

VIEWPORTS: dict[str, dict[str, Any]] = {
    "tablet": {"viewport": {"width": 1024, "height": 768}, "has_touch": True},
    "600px": {"viewport": {"width": 600, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True},
    # 200 % browser zoom on a 1280×720 laptop: a 640×360 CSS viewport.
    "zoom200": {"viewport": {"width": 640, "height": 360}, "device_scale_factor": 2},
}

#: Vertical centres of the style bar's visible controls (one row: all equal).
ROW_CENTRES = """(bar) => [...bar.querySelectorAll('button')]
  .filter((b) => b.offsetParent !== null && !b.closest('.stroke-group'))
  .map((b) => { const r = b.getBoundingClientRect(); return r.top + r.height / 2 })"""


async def assert_bars_apart(page: Page, width: float, height: float) -> dict[str, dict[str, float]]:
    """The session's parts are on screen and none overlaps another."""
    parts = {
        "header": page.locator("header.topbar"),
        "toolbar": page.get_by_role("toolbar", name="Drawing tools"),
        "style": page.get_by_role("toolbar", name="Colour and stroke"),
        "zoom": page.get_by_role("toolbar", name="Zoom"),
        "banners": page.locator(".banners"),
        "hands": page.get_by_role("toolbar", name="Raise hand and reactions"),
        "activities": page.get_by_role("toolbar", name="Session activities"),
    }
    panel = page.get_by_role("complementary", name="People and chat")
    if await panel.is_visible():
        parts["panel"] = panel
    boxes = {}
    for name, locator in parts.items():
        b = await locator.bounding_box()
        if b is not None and b["height"] > 0:
            boxes[name] = b
    for name, b in boxes.items():
        assert inside(b, width, height), (name, b)
    names = list(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not overlap(boxes[a], boxes[b]), (a, b, boxes[a], boxes[b])
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    return boxes


async def assert_one_row(page: Page) -> None:
    bar = page.get_by_role("toolbar", name="Colour and stroke")
    centres = await bar.evaluate(ROW_CENTRES)
    assert len(centres) >= 6, centres
    assert max(centres) - min(centres) < 2, centres


@pytest.mark.parametrize("device", ["tablet", "600px", "phone"])
async def test_style_bar_is_one_row(browsers: Browsers, collab: CollabNode, device: str) -> None:
    options = VIEWPORTS[device]
    width, height = options["viewport"]["width"], options["viewport"]["height"]
    s = SessionPage(await browsers.page(**options))
    page = s.page
    await s.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await assert_one_row(page)
    await assert_bars_apart(page, width, height)
    thick = page.get_by_role("button", name="Stroke thick")
    more = page.get_by_role("button", name="More stroke options")
    if device == "tablet":
        # Room enough: every control in the bar, no menu.
        await expect(more).to_be_hidden()
        await expect(thick).to_be_visible()
        await thick.click()
    else:
        # Narrow: widths and fill wait in a menu under the bar.
        await expect(thick).to_be_hidden()
        await expect(more).to_have_attribute("aria-expanded", "false")
        await more.click()
        await expect(more).to_have_attribute("aria-expanded", "true")
        await expect(thick).to_be_in_viewport(ratio=1)
        await expect(page.get_by_role("button", name="Fill shapes")).to_be_in_viewport(ratio=1)
        await browsers.screenshot(page, f"stroke-menu-{device}")
        await thick.click()
        # Escape closes it, back on its button.
        await thick.focus()
        await page.keyboard.press("Escape")
        await expect(thick).to_be_hidden()
        await expect(more).to_be_focused()
        await expect(more).to_have_attribute("aria-expanded", "false")
    # (Folded away, the button is out of the accessibility tree: found by its data.)
    await expect(page.locator('.width-button[data-width="8"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    # The width chosen is the width drawn.
    await s.draw_rect((0.3, 0.4), (0.5, 0.6))
    await expect(s.shapes("rect")).to_have_attribute("stroke-width", "8")
    await browsers.screenshot(page, f"style-bar-{device}")


async def test_board_keeps_its_height_at_200_percent_zoom(
    browsers: Browsers, collab: CollabNode
) -> None:
    options = VIEWPORTS["zoom200"]
    width, height = options["viewport"]["width"], options["viewport"]["height"]
    fac = SessionPage(await browsers.page(**options))
    par = SessionPage(await browsers.page(**options))
    await fac.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await par.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    # A banner too, as in a session: the facilitator locks the board.
    await fac.page.get_by_role("button", name="Lock the board").click()
    await expect(par.banner("locked")).to_be_visible()
    for s in (fac, par):
        board = await box(s.page.locator(".board-area"))
        assert board["height"] >= height / 2, board
        await assert_one_row(s.page)
        await assert_bars_apart(s.page, width, height)
        await expect(s.chat_input).to_be_in_viewport()
        await browsers.screenshot(s.page, f"zoom200-{await s.page.title()}")


async def test_export_menu_arrow_keys_and_help_from_the_top(
    browsers: Browsers, collab: CollabNode
) -> None:
    s = SessionPage(await browsers.page())
    page = s.page
    await s.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    button = page.get_by_role("button", name="Export the session")
    menu = page.get_by_role("menu", name="Export formats")
    items = menu.get_by_role("menuitem")
    await button.focus()
    await page.keyboard.press("Enter")
    await expect(menu).to_be_visible()
    await expect(button).to_have_attribute("aria-expanded", "true")
    await expect(items.nth(0)).to_be_focused()
    for key, at in [
        ("ArrowDown", 1),
        ("ArrowDown", 2),
        ("ArrowDown", 0),  # wraps
        ("ArrowUp", 2),  # wraps back
        ("ArrowUp", 1),
        ("Home", 0),
        ("End", 2),
    ]:
        await page.keyboard.press(key)
        await expect(items.nth(at)).to_be_focused()
    # The keys moved the focus only: the board's tool and zoom are as they were.
    await expect(s.tool("Select")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator(".zoom-label")).to_have_text("100%")
    await page.keyboard.press("Escape")
    await expect(menu).to_be_hidden()
    await expect(button).to_be_focused()
    await expect(button).to_have_attribute("aria-expanded", "false")
    # ArrowUp on the button opens the menu at its last item.
    await page.keyboard.press("ArrowUp")
    await expect(items.nth(2)).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(menu).to_be_hidden()

    # The help is longer than a short window: it opens at its top, its
    # Close button focused.
    await page.set_viewport_size({"width": 1280, "height": 520})
    await s.board.focus()
    await page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    scroll = await dialog.evaluate("(d) => [d.scrollTop, d.scrollHeight, d.clientHeight]")
    assert scroll[1] > scroll[2] + 50, scroll  # it does scroll
    assert scroll[0] == 0, scroll
    await expect(dialog.get_by_role("heading", name="Keyboard shortcuts")).to_be_in_viewport()
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)


@pytest.mark.parametrize("device", ["tablet", "600px", "phone", "zoom200"])
async def test_every_facilitator_control_fits_the_header(
    browsers: Browsers, collab: CollabNode, device: str
) -> None:
    """Lock, Templates, History, Export, End, help and chat: all on screen,
    whole, on a tablet, a phone and at 200 % zoom (issue 16, finding 7)."""
    options = VIEWPORTS[device]
    page = await browsers.page(**options)
    s = SessionPage(page)
    await s.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    header = page.locator("header.topbar")
    for name in (
        "Lock the board",
        "Start from a template",
        "The board's history",
        "Export the session",
        "End the session",
    ):
        button = header.get_by_role("button", name=name)
        await expect(button).to_be_in_viewport(ratio=1)
    for button in await header.get_by_role("button").all():
        if await button.is_visible():
            await expect(button).to_be_in_viewport(ratio=1)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await assert_bars_apart(page, options["viewport"]["width"], options["viewport"]["height"])
    await browsers.screenshot(page, f"facilitator-header-{device}")
