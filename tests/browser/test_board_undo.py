"""Undo means "my last change" (issue 16): every gesture is its own step, and
undo only ever takes back one's own step, never an older one in its place and
never another person's shape."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "undo"
GONE = "Your last change was already removed by someone else: nothing to undo."


async def test_undo_after_someone_else_erased_my_last_shape_keeps_my_earlier_one(
    browsers: Browsers, collab: CollabNode
):
    kim = SessionPage(await browsers.page())
    ana = SessionPage(await browsers.page())
    await kim.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await ana.join_from_lobby(collab.url, ROOM, "Ana", "participant")

    # Ana's own shape, then the facilitator's A and B.
    await ana.tool("Ellipse").click()
    await ana.drag((0.4, 0.6), (0.55, 0.8))
    await kim.draw_rect((0.1, 0.1), (0.25, 0.3))  # A
    await kim.draw_rect((0.5, 0.1), (0.65, 0.3))  # B
    await expect(ana.shapes("rect")).to_have_count(2)
    a_x = await kim.shapes("rect").first.get_attribute("x")

    # Ana erases B by dragging across its left edge.
    await ana.tool("Eraser").click()
    await ana.drag((0.48, 0.2), (0.52, 0.2), steps=6)
    await expect(kim.shapes("rect")).to_have_count(1)

    # The facilitator's Ctrl+Z: B is gone already, so nothing is undone and A stays.
    await kim.page.keyboard.press("Control+z")
    await expect(kim.toast(GONE)).to_be_visible()
    for s in (kim, ana):
        await expect(s.shapes("rect")).to_have_count(1)
        await expect(s.shapes("rect")).to_have_attribute("x", a_x)  # type: ignore[arg-type]
        await expect(s.shapes("ellipse")).to_have_count(1)

    # The next Ctrl+Z takes back A, the facilitator's own; Ana's ellipse stays.
    await kim.page.keyboard.press("Control+z")
    await expect(ana.shapes("rect")).to_have_count(0)
    await kim.page.keyboard.press("Control+z")
    await expect(kim.shapes("ellipse")).to_have_count(1)
    await expect(ana.shapes("ellipse")).to_have_count(1)
    await expect(kim.page.get_by_role("button", name="Undo")).to_be_disabled()


async def test_each_gesture_is_its_own_undo_step(browsers: Browsers, collab: CollabNode):
    s = SessionPage(await browsers.page())
    await s.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    page = s.page
    rect = s.shapes("rect")

    await s.draw_rect((0.1, 0.1), (0.25, 0.3))  # A
    await s.draw_pen([(0.5, 0.5), (0.6, 0.6), (0.7, 0.55)])  # B
    x0 = await rect.get_attribute("x")
    assert x0 is not None
    await s.tool("Select").click()
    await s.drag((0.175, 0.2), (0.3, 0.35))  # move A
    await expect(rect).not_to_have_attribute("x", x0)
    # A note, its text, then a second editing session.
    await s.tool("Sticky note").click()
    await page.mouse.click(*await s.board_point(0.8, 0.2))
    await page.keyboard.type("hello")
    await page.keyboard.press("Escape")
    note = page.locator(".sticky-text")
    await expect(note).to_have_text("hello")
    box = await s.shapes("sticky").bounding_box()
    assert box is not None
    await page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.keyboard.press("Control+End")
    await page.keyboard.type(" world")
    await page.keyboard.press("Escape")
    await expect(note).to_have_text("hello world")

    await page.keyboard.press("Control+z")  # the second editing session
    await expect(note).to_have_text("hello")
    await page.keyboard.press("Control+z")  # the note with its first text
    await expect(s.shapes("sticky")).to_have_count(0)
    await page.keyboard.press("Control+z")  # the move
    await expect(rect).to_have_attribute("x", x0)
    await expect(s.shapes("pen")).to_have_count(1)
    await page.keyboard.press("Control+z")  # B only
    await expect(s.shapes("pen")).to_have_count(0)
    await expect(rect).to_have_count(1)
    await page.keyboard.press("Control+Shift+z")  # and back
    await expect(s.shapes("pen")).to_have_count(1)
    await expect(rect).to_have_attribute("x", x0)
