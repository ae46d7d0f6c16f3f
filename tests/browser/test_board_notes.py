"""Notes that fit their text, text sizes, and adding shapes with the keyboard
only (issue 16)."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect
from pycrdt import Map

from collab.client import CollabClient
from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "notes"
LONG = "We will meet every week, listen without judging, and speak for ourselves. " * 3

#: Whether the (only) sticky note shows all its text: nothing cut off.
NOTE_FITS = """() => {
  const body = document.querySelector('.sticky-text')
  return !!body && body.scrollHeight <= body.clientHeight + 1
}"""

#: The page coordinates of the south-east resize handle, once drawn.
SE_HANDLE = """() => {
  const h = document.querySelector('.handle-se')
  if (!h) return null
  const r = h.getBoundingClientRect()
  return [r.x + r.width / 2, r.y + r.height / 2]
}"""


async def stored_shapes(url: str) -> list[dict[str, Any]]:
    reader = CollabClient(url, ROOM, auth={"name": "Reader"}, reconnection=False)
    await reader.connect()
    try:
        await reader.wait_synced()
        return [dict(v.to_py()) for v in reader.doc.get("shapes", type=Map).values()]
    finally:
        await reader.close()


async def note_box(s: SessionPage) -> dict[str, float]:
    """The sticky note's rectangle as drawn (board units: the view is not zoomed)."""
    return await s.page.locator(".shapes .sticky-bg").evaluate(  # type: ignore[no-any-return]
        "(r) => ({ x: r.x.baseVal.value, y: r.y.baseVal.value,"
        " width: r.width.baseVal.value, height: r.height.baseVal.value })"
    )


async def drag_handle(page: Page, dx: float, dy: float) -> None:
    handle = await page.wait_for_function(SE_HANDLE)
    x, y = await handle.json_value()
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(x + dx, y + dy, steps=6)
    await page.mouse.up()


async def test_notes_grow_with_their_text_resize_and_take_text_sizes(
    browsers: Browsers, collab: CollabNode
):
    s = SessionPage(await browsers.page())
    await s.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    page = s.page
    await s.tool("Sticky note").click()
    await page.mouse.click(*await s.board_point(0.3, 0.3))
    await page.keyboard.type(LONG)
    await page.keyboard.press("Escape")
    await expect(page.locator(".sticky-text")).to_have_text(LONG.strip())
    await page.wait_for_function(NOTE_FITS)
    grown = await note_box(s)
    assert grown["width"] == 160 and grown["height"] > 120 + 60, grown

    # Wider from the corner handle: the width is stored. Narrower again: taller,
    # with the text still all shown.
    await s.tool("Select").click()
    box = await s.shapes("sticky").bounding_box()
    assert box is not None
    await page.mouse.click(box["x"] + 20, box["y"] + 20)
    await drag_handle(page, 140, 0)
    await expect(page.locator(".shapes .sticky-bg")).to_have_attribute("width", "300")
    await drag_handle(page, -200, -400)
    await page.wait_for_function(NOTE_FITS)
    narrow = await note_box(s)
    assert narrow["width"] == 100 and narrow["height"] > grown["height"], (narrow, grown)

    # Text sizes: the selected note's, then a new text's while it is typed.
    size_bar = page.get_by_role("toolbar", name="Text size")
    await size_bar.get_by_role("button", name="Text size Extra large").click()
    await expect(page.locator(".sticky-text")).to_have_css("font-size", "32px")
    await expect(size_bar.get_by_role("button", name="Text size Extra large")).to_have_attribute(
        "aria-pressed", "true"
    )
    await page.wait_for_function(NOTE_FITS)
    await s.tool("Text").click()
    await page.mouse.click(*await s.board_point(0.7, 0.7))
    await page.keyboard.type("Big")
    await size_bar.get_by_role("button", name="Text size Large").click()
    await page.keyboard.type(" title")  # still typing: the size did not end the edit
    await page.keyboard.press("Escape")
    text = s.shapes("text")
    await expect(text).to_have_text("Big title")
    await expect(text).to_have_attribute("font-size", "24")

    shapes = {sh["type"]: sh for sh in await stored_shapes(collab.url)}
    note = shapes["sticky"]
    assert note["fontSize"] == 32 and note["w"] == 100
    assert note["h"] >= narrow["height"] - 1  # the grown height is stored, for exports too
    assert shapes["text"]["fontSize"] == 24 and shapes["text"]["text"] == "Big title"


async def test_a_keyboard_only_user_adds_a_note_a_text_and_a_rectangle(
    browsers: Browsers, collab: CollabNode
):
    s = SessionPage(await browsers.page())
    await s.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    page = s.page
    # Tab to the board.
    for _ in range(80):
        if await page.evaluate("document.activeElement.matches('svg.board')"):
            break
        await page.keyboard.press("Tab")
    await expect(s.board).to_be_focused()
    status = page.locator(".board-wrap [role=status]")

    await page.keyboard.press("s")
    await page.keyboard.press("Enter")
    editor = page.get_by_role("textbox", name="Edit text")
    await expect(editor).to_be_focused()
    await expect(status).to_have_text(
        "Sticky note added in the middle of the view. Type its text, then press Escape."
    )
    await page.keyboard.type("Breathe")
    await page.keyboard.press("Escape")
    await expect(s.board).to_be_focused()
    await expect(page.locator(".sticky-text")).to_have_text("Breathe")
    # In the middle of the view.
    board = await s.board.bounding_box()
    note = await s.shapes("sticky").bounding_box()
    assert board is not None and note is not None
    assert abs(note["x"] + note["width"] / 2 - (board["x"] + board["width"] / 2)) < 2
    assert abs(note["y"] + note["height"] / 2 - (board["y"] + board["height"] / 2)) < 2

    await page.keyboard.press("t")
    await page.keyboard.press("Enter")
    await expect(editor).to_be_focused()
    await expect(status).to_have_text(
        "Text added in the middle of the view. Type it, then press Escape."
    )
    await page.keyboard.type("Goals")
    await page.keyboard.press("Escape")
    await expect(s.shapes("text")).to_have_text("Goals")

    await page.keyboard.press("r")
    await page.keyboard.press("Enter")
    await expect(s.shapes("rect")).to_have_count(1)
    await expect(status).to_contain_text("Rectangle added in the middle of the view.")
    # The new rectangle is selected: the arrow keys move it.
    x = await s.shapes("rect").get_attribute("x")
    await page.keyboard.press("Shift+ArrowRight")
    await expect(s.shapes("rect")).to_have_attribute(
        "x", str(float(x or 0) + 10).removesuffix(".0")
    )
    await expect(s.shapes()).to_have_count(3)
