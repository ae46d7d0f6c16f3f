"""Telling people apart (issue 16, finding 6): each person has a colour of
their own, the same on their cursor and their avatar, kept across reloads,
white text on it legible; initials come from the name's letters only."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.crowd import NAMES, crowd
from tests.browser.session import SessionPage
from tests.procs import CollabNode
from tests.waiting import until

ROOM = "clinic-7/colours"

#: user id → [initials, background] of every avatar in the list of people.
AVATARS = """() => Object.fromEntries(
  [...document.querySelectorAll('.people-list > .person')].map((row) => {
    const avatar = row.querySelector('.avatar')
    return [row.dataset.user, [avatar.textContent, getComputedStyle(avatar).backgroundColor]]
  }))"""

#: user id → background of the name label of every cursor on the board.
CURSORS = """() => Object.fromEntries([...document.querySelectorAll('.cursor')].map((c) =>
  [c.dataset.user, getComputedStyle(c.querySelector('.cursor-label')).backgroundColor]))"""


def contrast_with_white(css: str) -> float:
    """WCAG contrast ratio of white on an ``rgb(r, g, b)`` colour."""
    channels = [int(v) / 255 for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


async def test_each_person_has_a_colour_of_their_own(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac = SessionPage(await browsers.page())
    par = SessionPage(await browsers.page())
    await fac.join_from_lobby(collab.url, ROOM, "Dr. Kim (facilitator)", "facilitator")
    await par.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    kim = fac.page.locator(".person", has_text="Dr. Kim")
    ann = fac.page.locator(".person", has_text="Ann")
    # Initials from the letters of the name, what is in brackets left out.
    await expect(kim.locator(".avatar")).to_have_text("DK")
    await expect(ann.locator(".avatar")).to_have_text("A")

    # Each sees the other's cursor in the colour of the other's avatar.
    await par.page.mouse.move(*await par.board_point(0.4, 0.4))
    await par.page.mouse.move(*await par.board_point(0.5, 0.5), steps=4)
    await fac.page.mouse.move(*await fac.board_point(0.3, 0.6))
    await fac.page.mouse.move(*await fac.board_point(0.35, 0.65), steps=4)
    ann_cursor = fac.page.locator(".cursor", has_text="Ann").locator(".cursor-label")
    kim_cursor = par.page.locator(".cursor", has_text="Dr. Kim").locator(".cursor-label")
    await expect(ann_cursor).to_be_visible()
    await expect(kim_cursor).to_be_visible()
    colour_of = "(a) => getComputedStyle(a).backgroundColor"
    pair: dict[str, str] = {}

    async def apart() -> bool:
        # A clash of two hashes is settled as the list renders: wait for it.
        # An avatar the list is replacing has no computed style (''): again.
        pair["ann"] = await ann.locator(".avatar").evaluate(colour_of)
        pair["kim"] = await kim.locator(".avatar").evaluate(colour_of)
        rendered = all(c.startswith("rgb") for c in pair.values())
        return rendered and pair["ann"] != pair["kim"]

    await until(apart, timeout_s=10, what="Ann's and Kim's avatars in different colours")
    ann_colour, kim_colour = pair["ann"], pair["kim"]
    await expect(ann_cursor).to_have_css("background-color", ann_colour)
    await expect(kim_cursor).to_have_css("background-color", kim_colour)
    # Both pages give each person the same colour.
    await expect(par.page.locator(".person", has_text="Ann").locator(".avatar")).to_have_css(
        "background-color", ann_colour
    )
    await expect(par.page.locator(".person", has_text="Dr. Kim").locator(".avatar")).to_have_css(
        "background-color", kim_colour
    )

    # A reload keeps Ann's colour (her user id is the same).
    await par.page.reload()
    await par.wait_synced()
    await expect(par.page.locator(".person", has_text="Ann").locator(".avatar")).to_have_css(
        "background-color", ann_colour
    )
    await par.page.mouse.move(*await par.board_point(0.6, 0.3))
    await par.page.mouse.move(*await par.board_point(0.62, 0.32), steps=4)
    await expect(ann_cursor).to_have_css("background-color", ann_colour)
    await expect(ann.locator(".avatar")).to_have_css("background-color", ann_colour)

    # Nine more people: every one of the eleven differs, on the list and on
    # their cursor, and white initials are legible on each colour.
    names = (*NAMES, "Łucja Żak")
    async with crowd(collab, ROOM, names):
        await expect(fac.page.locator(".people .count")).to_have_text(str(len(names) + 2))
        await expect(fac.page.locator(".cursor")).to_have_count(len(names) + 1)
        seen: dict[str, Any] = {}

        async def settled() -> bool:
            # Colours are given out again as people arrive (a clash takes the
            # next free one): wait for the page to have caught up with all.
            seen["avatars"] = avatars = await fac.page.evaluate(AVATARS)
            seen["cursors"] = cursors = await fac.page.evaluate(CURSORS)
            colours = [colour for _, colour in avatars.values()]
            return len(set(colours)) == len(colours) and all(
                user in avatars and avatars[user][1] == colour for user, colour in cursors.items()
            )

        await until(settled, timeout_s=10, what="distinct colours, cursors as avatars")
        avatars = seen["avatars"]
        for initials, colour in avatars.values():
            assert contrast_with_white(colour) >= 4.5, (initials, colour)
        assert "ŁŻ" in [initials for initials, _ in avatars.values()]
        await browsers.screenshot(fac.page, "people-colours")
