"""Locked shapes in the web app (``mod:lock-shapes``, protocol.md §5.1 and
§6.3): a facilitator locks a note from the selection bar; a participant can
no longer select, move, erase or delete it (told so, once, with no refused
update sent), while other shapes stay theirs; unlocked, it is theirs again."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.test_roles import SERVER_REFUSED, add_sticky, join_both
from tests.procs import CollabNode

LOCKED_NOTICE = "This shape is locked by the facilitator."


async def test_a_locked_note_is_left_alone_by_participants(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac, par = await join_both(browsers, collab)
    await add_sticky(fac, (0.3, 0.4), "Our group goal")
    await add_sticky(par, (0.7, 0.4), "Ann's idea")
    for s in (fac, par):
        await expect(s.shapes("sticky")).to_have_count(2)

    await fac.tool("Select").click()
    await fac.page.mouse.click(*await fac.board_point(0.3, 0.4))
    selection = fac.page.get_by_role("toolbar", name="Selection")
    await selection.get_by_role("button", name="Lock the selected shape").click()
    await expect(fac.toast("Shape locked.")).to_be_visible()
    await expect(par.page.locator(".shape-sticky.locked")).to_have_count(1)
    await expect(par.page.locator(".lock-badge")).to_have_count(1)
    await browsers.screenshot(par.page, "locked-note")

    # The participant: clicking the note tells them, once; dragging, erasing,
    # select-all and Delete leave it where it is.
    await par.tool("Select").click()
    await par.page.mouse.click(*await par.board_point(0.3, 0.4))
    await expect(par.toast(LOCKED_NOTICE)).to_be_visible()
    start = await par.board_point(0.3, 0.4)
    await par.page.mouse.move(*start)
    await par.page.mouse.down()
    await par.page.mouse.move(start[0] + 80, start[1] + 60, steps=5)
    await par.page.mouse.up()
    await par.board.focus()
    await par.page.keyboard.press("Control+a")
    await par.page.keyboard.press("Delete")
    await par.tool("Eraser").click()
    await par.page.mouse.move(*await par.board_point(0.25, 0.4))
    await par.page.mouse.down()
    await par.page.mouse.move(*await par.board_point(0.35, 0.4), steps=6)
    await par.page.mouse.up()
    # Ann's own note went (select-all and Delete); the locked one stayed.
    for s in (fac, par):
        await expect(s.shapes("sticky")).to_have_count(1)
        await expect(s.page.locator(".sticky-text")).to_have_text("Our group goal")
    await expect(par.page.get_by_text(SERVER_REFUSED)).to_have_count(0)
    await expect(par.toast(LOCKED_NOTICE)).to_have_count(1)

    # The facilitator still moves it, and unlocks it from the shape menu.
    await fac.page.mouse.click(*await fac.board_point(0.3, 0.4), button="right")
    menu = fac.page.get_by_role("menu", name="Shape actions")
    await menu.get_by_role("menuitem", name="Unlock shape").click()
    await expect(fac.toast("Shape unlocked.")).to_be_visible()
    await expect(par.page.locator(".lock-badge")).to_have_count(0)
    await par.tool("Select").click()
    await par.page.mouse.click(*await par.board_point(0.3, 0.4))
    await par.board.focus()
    await par.page.keyboard.press("Delete")
    for s in (fac, par):
        await expect(s.shapes("sticky")).to_have_count(0)


async def test_a_facilitator_starts_from_a_template_whose_shapes_arrive_locked(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac, par = await join_both(browsers, collab)
    await fac.page.get_by_role("button", name="Start from a template").click()
    dialog = fac.page.get_by_role("dialog", name="Add a template to the board")
    await expect(dialog.locator(".template-item")).to_have_count(6)
    await browsers.screenshot(fac.page, "template-dialog")
    await dialog.get_by_role("button", name="Role-play scenario cards").click()
    await expect(fac.toast("Template added to the board.")).to_be_visible()
    for s in (fac, par):
        await expect(s.shapes("sticky")).to_have_count(4)
        await expect(s.page.locator(".sticky-text", has_text="Role A")).to_be_visible()
    await expect(par.shapes()).to_have_count(7)  # title, four cards, a box and its prompt
    await expect(par.page.locator(".lock-badge")).to_have_count(7)
    await browsers.screenshot(par.page, "template-placed")
    # A card cannot be edited by the participant: double-clicking tells them.
    card = par.page.locator(".shape-sticky", has_text="Role A")
    await card.dblclick()
    await expect(par.toast(LOCKED_NOTICE)).to_be_visible()
    await expect(par.page.get_by_role("textbox", name="Edit text")).to_have_count(0)
    await expect(par.page.get_by_text(SERVER_REFUSED)).to_have_count(0)
