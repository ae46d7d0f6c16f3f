"""Check-ins in the web app (protocol.md §6.9), seen by a facilitator and a
participant: the facilitator opens one from the board's "Check-in" button,
sees who answered and the counts live, shows them to the group and closes
it; the participant answers on a card over the board, changes the answer
(an anonymous one with the receipt the page keeps) and sees the results
once shown."""

from __future__ import annotations

import re

from playwright.async_api import Locator, expect

from collab.client import CollabClient
from collab.client_checkins import Checkins, checkins_of
from tests.browser.conftest import Browsers, dev_token
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "clinic-7/checkins"


async def join(browsers: Browsers, collab: CollabNode, name: str, role: str) -> SessionPage:
    s = SessionPage(await browsers.page())
    await s.join_from_lobby(collab.url, ROOM, name, role)
    return s


def counts(s: SessionPage) -> Locator:
    return s.page.locator(".checkin-card .checkin-result")


async def open_checkin(
    fac: SessionPage, kind: str, question: str, options: list[str] | None, *, anonymous: bool
) -> None:
    await fac.page.get_by_role("button", name="Check-in").click()
    dialog = fac.page.get_by_role("dialog", name="New check-in")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Kind").select_option(label=kind)
    await dialog.get_by_label("Question").fill(question)
    if options is not None:
        await dialog.get_by_label("Options, one per line").fill("\n".join(options))
    else:
        await expect(dialog.get_by_label("Options, one per line")).to_be_hidden()
    if anonymous:
        await dialog.get_by_label("Anonymous").check()
    await dialog.get_by_role("button", name="Open").click()
    await expect(fac.toast("The check-in is open")).to_be_visible()


async def test_a_single_choice_answered_changed_shown_and_closed(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac = await join(browsers, collab, "Dr. Kim", "facilitator")
    ann = await join(browsers, collab, "Ann", "participant")
    # Participants have no button to open one.
    await expect(ann.page.get_by_role("button", name="Check-in")).to_have_count(0)

    await open_checkin(
        fac, "Single choice", "Which exercise next?", ["Breathing", "Walk", "Talk"], anonymous=False
    )
    card = ann.page.locator(".checkin-card")
    await expect(card.get_by_role("heading", name="Which exercise next?")).to_be_visible()
    await expect(card).to_contain_text("Single choice · named · open")
    await card.get_by_label("Walk").check()
    await card.get_by_role("button", name="Answer").click()
    await expect(ann.toast("Your answer is in.")).to_be_visible()
    await expect(card.get_by_role("button", name="Change answer")).to_be_visible()
    # The participant sees no results while they are hidden.
    await expect(counts(ann)).to_have_count(0)

    token = await dev_token(collab.url, ROOM, "Bob", "participant")
    async with CollabClient(collab.url, ROOM, "meta", auth={"token": token}) as bob:
        cid = checkins_of(bob)[0].id
        await Checkins(bob).answer(cid, 2)
        # The facilitator's card: who answered, the counts live.
        fcard = fac.page.locator(".checkin-card")
        await expect(fcard.locator(".checkin-count")).to_have_text("Answered: 2")
        await expect(counts(fac)).to_have_count(3)
        await expect(fcard.locator(".checkin-result-count")).to_have_text(["0", "1", "1"])
        await expect(fcard).to_contain_text("Only facilitators see the results.")
        await browsers.screenshot(fac.page, "checkin-facilitator")

        # Shown to the group: the participant sees the counts.
        await fcard.get_by_role("button", name="Show results").click()
        await expect(fcard).to_contain_text("The group sees the results.")
        await expect(card.locator(".checkin-result-count")).to_have_text(["0", "1", "1"])
        # Ann changes her answer: both cards follow.
        await card.get_by_label("Talk").check()
        await card.get_by_role("button", name="Change answer").click()
        await expect(ann.toast("Your answer was changed.")).to_be_visible()
        await expect(fcard.locator(".checkin-result-count")).to_have_text(["0", "0", "2"])
        await expect(card.locator(".checkin-result-count")).to_have_text(["0", "0", "2"])
        await browsers.screenshot(ann.page, "checkin-participant")

        # Closed: no more answering.
        await fcard.get_by_role("button", name="Close").click()
        await expect(card).to_contain_text("Closed. Thank you for answering.")
        await expect(card.get_by_role("button", name="Change answer")).to_have_count(0)
        await expect(fcard.get_by_role("button", name="Close")).to_have_count(0)


async def test_an_anonymous_scale_changed_with_the_pages_receipt(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac = await join(browsers, collab, "Dr. Kim", "facilitator")
    ann = await join(browsers, collab, "Ann", "participant")
    await open_checkin(
        fac, "Scale 0–10", "How anxious do you feel right now?", None, anonymous=True
    )
    card = ann.page.locator(".checkin-card")
    await expect(card).to_contain_text("Scale 0–10 · anonymous · open")
    await expect(card).to_contain_text(
        "nobody, the facilitator included, sees which answer is yours"
    )
    await card.get_by_label("7", exact=True).check()
    await card.get_by_role("button", name="Answer").click()
    await expect(ann.toast("Your answer is in.")).to_be_visible()
    fcard = fac.page.locator(".checkin-card")
    await expect(fcard.locator('.checkin-result[data-option="7"]')).to_have_attribute(
        "data-count", "1"
    )
    # After a reload the page still holds its receipt: the change goes through.
    await ann.page.reload()
    card = ann.page.locator(".checkin-card")
    await card.get_by_label("3", exact=True).check()
    await card.get_by_role("button", name="Change answer").click()
    await expect(ann.toast("Your answer was changed.")).to_be_visible()
    await expect(fcard.locator('.checkin-result[data-option="3"]')).to_have_attribute(
        "data-count", "1"
    )
    await expect(fcard.locator('.checkin-result[data-option="7"]')).to_have_attribute(
        "data-count", "0"
    )
    await expect(fcard.locator(".checkin-count")).to_have_text("Answered: 1")
    await expect(fcard.locator(".checkin-mean")).to_have_text(re.compile(r"Average: 3\.0"))
    # Deleted by the facilitator: gone from both pages.
    await fcard.get_by_role("button", name="Delete").click()
    await expect(card).to_be_hidden()
    await expect(fcard).to_be_hidden()
