"""The session at 1280×720 and on a tablet (820×1180, touch): every control
is on screen, nothing overlaps, and the keyboard drives the tools."""

from __future__ import annotations

import pytest
from playwright.async_api import Locator, expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 720}},
    "tablet": {"viewport": {"width": 820, "height": 1180}, "has_touch": True},
}


async def box(locator: Locator) -> dict[str, float]:
    b = await locator.bounding_box()
    assert b is not None, f"{locator} has no box"
    return b


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"] - 0.5
        and b["x"] < a["x"] + a["width"] - 0.5
        and a["y"] < b["y"] + b["height"] - 0.5
        and b["y"] < a["y"] + a["height"] - 0.5
    )


def inside(a: dict[str, float], width: float, height: float) -> bool:
    return (
        a["x"] >= 0
        and a["y"] >= 0
        and a["x"] + a["width"] <= width + 0.5
        and a["y"] + a["height"] <= height + 0.5
    )


@pytest.mark.parametrize("device", list(VIEWPORTS))
async def test_controls_fit_and_work(browsers: Browsers, collab: CollabNode, device: str):
    options = VIEWPORTS[device]
    width, height = options["viewport"]["width"], options["viewport"]["height"]
    s = SessionPage(await browsers.page(**options))
    await s.join_from_lobby(collab.url, "layout", "Dr. Kim", "facilitator")
    page = s.page

    toolbar = page.get_by_role("toolbar", name="Drawing tools")
    parts = {
        "header": page.locator("header.topbar"),
        "toolbar": toolbar,
        "style": page.get_by_role("toolbar", name="Colour and stroke"),
        "zoom": page.get_by_role("toolbar", name="Zoom"),
        "panel": page.get_by_role("complementary", name="People and chat"),
    }
    boxes = {name: await box(locator) for name, locator in parts.items()}
    for name, b in boxes.items():
        assert inside(b, width, height), (name, b)
    names = list(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not overlap(boxes[a], boxes[b]), (a, b, boxes[a], boxes[b])
    # The bars on the board (hand and reactions, timer and follow, check-ins,
    # breakout groups) clear the tools, the zoom and the panel.
    bars = await page.locator(".board-bars > *:visible").all()
    assert len(bars) >= 3
    for bar in bars:
        b = await box(bar)
        assert inside(b, width, height), (await bar.get_attribute("class"), b)
        for name in ("toolbar", "style", "zoom", "panel"):
            assert not overlap(b, boxes[name]), (await bar.get_attribute("class"), name, b)
    # Every button of the toolbar and the header is fully on screen.
    for button in (
        await toolbar.get_by_role("button").all()
        + await parts["header"].get_by_role("button").all()
    ):
        b = await box(button)
        assert inside(b, width, height), (await button.get_attribute("aria-label"), b)
    no_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
    assert await page.evaluate(no_scroll)
    for control in ("Lock the board", "Export the session", "End the session for everyone"):
        await expect(page.get_by_role("button", name=control)).to_be_visible()
    await expect(s.chat_input).to_be_visible()
    await expect(page.get_by_role("button", name="Send message")).to_be_visible()

    # Keyboard shortcuts pick tools; undo and redo take back one's own change.
    await s.board.focus()
    await page.keyboard.press("r")
    await expect(s.tool("Rectangle")).to_have_attribute("aria-pressed", "true")
    await s.drag((0.3, 0.3), (0.5, 0.5))
    await expect(s.shapes("rect")).to_have_count(1)
    await page.keyboard.press("e")
    await expect(s.tool("Eraser")).to_have_attribute("aria-pressed", "true")
    await page.keyboard.press("Control+z")
    await expect(s.shapes("rect")).to_have_count(0)
    await page.keyboard.press("Control+Shift+z")
    await expect(s.shapes("rect")).to_have_count(1)
    await page.keyboard.press("o")
    await s.drag((0.6, 0.3), (0.7, 0.45))
    await expect(s.shapes("ellipse")).to_have_count(1)
    # Select and delete with the keyboard.
    await page.keyboard.press("v")
    point = await s.board_point(0.65, 0.375)
    await page.mouse.click(*point)
    await page.keyboard.press("Delete")
    await expect(s.shapes("ellipse")).to_have_count(0)
    await page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_dialog).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(help_dialog).to_have_count(0)

    await s.send_chat(f"Hello from the {device}")
    await browsers.screenshot(page, f"layout-{device}")
