"""Breakout groups in the web app (protocol.md §6.7): the facilitator opens
groups at random, a participant sees "You are in group 1", joins it with
the main room's token, draws there and reads the facilitator's broadcast;
the facilitator visits the group; closing the groups brings the participant
back to the main room, where the facilitator shows the group's board."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "clinic-7/breakouts"


async def test_a_participant_goes_to_their_group_and_comes_back(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac, par = SessionPage(await browsers.page()), SessionPage(await browsers.page())
    await fac.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await par.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    # Only the facilitator has the breakout controls.
    await expect(par.page.get_by_role("button", name="Breakout groups")).to_have_count(0)

    page = fac.page
    await page.get_by_role("button", name="Breakout groups").click()
    panel = page.get_by_role("dialog", name="Breakout groups")
    await panel.get_by_label("Split").select_option("count")
    await panel.get_by_label("Number").fill("1")
    await panel.get_by_label("Minutes (0: until closed)").fill("20")
    await browsers.screenshot(page, "breakouts-dialog")
    await panel.get_by_role("button", name="Open the groups").click()
    await expect(page.locator(".breakout-banner")).to_contain_text("1 breakout group is running")
    await expect(panel.get_by_role("button", name="Visit")).to_have_count(1)

    # The participant's banner, with the time left; joining moves them to the group room.
    banner = par.page.locator(".breakout-banner")
    await expect(banner).to_contain_text("You are in group 1")
    await expect(banner).to_contain_text(re.compile(r"(19|20):\d\d left"))
    await browsers.screenshot(par.page, "breakouts-participant-banner")
    await banner.get_by_role("button", name="Join").click()
    await par.page.wait_for_url(re.compile(r"/r/clinic-7/breakouts/breakout-1$"))
    await par.wait_synced()
    await expect(banner).to_contain_text("Breakout group 1")
    await par.draw_rect((0.3, 0.3), (0.45, 0.45))
    await expect(par.shapes("rect")).to_have_count(1)

    # A broadcast reaches the group.
    await panel.get_by_label("Message to every group").fill("Two minutes left")
    await panel.get_by_role("button", name="Send to all").click()
    await expect(banner).to_contain_text("From the facilitator: Two minutes left")
    await browsers.screenshot(par.page, "breakouts-participant-in-group")

    # The facilitator visits the group and goes back.
    await panel.get_by_role("button", name="Visit").click()
    await page.wait_for_url(re.compile(r"/r/clinic-7/breakouts/breakout-1$"))
    await fac.wait_synced()
    await expect(fac.shapes("rect")).to_have_count(1)
    back = page.locator(".breakout-banner").get_by_role("button", name="Back to the main room")
    await back.click()
    await page.wait_for_url(re.compile(r"/r/clinic-7/breakouts$"))
    await fac.wait_synced()

    # Closing the groups brings the participant back.
    await page.get_by_role("button", name="Breakout groups").click()
    await panel.get_by_role("button", name="Close the groups").click()
    await par.page.wait_for_url(re.compile(r"/r/clinic-7/breakouts$"))
    await par.wait_synced()
    await expect(par.page.locator(".breakout-banner")).to_be_hidden()

    # The kept board, shown on the main board for everyone.
    await expect(par.shapes("rect")).to_have_count(0)
    await panel.get_by_role("button", name="Show on the board").click()
    await expect(fac.toast("1 shape placed on the board.")).to_be_visible()
    await expect(par.shapes("rect")).to_have_count(1)
    await browsers.screenshot(page, "breakouts-facilitator-kept-board")
    assert not browsers.errors()
