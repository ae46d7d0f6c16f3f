"""Session activities in the web app (protocol.md §6.6), seen by a
facilitator and a participant: raising a hand and the queue in the list of
people (Lower, Lower all), reactions rising over the sender's avatar and
counted for the facilitator, the session notice (set by the facilitator,
shown as a banner on join, dismissable), and deleting one's own message."""

from __future__ import annotations

import re

from playwright.async_api import expect

from collab.client import CollabClient
from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "clinic-7/activities"


async def join(browsers: Browsers, collab: CollabNode, name: str, role: str) -> SessionPage:
    s = SessionPage(await browsers.page())
    await s.join_from_lobby(collab.url, ROOM, name, role)
    return s


async def user_id(s: SessionPage, name: str) -> str:
    """The user id the page's list of people shows for ``name``."""
    row = s.page.locator(".people-list > .person", has_text=name)
    await expect(row).to_have_count(1)
    value = await row.get_attribute("data-user")
    assert value
    return value


async def test_hands_go_up_in_order_and_the_facilitator_lowers_them(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac = await join(browsers, collab, "Dr. Kim", "facilitator")
    ann = await join(browsers, collab, "Ann", "participant")
    # The facilitator gives turns: no hand of their own, but the reactions.
    bar = fac.page.get_by_role("toolbar", name="Raise hand and reactions")
    await expect(bar).to_be_visible()
    await expect(bar.get_by_role("button", name="Raise hand")).to_have_count(0)
    queue = fac.page.get_by_role("list", name="Raised hands, in the order they went up")
    await expect(queue).to_be_hidden()

    hand = ann.page.get_by_role("button", name="Raise hand")
    await expect(hand).to_have_attribute("aria-pressed", "false")
    await hand.click()
    await expect(hand).to_have_attribute("aria-pressed", "true")
    await expect(ann.toast("Your hand is up")).to_be_visible()
    # A second participant (the Python client) raises theirs after Ann.
    async with CollabClient(collab.url, ROOM, auth={"name": "Bob"}) as bob:
        await bob.set_awareness({"cursor": {"x": 50, "y": 50}})
        await expect(fac.page.locator(".people-list > .person", has_text="Bob")).to_have_count(1)
        await bob.raise_hand()
        # Everyone sees the queue in raising order, with names and places.
        for s in (fac, ann):
            q = s.page.get_by_role("list", name="Raised hands, in the order they went up")
            await expect(q.locator(".hand")).to_have_count(2)
            await expect(q.locator(".hand .person-name")).to_have_text(
                [re.compile("^Ann"), re.compile("^Bob")]
            )
            await expect(q.locator(".hand-place")).to_have_text(["1", "2"])
        await expect(ann.page.locator(".hand", has_text="Ann")).to_contain_text("(you)")
        ann_row = fac.page.locator(".people-list > .person", has_text="Ann")
        await expect(ann_row.locator(".hand-flag")).to_have_attribute(
            "aria-label", "Hand raised, number 1 in the queue"
        )
        # Only the facilitator can lower hands.
        await expect(ann.page.get_by_role("button", name="Lower all")).to_be_hidden()
        await expect(
            ann.page.get_by_role("button", name=re.compile("Lower the hand"))
        ).to_have_count(0)
        await browsers.screenshot(fac.page, "hands-facilitator")
        await browsers.screenshot(ann.page, "hands-participant")

        await fac.page.get_by_role("button", name="Lower the hand of Ann").click()
        await expect(hand).to_have_attribute("aria-pressed", "false")
        await expect(queue.locator(".hand .person-name")).to_have_text([re.compile("^Bob")])
        await expect(queue.locator(".hand-place")).to_have_text(["1"])
        # Ann raises again: behind Bob now. Then Lower all.
        await hand.click()
        await expect(queue.locator(".hand .person-name")).to_have_text(
            [re.compile("^Bob"), re.compile("^Ann")]
        )
        await fac.page.get_by_role("button", name="Lower all").click()
        for s in (fac, ann):
            await expect(
                s.page.get_by_role("list", name="Raised hands, in the order they went up")
            ).to_be_hidden()
        await expect(hand).to_have_attribute("aria-pressed", "false")


async def test_reactions_rise_over_the_sender_and_are_counted_for_the_facilitator(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac = await join(browsers, collab, "Dr. Kim", "facilitator")
    ann = await join(browsers, collab, "Ann", "participant")
    ann_id = await user_id(fac, "Ann")
    # Ann's cursor on the board, where her reactions rise too.
    await ann.page.mouse.move(*await ann.board_point(0.4, 0.4))
    await ann.page.mouse.move(*await ann.board_point(0.5, 0.5), steps=4)
    await expect(fac.page.locator(f'.cursor[data-user="{ann_id}"]')).to_be_visible()

    # From the keyboard: the pointer stays on the board, and so does her cursor.
    await ann.page.get_by_role("button", name="Clap", exact=True).press("Enter")
    # Over her avatar in the list of people and her cursor, on the facilitator's
    # page; over her own avatar on hers.
    rising = fac.page.locator(f'.reaction-float[data-user="{ann_id}"][data-kind="clap"]')
    await expect(rising).to_have_count(2)
    await expect(
        ann.page.locator(f'.reaction-float[data-user="{ann_id}"][data-kind="clap"]')
    ).to_have_count(1)
    await browsers.screenshot(fac.page, "reaction-facilitator")
    await expect(rising).to_have_count(0, timeout=5000)  # short-lived
    # The facilitator's count per kind over the last minutes; the participant has none.
    clap = fac.page.get_by_role("button", name="Clap: 1 in the last 5 minutes")
    await expect(clap).to_be_visible()
    await expect(clap.locator(".reaction-count")).to_have_text("1")
    await ann.page.get_by_role("button", name="Slow down").click()
    await ann.page.get_by_role("button", name="Clap", exact=True).click()
    await expect(
        fac.page.get_by_role("button", name="Clap: 2 in the last 5 minutes")
    ).to_be_visible()
    await expect(
        fac.page.get_by_role("button", name="Slow down: 1 in the last 5 minutes")
    ).to_be_visible()
    await expect(ann.page.locator(".reaction-count:visible")).to_have_count(0)
    await expect(fac.page.get_by_role("button", name="Heart", exact=True)).to_be_visible()


async def test_the_notice_and_deleting_ones_own_message(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac = await join(browsers, collab, "Dr. Kim", "facilitator")
    ann = await join(browsers, collab, "Ann", "participant")
    await expect(ann.banner("notice")).to_be_hidden()
    # The participant has no way to set it.
    await expect(ann.page.get_by_role("button", name="Set the session notice")).to_have_count(0)

    notice = "This chat is kept for 30 days and may be exported by your facilitator."
    await fac.page.get_by_role("button", name="Set the session notice").click()
    dialog = fac.page.get_by_role("dialog", name="Session notice")
    await dialog.get_by_label("Shown to everyone who joins").fill(notice)
    await dialog.get_by_role("button", name="Save").click()
    await expect(fac.toast("The notice is shown to everyone.")).to_be_visible()
    await expect(ann.banner("notice")).to_have_text(notice)
    await browsers.screenshot(ann.page, "notice-participant")
    # Dismissed, it stays away until it changes.
    await ann.page.get_by_role("button", name="Dismiss the notice").click()
    await expect(ann.banner("notice")).to_be_hidden()
    # Someone joining later sees it on join.
    late = await join(browsers, collab, "Bea", "observer")
    await expect(late.banner("notice")).to_have_text(notice)
    await expect(late.page.get_by_role("toolbar", name="Raise hand and reactions")).to_be_hidden()
    await fac.page.get_by_role("button", name="Set the session notice").click()
    await expect(dialog.get_by_label("Shown to everyone who joins")).to_have_value(notice)
    await dialog.get_by_label("Shown to everyone who joins").fill("Recorded for supervision.")
    await dialog.get_by_role("button", name="Save").click()
    await expect(ann.banner("notice")).to_have_text("Recorded for supervision.")

    # Ann deletes a message she sent too soon; the others see that it was deleted.
    await ann.send_chat("Something I did not mean to share")
    await ann.send_chat("Sorry, wrong window")
    mine = ann.chat_message("Something I did not mean to share")
    await expect(mine.get_by_role("button", name="Delete message")).to_be_visible()
    # The facilitator sees no Delete on Ann's message (only the removal of §6.3).
    theirs = fac.chat_message("Something I did not mean to share")
    await expect(theirs.get_by_role("button", name="Delete message")).to_have_count(0)
    await expect(theirs.get_by_role("button", name="Remove message from Ann")).to_be_visible()
    await mine.get_by_role("button", name="Delete message").click()
    await ann.confirm("Delete message")
    deleted = ann.page.locator("li.chat-message").first
    await expect(deleted.locator(".chat-text")).to_have_text("you deleted this message")
    await expect(fac.page.locator("li.chat-message").first.locator(".chat-text")).to_have_text(
        "message deleted by its author"
    )
    await expect(fac.page.get_by_text("Something I did not mean to share")).to_have_count(0)
    await expect(late.page.get_by_text("Something I did not mean to share")).to_have_count(0)
    await expect(deleted.get_by_role("button", name="Delete message")).to_have_count(0)
    await browsers.screenshot(fac.page, "deleted-message-facilitator")
