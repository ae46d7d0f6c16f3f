"""The shared timer in the web app (protocol.md §6.6): the facilitator
starts, pauses, extends, resumes and stops it; a participant whose clock is
7 minutes fast and an observer whose clock is 5 minutes slow see the same
countdown, because it runs on the server's clock; the chime's end."""

from __future__ import annotations

import re
import time

from playwright.async_api import Page, expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.procs import CollabNode

ROOM = "clinic-7/timer"

#: Skews the page's clock: Date.now() and new Date() are off by `skew` ms.
SKEW_CLOCK = """
(() => {
  const Real = Date
  const skew = %d
  class Skewed extends Real {
    constructor (...args) { if (args.length) super(...args); else super(Real.now() + skew) }
    static now () { return Real.now() + skew }
  }
  window.Date = Skewed
})()
"""
FAST_MS = 7 * 60_000
SLOW_MS = -5 * 60_000


def seconds(text: str) -> int:
    """``m:ss`` or ``h:mm:ss`` in seconds."""
    parts = [int(p) for p in text.split(":")]
    total = 0
    for p in parts:
        total = total * 60 + p
    return total


async def shown(s: SessionPage) -> str:
    return str(await s.page.locator(".timer-time").text_content())


async def clock_skew(page: Page) -> float:
    """How far the page's Date.now() is from this process's clock (ms)."""
    return float(await page.evaluate("Date.now()")) - time.time() * 1000


async def join_three(browsers: Browsers, collab: CollabNode):
    fac = SessionPage(await browsers.page())
    par_page = await browsers.page()
    await par_page.add_init_script(SKEW_CLOCK % FAST_MS)
    obs_page = await browsers.page()
    await obs_page.add_init_script(SKEW_CLOCK % SLOW_MS)
    await obs_page.emulate_media(reduced_motion="reduce")
    par, obs = SessionPage(par_page), SessionPage(obs_page)
    await fac.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await par.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    await obs.join_from_lobby(collab.url, ROOM, "Olu", "observer")
    assert abs(await clock_skew(par.page) - FAST_MS) < 5_000
    assert abs(await clock_skew(obs.page) - SLOW_MS) < 5_000
    return fac, par, obs


async def start_timer(fac: SessionPage, minutes: str, secs: str = "0", label: str = "") -> None:
    page = fac.page
    await page.get_by_role("button", name="Start a timer everyone sees").click()
    dialog = page.get_by_role("dialog", name="Start a timer")
    await dialog.get_by_label("Minutes").fill(minutes)
    await dialog.get_by_label("Seconds").fill(secs)
    if label:
        await dialog.get_by_label("Label (optional)").fill(label)
    await expect(dialog.get_by_label("A gentle chime at the end")).to_be_checked()
    await dialog.get_by_role("button", name="Start").click()
    await expect(dialog).to_have_count(0)


async def test_everyone_sees_the_same_countdown_whatever_their_clock(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac, par, obs = await join_three(browsers, collab)
    everyone = (fac, par, obs)
    # Participants and observers see no timer controls.
    for s in (par, obs):
        await expect(
            s.page.get_by_role("button", name="Start a timer everyone sees")
        ).to_have_count(0)

    # A preset fills the duration.
    await fac.page.get_by_role("button", name="Start a timer everyone sees").click()
    dialog = fac.page.get_by_role("dialog", name="Start a timer")
    await dialog.get_by_role("button", name="10 min").click()
    await expect(dialog.get_by_label("Minutes")).to_have_value("10")
    await browsers.screenshot(fac.page, "timer-dialog")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)

    await start_timer(fac, "3", label="Breathing")
    for s in everyone:
        chip = s.page.get_by_role("timer", name="Timer: Breathing")
        await expect(chip).to_be_visible()
        await expect(chip).to_have_attribute("data-state", "running")
    # The same remaining time on every page (read one after the other: at
    # most a second apart), not 7 minutes less or 5 more.
    values = [seconds(await shown(s)) for s in everyone]
    assert max(values) - min(values) <= 1, values
    assert 170 <= min(values) <= 180, values
    await browsers.screenshot(fac.page, "timer-facilitator")
    await browsers.screenshot(par.page, "timer-participant-fast-clock")

    # Paused: the very same text everywhere, and it stays.
    await fac.page.get_by_role("button", name="Pause the timer").click()
    for s in everyone:
        await expect(s.page.locator(".timer-chip")).to_have_attribute("data-state", "paused")
        await expect(s.page.locator(".timer-note")).to_have_text("Paused")
    paused = await shown(fac)
    for s in (par, obs):
        await expect(s.page.locator(".timer-time")).to_have_text(paused)
    # +1 min while paused.
    await fac.page.get_by_role("button", name="Add one minute").click()
    longer = seconds(paused) + 60
    for s in everyone:
        await expect(s.page.locator(".timer-time")).to_have_text(
            f"{longer // 60}:{longer % 60:02d}"
        )
    await fac.page.get_by_role("button", name="Resume the timer").click()
    for s in everyone:
        await expect(s.page.locator(".timer-chip")).to_have_attribute("data-state", "running")
    values = [seconds(await shown(s)) for s in everyone]
    assert max(values) - min(values) <= 1 and longer - 3 <= min(values) <= longer, values

    await fac.page.get_by_role("button", name="Stop the timer").click()
    for s in everyone:
        await expect(s.page.locator(".timer-chip")).to_be_hidden()


async def test_the_end_chimes_once_and_stays_calm_with_reduced_motion(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac, par, obs = await join_three(browsers, collab)
    await start_timer(fac, "0", "2")
    for s in (fac, par, obs):
        chip = s.page.locator(".timer-chip")
        await expect(chip).to_have_attribute("data-state", "done", timeout=6000)
        await expect(s.page.locator(".timer-note")).to_have_text("Time is up")
        await expect(s.page.locator(".timer-time")).to_have_text("0:00")
        # It rang on each page that watched it run out.
        await expect(chip).to_have_attribute("data-chimed", "true")
        await expect(s.page.get_by_role("status").filter(has_text="Time is up.")).to_have_count(1)
    # The observer asked for reduced motion: no pulsing.
    animation = await obs.page.locator(".timer-chip").evaluate(
        "(n) => getComputedStyle(n).animationName"
    )
    assert animation == "none"
    pulse = await par.page.locator(".timer-chip").evaluate(
        "(n) => getComputedStyle(n).animationName"
    )
    assert pulse == "timer-done"
    await browsers.screenshot(par.page, "timer-done")
    # +1 min after the end starts it again for everyone.
    await fac.page.get_by_role("button", name="Add one minute").click()
    for s in (fac, par, obs):
        await expect(s.page.locator(".timer-chip")).to_have_attribute("data-state", "running")
        await expect(s.page.locator(".timer-time")).to_have_text(re.compile(r"^(1:00|0:5\d)$"))
    # A page opened now finds the running timer, without a chime of its own.
    late = SessionPage(await browsers.page())
    await late.join_from_lobby(collab.url, ROOM, "Bea", "participant")
    await expect(late.page.locator(".timer-chip")).to_have_attribute("data-state", "running")
    assert await late.page.locator(".timer-chip").get_attribute("data-chimed") is None
