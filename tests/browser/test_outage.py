"""A store outage as the people in the room see it (protocol.md §11).

A real ``collab serve --dev`` with a one-second delay window, and a real
outage: this test holds the SQLite database's write lock (``BEGIN
EXCLUSIVE`` from another process), so every write of the server waits for
it and fails. Everyone is told "saving delayed", then, past the window,
that the board is read-only (its tools off); a message sent meanwhile says
"not sent — retrying" and goes out by itself, stored once, when the store
takes writes again, which everyone is told too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.faults.test_store_outages import WriteLock
from tests.procs import CollabNode

ROOM = "outage"


async def test_saving_delayed_then_read_only_then_back_with_the_chat_retried(
    browsers: Browsers, collab_factory: Callable[..., Awaitable[CollabNode]]
) -> None:
    collab = await collab_factory("--store-delay-window-s", "1")
    ann = SessionPage(await browsers.page())
    bob = SessionPage(await browsers.page())
    await ann.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    await bob.join_from_lobby(collab.url, ROOM, "Bob", "participant")
    await ann.draw_rect((0.2, 0.2), (0.3, 0.3))
    await expect(bob.shapes("rect")).to_have_count(1)

    lock = WriteLock(collab.workdir / collab.node_id / "collab.sqlite3")
    await lock.__aenter__()
    try:
        await ann.draw_rect((0.4, 0.4), (0.5, 0.5))  # kept in memory
        await expect(bob.shapes("rect")).to_have_count(2)
        for page in (ann, bob):
            await expect(page.banner("saving-delayed")).to_contain_text("Saving is delayed")
        # Past the window: read-only, said plainly, and the drawing tools are off.
        for page in (ann, bob):
            await expect(page.banner("saving-stopped")).to_contain_text("read-only")
            await expect(page.banner("saving-delayed")).to_have_count(0)
            await expect(page.tool("Rectangle")).to_be_disabled()
        # A message now is not lost: it waits, and says so.
        await ann.chat_input.fill("are we still saving?")
        await ann.chat_input.press("Enter")
        waiting = ann.page.locator("li.chat-message.retrying").filter(
            has_text="are we still saving?"
        )
        await expect(waiting).to_contain_text("not sent — retrying")
        await browsers.screenshot(ann.page, "read-only")
    finally:
        await lock.release()

    for page in (ann, bob):
        await expect(page.banner("saving-stopped")).to_have_count(0)
        await expect(page.toast("Saving works again")).to_be_visible()
        await expect(page.tool("Rectangle")).to_be_enabled()
    # The message went out by itself, once, and everyone has it.
    for page in (ann, bob):
        await expect(page.chat_message("are we still saving?")).to_have_count(1)
    await expect(ann.page.locator("li.chat-message.retrying")).to_have_count(0)
    # Both rectangles were kept, and a newcomer gets them from the server.
    carol = SessionPage(await browsers.page())
    await carol.join_from_lobby(collab.url, ROOM, "Carol", "participant")
    await expect(carol.shapes("rect")).to_have_count(2)
    await expect(carol.chat_message("are we still saving?")).to_have_count(1)
    assert "saving delayed room=outage" in collab.log()
    assert "saving resumed room=outage" in collab.log()
