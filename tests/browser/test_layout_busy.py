"""A busy group (issue 16, findings 4 and 5): with nine people and a long chat,
the facilitator's list of people keeps rows in view (mute and remove in
reach), and the chat stays where a reader scrolled to, counting what arrives
below on a "new messages" marker."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Browsers
from tests.browser.crowd import NAMES, chatter, crowd
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "clinic-7/busy"

VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 720}},
    "tablet": {"viewport": {"width": 1024, "height": 768}, "has_touch": True},
    "phone": {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True},
}

#: Rows of the list of people wholly inside the list's visible box.
ROWS_IN_VIEW = """() => {
  const box = document.querySelector('.people').getBoundingClientRect()
  return [...document.querySelectorAll('.people-list > .person')].filter((row) => {
    const b = row.getBoundingClientRect()
    return b.height > 0 && b.top >= box.top - 0.5 && b.bottom <= box.bottom + 0.5
  }).length
}"""

#: How far the chat list is from its end, in pixels (0: at the end).
FROM_END = "(l) => l.scrollHeight - l.scrollTop - l.clientHeight"


async def open_panel(s: SessionPage) -> None:
    """Show the side panel where it starts closed (phones)."""
    toggle = s.page.locator(".panel-toggle")
    if await toggle.get_attribute("aria-expanded") == "false":
        await toggle.click()
    await expect(s.page.get_by_role("complementary", name="People and chat")).to_be_visible()


@pytest.mark.parametrize(("device", "rows"), [("desktop", 4), ("tablet", 4), ("phone", 3)])
async def test_people_keep_rows_in_a_busy_chat(
    browsers: Browsers, collab: CollabNode, device: str, rows: int
) -> None:
    s = SessionPage(await browsers.page(**VIEWPORTS[device]))
    await s.join_from_lobby(collab.url, ROOM, "Dr. Kim (facilitator)", "facilitator")
    await open_panel(s)
    async with crowd(collab, ROOM) as clients:
        await expect(s.page.locator(".people .count")).to_have_text(str(len(NAMES) + 1))
        await chatter(clients, 32)
        await expect(s.chat_messages).to_have_count(32)
        # The list keeps rows in view, without scrolling it, and the chat keeps
        # room for its messages and its input.
        assert await s.page.evaluate("document.querySelector('.people').scrollTop") == 0
        assert await s.page.evaluate(ROWS_IN_VIEW) >= rows
        chat_list = s.page.get_by_role("list", name="Chat messages")
        chat_box = await chat_list.bounding_box()
        assert chat_box is not None and chat_box["height"] >= 80, chat_box
        await expect(s.chat_input).to_be_in_viewport()
        # The facilitator's controls of the first people listed are on screen.
        await expect(s.page.get_by_role("button", name="Mute Ann")).to_be_in_viewport()
        await expect(
            s.page.get_by_role("button", name="Remove Ann from the session")
        ).to_be_in_viewport()
        await browsers.screenshot(s.page, f"busy-people-{device}")


async def from_end(page: Page) -> float:
    chat_list = page.get_by_role("list", name="Chat messages")
    return float(await chat_list.evaluate(FROM_END))


@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_chat_stays_where_the_reader_is(
    browsers: Browsers, collab: CollabNode, device: str
) -> None:
    s = SessionPage(await browsers.page(**VIEWPORTS[device]))
    page = s.page
    await s.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await open_panel(s)
    marker = page.locator(".chat-new")
    chat_list = page.get_by_role("list", name="Chat messages")
    async with crowd(collab, ROOM, NAMES[:2]) as clients:
        await chatter(clients, 30)
        await expect(s.chat_messages).to_have_count(30)
        # A reader at the end is kept there as messages arrive.
        assert await from_end(page) < 2
        await expect(marker).to_be_hidden()

        # Scrolled up to re-read: arriving messages do not move the list.
        await chat_list.evaluate("(l) => { l.scrollTop = 0 }")
        await expect(s.chat_message("msg 01")).to_be_in_viewport()
        await clients[0].send_chat("later 1")
        await expect(s.chat_message("later 1")).to_have_count(1)
        await expect(marker).to_have_text("1 new message")
        await clients[1].send_chat("later 2")
        await expect(s.chat_message("later 2")).to_have_count(1)
        await expect(marker).to_have_text("2 new messages")
        assert await chat_list.evaluate("(l) => l.scrollTop") == 0
        await expect(s.chat_message("msg 01")).to_be_in_viewport()
        await browsers.screenshot(page, f"chat-new-messages-{device}")

        # The marker takes the reader to the end and goes away.
        await marker.click()
        await expect(marker).to_be_hidden()
        await expect(s.chat_message("later 2")).to_be_in_viewport()
        assert await from_end(page) < 2

        # At the end again: the next message keeps the list at the end, no marker.
        await clients[0].send_chat("later 3")
        await expect(s.chat_message("later 3")).to_be_in_viewport()
        assert await from_end(page) < 2
        await expect(marker).to_be_hidden()

        # Scrolling down by hand to the end clears the marker too.
        await chat_list.evaluate("(l) => { l.scrollTop = 0 }")
        await clients[1].send_chat("later 4")
        await expect(marker).to_have_text("1 new message")
        await chat_list.evaluate("(l) => { l.scrollTop = l.scrollHeight }")
        await expect(marker).to_be_hidden()
