"""The SVG export as Chromium renders it (issue 16): every note's text wrapped
inside its note, at the note's size, and arrowheads in proportion to their
stroke."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "export"
NOTES = {
    "M": "Our group goal: feel calm, listen to each other and speak for ourselves every week.",
    "XL": "Trust takes time and that is fine",
}

#: Per note of the rendered export: whether every line box of its text lies in
#: its rectangle, whether the text is all shown, its text and font size.
NOTES_IN_EXPORT = """() => [...document.querySelectorAll('g[data-id]')]
  .filter((g) => g.querySelector('foreignObject'))
  .map((g) => {
  const note = g.querySelector('rect').getBoundingClientRect()
  const body = g.querySelector('foreignObject > div')
  const node = body.firstChild
  const boxes = []
  // The boxes of the words (a space hanging at the end of a line may pass the edge unseen).
  for (const word of node.textContent.matchAll(/\\S+/g)) {
    const range = document.createRange()
    range.setStart(node, word.index)
    range.setEnd(node, word.index + word[0].length)
    boxes.push(...range.getClientRects())
  }
  const inside = boxes.every((r) => r.left >= note.left - 0.5 && r.right <= note.right + 0.5 &&
    r.top >= note.top - 0.5 && r.bottom <= note.bottom + 0.5)
  const lines = new Set(boxes.map((r) => Math.round(r.top))).size
  return { inside, lines, shown: body.scrollHeight <= body.clientHeight + 1,
    text: body.textContent, size: getComputedStyle(body).fontSize }
})"""

#: Per arrow of the rendered export: its head's length along the arrow over its stroke width.
ARROWS_IN_EXPORT = """() => [...document.querySelectorAll('path.arrow-head')].map((head) => {
  const width = Number(head.parentNode.querySelector('polyline').getAttribute('stroke-width'))
  return head.getBBox().width / width
})"""


async def add_note(s: SessionPage, at: tuple[float, float], text: str, size: str) -> None:
    page = s.page
    await s.tool("Sticky note").click()
    await page.mouse.click(*await s.board_point(*at))
    await (
        page.get_by_role("toolbar", name="Text size")
        .get_by_role("button", name={"M": "Text size Medium", "XL": "Text size Extra large"}[size])
        .click()
    )
    await page.keyboard.type(text)
    await page.keyboard.press("Escape")


async def test_exported_notes_wrap_inside_and_arrowheads_are_in_proportion(
    browsers: Browsers, collab: CollabNode, tmp_path: Path
):
    s = SessionPage(await browsers.page())
    await s.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    page = s.page
    await add_note(s, (0.2, 0.35), NOTES["M"], "M")
    await add_note(s, (0.5, 0.35), NOTES["XL"], "XL")
    await expect(s.shapes("sticky")).to_have_count(2)
    for width in ("thin", "thick"):
        await page.get_by_role("button", name=f"Stroke {width}").click()
        await s.tool("Arrow").click()
        y = 0.75 if width == "thin" else 0.9
        await s.drag((0.1, y), (0.4, y))
    await expect(s.shapes("arrow")).to_have_count(2)

    await page.get_by_role("button", name="Export the session").click()
    async with page.expect_download() as info:
        await page.get_by_role("menuitem", name="Download board (SVG)").click()
    path = tmp_path / "board.svg"
    await (await info.value).save_as(path)

    viewer = await browsers.page()
    await viewer.goto(path.as_uri())
    notes = await viewer.evaluate(NOTES_IN_EXPORT)
    assert sorted(n["text"] for n in notes) == sorted(NOTES.values())
    for note in notes:
        assert note["inside"] and note["shown"], note
    by_text = {n["text"]: n for n in notes}
    assert by_text[NOTES["M"]]["lines"] >= 3, "the long note is wrapped"
    assert by_text[NOTES["M"]]["size"] == "16px" and by_text[NOTES["XL"]]["size"] == "32px"

    ratios = await viewer.evaluate(ARROWS_IN_EXPORT)
    assert len(ratios) == 2
    for ratio in ratios:
        assert 3 <= ratio <= 4, ratios
    await browsers.screenshot(viewer, "export")
