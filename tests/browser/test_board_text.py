"""Text that merges (issue 16): a sticky note's text is a Y.Text edited with
small inserts and deletes, so two people typing in one note keep both their
words; an older board's string text still loads and becomes a Y.Text."""

from __future__ import annotations

from itertools import zip_longest

from playwright.async_api import Page, expect
from pycrdt import Map, Text

from collab.client import CollabClient
from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "notes"
PREFIX = "Our group goal: "

#: The text of the (only) editor while it is open, else of the (only) sticky note.
NOTE_TEXT = """() => {
  const editor = document.querySelector('textarea.text-editor:not([hidden])')
  if (editor) return editor.value
  const note = document.querySelector('.sticky-text')
  return note ? note.textContent : null
}"""


async def open_note(s: SessionPage) -> None:
    """Double-click the sticky note, caret at the end of its text."""
    box = await s.shapes("sticky").bounding_box()
    assert box is not None
    await s.page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    editor = s.page.get_by_role("textbox", name="Edit text")
    await expect(editor).to_be_focused()
    await s.page.keyboard.press("Control+End")


async def note_text(page: Page) -> str | None:
    return await page.evaluate(NOTE_TEXT)  # type: ignore[no-any-return]


async def test_two_people_typing_in_one_note_keep_both_their_words(
    browsers: Browsers, collab: CollabNode
):
    kim = SessionPage(await browsers.page())
    ben = SessionPage(await browsers.page())
    await kim.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await ben.join_from_lobby(collab.url, ROOM, "Ben", "participant")

    await kim.tool("Sticky note").click()
    await kim.page.mouse.click(*await kim.board_point(0.4, 0.4))
    await expect(kim.page.get_by_role("textbox", name="Edit text")).to_be_focused()
    await kim.page.keyboard.type(PREFIX)
    await expect(ben.page.locator(".sticky-text")).to_have_text(PREFIX)
    await open_note(ben)

    # Keystrokes interleaved: each one goes out while the other's are on the way.
    for a, b in zip_longest("calm and safe ", "trust ", fillvalue=""):
        if a:
            await kim.page.keyboard.type(a)
        if b:
            await ben.page.keyboard.type(b)

    expected = {PREFIX + "calm and safe trust ", PREFIX + "trust calm and safe "}
    for s in (kim, ben):
        await s.page.wait_for_function(
            f"(expected) => expected.includes(({NOTE_TEXT})())", arg=sorted(expected)
        )
    assert await note_text(kim.page) == await note_text(ben.page)
    # Typing on after the merge goes where each caret is: after one's own words.
    await ben.page.keyboard.type("!")
    await kim.page.keyboard.press("Escape")
    await ben.page.keyboard.press("Escape")
    final = await note_text(ben.page)
    assert final in {PREFIX + "calm and safe trust !", PREFIX + "trust !calm and safe "}
    await expect(kim.page.locator(".sticky-text")).to_have_text(final)  # type: ignore[arg-type]

    # Stored as a Y.Text nested in the shape's map (protocol.md §5.1).
    reader = CollabClient(collab.url, ROOM, auth={"name": "Reader"}, reconnection=False)
    await reader.connect()
    try:
        shapes = reader.doc.get("shapes", type=Map)
        await reader.wait_for(
            lambda: len(shapes) == 1 and str(next(iter(shapes.values()))["text"]) == final
        )
        note = next(iter(shapes.values()))
        assert isinstance(note["text"], Text)
    finally:
        await reader.close()


async def test_an_older_boards_string_text_loads_and_becomes_a_y_text(
    browsers: Browsers, collab: CollabNode
):
    writer = CollabClient(collab.url, ROOM, auth={"name": "Old app"}, reconnection=False)
    await writer.connect()
    try:
        shapes = writer.doc.get("shapes", type=Map)
        # A shape as the web app wrote it before: a Y.Map whose text is a string.
        shapes["old"] = Map(
            {"type": "sticky", "x": 100, "y": 100, "w": 160, "h": 120, "text": "Old words", "z": 1}
        )
        s = SessionPage(await browsers.page())
        await s.join_from_lobby(collab.url, ROOM, "Ann", "participant")
        await expect(s.page.locator(".sticky-text")).to_have_text("Old words")
        await open_note(s)
        await s.page.keyboard.type(" and new ones")
        await s.page.keyboard.press("Escape")
        await expect(s.page.locator(".sticky-text")).to_have_text("Old words and new ones")

        def converted() -> bool:
            text = shapes["old"].get("text")
            return isinstance(text, Text) and str(text) == "Old words and new ones"

        await writer.wait_for(converted)
    finally:
        await writer.close()
