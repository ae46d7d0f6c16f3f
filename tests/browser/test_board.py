"""Every drawing tool, as the Python client reads the board (protocol.md §5.1):
what the web app writes is what the export and other clients see."""

from __future__ import annotations

from playwright.async_api import expect
from pycrdt import Map

from collab.client import CollabClient
from crdt.schemas import ShapeType, read_board
from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "tools"

HANDLE_AT_RECT_CORNER = """() => {
  const handle = document.querySelector('.handle-se')
  const rect = document.querySelector('.shapes > [data-type="rect"]')
  if (!handle || !rect) return null
  const h = handle.getBoundingClientRect()
  const r = rect.getBoundingClientRect()
  const x = h.x + h.width / 2
  const y = h.y + h.height / 2
  return Math.abs(x - r.right) < 8 && Math.abs(y - r.bottom) < 8 ? [x, y] : null
}"""


async def test_every_tool_writes_the_board_schema(browsers: Browsers, collab: CollabNode):
    s = SessionPage(await browsers.page())
    await s.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    page = s.page
    board_box = await s.board.bounding_box()
    assert board_box is not None

    await s.draw_pen([(0.05, 0.6), (0.1, 0.7), (0.15, 0.65), (0.2, 0.75)])
    await page.get_by_role("button", name="Colour Red").click()
    await page.get_by_role("button", name="Stroke thick").click()
    await s.tool("Line").click()
    await s.drag((0.3, 0.6), (0.45, 0.7))
    await page.get_by_role("button", name="Colour Blue").click()
    await page.get_by_role("button", name="Stroke thin").click()
    await s.tool("Arrow").click()
    await s.drag((0.5, 0.6), (0.65, 0.75))
    await s.draw_rect((0.1, 0.1), (0.25, 0.3))
    await s.tool("Ellipse").click()
    await s.drag((0.3, 0.1), (0.45, 0.3))
    # A sticky note and a text: click, type, Escape.
    await s.tool("Sticky note").click()
    await page.mouse.click(*await s.board_point(0.65, 0.2))
    editor = page.get_by_role("textbox", name="Edit text")
    await expect(editor).to_be_focused()
    await page.keyboard.type("Ideas")
    await page.keyboard.press("Escape")
    await s.tool("Text").click()
    await page.mouse.click(*await s.board_point(0.8, 0.5))
    await expect(editor).to_be_focused()
    await page.keyboard.type("Goal")
    await page.keyboard.press("Escape")
    await expect(s.shapes()).to_have_count(7)
    await expect(page.locator(".sticky-text")).to_have_text("Ideas")

    # Move the rectangle by (40, 30) pixels, then resize it from its corner.
    await s.tool("Select").click()
    rect_before = await s.shapes("rect").bounding_box()
    assert rect_before is not None
    cx = rect_before["x"] + rect_before["width"] / 2
    cy = rect_before["y"] + rect_before["height"] / 2
    await page.mouse.move(cx, cy)
    await page.mouse.down()
    await page.mouse.move(cx + 40, cy + 30, steps=5)
    await page.mouse.up()
    # The corner handle, once it is drawn at the moved rectangle's corner.
    corner = await page.wait_for_function(HANDLE_AT_RECT_CORNER)
    hx, hy = await corner.json_value()
    await page.mouse.move(hx, hy)
    await page.mouse.down()
    await page.mouse.move(hx + 50, hy + 20, steps=5)
    await page.mouse.up()

    # Erase the pen stroke by dragging across it.
    await s.tool("Eraser").click()
    await s.drag((0.1, 0.55), (0.1, 0.8), steps=12)
    await expect(s.shapes("pen")).to_have_count(0)

    # What the Python client reads.
    reader = CollabClient(collab.url, ROOM, auth={"name": "Reader"}, reconnection=False)
    await reader.connect()
    try:

        def board():  # type: ignore[no-untyped-def]
            return read_board(reader.doc.get("shapes", type=Map).to_py() or {})

        await reader.wait_for(lambda: len(board()) == 6)
        shapes = {sh.type: sh for sh in board()}
    finally:
        await reader.close()
    assert set(shapes) == {
        ShapeType.LINE,
        ShapeType.ARROW,
        ShapeType.RECT,
        ShapeType.ELLIPSE,
        ShapeType.STICKY,
        ShapeType.TEXT,
    }
    line, arrow = shapes[ShapeType.LINE], shapes[ShapeType.ARROW]
    assert (line.color, line.width) == ("#e03131", 8)
    assert (arrow.color, arrow.width) == ("#1971c2", 2)
    assert len(line.points) == 2 and len(arrow.points) == 2
    x0, y0 = line.points[0]
    assert abs(x0 - board_box["width"] * 0.3) < 1 and abs(y0 - board_box["height"] * 0.6) < 1
    assert shapes[ShapeType.STICKY].text == "Ideas"
    assert shapes[ShapeType.TEXT].text == "Goal"
    rect = shapes[ShapeType.RECT]
    assert abs(rect.x - (board_box["width"] * 0.1 + 40)) < 1
    assert abs(rect.y - (board_box["height"] * 0.1 + 30)) < 1
    assert abs(rect.w - (board_box["width"] * 0.15 + 50)) < 1
    assert abs(rect.h - (board_box["height"] * 0.2 + 20)) < 1
    ellipse = shapes[ShapeType.ELLIPSE]
    assert ellipse.w > 0 and ellipse.h > 0
    authors = {sh.author for sh in shapes.values()}
    assert len(authors) == 1 and None not in authors  # the participant's user id
    assert len({sh.z for sh in shapes.values()}) == 6  # a distinct stacking order

    # Zoom: the keyboard and the zoom bar.
    await s.board.focus()
    await page.keyboard.press("+")
    zoom = page.get_by_role("button", name="Reset zoom to 100 %")
    await expect(zoom).to_have_text("125%")
    await page.get_by_role("button", name="Zoom out").click()
    await expect(zoom).to_have_text("100%")
    await browsers.screenshot(page, "every-tool")
