"""The private line to the facilitators in the web app (protocol.md §6.8):
a participant writes privately from the panel, set apart from the group
chat; the facilitator sees the thread in the list (marked new), opens it and
answers; the participant sees the answer; an observer has no private line;
a facilitator removes a message; the group chat shows none of it."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "clinic-7/private"


async def join(browsers: Browsers, collab: CollabNode, name: str, role: str) -> SessionPage:
    s = SessionPage(await browsers.page())
    await s.join_from_lobby(collab.url, ROOM, name, role)
    return s


async def test_a_participant_writes_privately_and_the_facilitator_answers(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac = await join(browsers, collab, "Dr. Kim", "facilitator")
    ann = await join(browsers, collab, "Ann", "participant")
    eve = await join(browsers, collab, "Eve", "observer")

    # The facilitator's list is empty; an observer has no private line.
    threads = fac.page.get_by_role("region", name="Private threads")
    await expect(threads).to_be_visible()
    await expect(threads.get_by_text("No participant has written privately yet.")).to_be_visible()
    await expect(
        eve.page.get_by_role("button", name="Message the facilitator privately")
    ).to_have_count(0)

    # The participant opens the private line: visibly its own panel.
    await ann.page.get_by_role("button", name="Message the facilitator privately").click()
    line = ann.page.get_by_role("region", name="Private line to the facilitators")
    await expect(
        line.get_by_text("Only you and the facilitators can read these messages.")
    ).to_be_visible()
    box = line.get_by_role("textbox", name="Write privately")
    await box.fill("Can I share something privately?")
    await box.press("Enter")
    mine = line.get_by_role("list", name="Private messages").locator("li.privline-message")
    await expect(mine).to_have_count(1)
    await expect(mine.first).to_contain_text("Can I share something privately?")
    await expect(box).to_have_value("")

    # The facilitator's list names Ann's thread, marked new; it opens on a click.
    thread = threads.get_by_role(
        "button", name=re.compile("^Open the private thread with Ann, new")
    )
    await expect(thread).to_be_visible()
    await expect(thread).to_contain_text("1 message")
    await browsers.screenshot(fac.page, "private-facilitator-list")
    await thread.click()
    conversation = threads.get_by_role("list", name="Private messages").locator(
        "li.privline-message"
    )
    await expect(conversation).to_have_count(1)
    await expect(conversation.first).to_contain_text("Can I share something privately?")
    await expect(threads.get_by_text("Private thread with Ann")).to_be_visible()
    reply = threads.get_by_role("textbox", name="Write privately")
    await reply.fill("Of course. I am listening.")
    await threads.get_by_role("button", name="Send privately").click()
    await expect(conversation).to_have_count(2)

    # The participant sees the answer, from the facilitator.
    await expect(mine).to_have_count(2)
    await expect(mine.nth(1)).to_contain_text("Of course. I am listening.")
    await expect(mine.nth(1)).to_have_attribute("data-role", "facilitator")
    await browsers.screenshot(ann.page, "private-participant")
    await browsers.screenshot(fac.page, "private-facilitator-thread")

    # The facilitator removes a message: gone for both, after a confirmation.
    await threads.get_by_role("button", name="Remove private message from Ann").click()
    await fac.confirm("Remove")
    await expect(mine.first).to_contain_text("message removed")
    await expect(mine.first).not_to_contain_text("Can I share")
    await expect(conversation.first).to_contain_text("message removed")

    # Ann closes her thread; an answer then shows on her button as new.
    await line.get_by_role("button", name="Close").click()
    await expect(mine).to_have_count(0)
    await reply.fill("One more thing: take your time.")
    await reply.press("Enter")
    await expect(conversation).to_have_count(3)
    toggle = ann.page.get_by_role("button", name="Message the facilitator privately, new answer")
    await expect(toggle).to_be_visible()
    await toggle.click()
    await expect(mine).to_have_count(3)
    await line.get_by_role("button", name="Close").click()
    await expect(
        ann.page.get_by_role("button", name="Message the facilitator privately", exact=True)
    ).to_be_visible()

    # Back to the list: read now, three messages.
    await threads.get_by_role("button", name="Back to the threads").click()
    read = threads.get_by_role("button", name="Open the private thread with Ann", exact=True)
    await expect(read).to_contain_text("3 messages")

    # The group chat shows none of it, for anyone.
    for s in (fac, ann, eve):
        await expect(s.page.locator("li.chat-message")).to_have_count(0)
        await expect(s.page.locator(".chat")).not_to_contain_text("privately")
