"""The board's history in the web app (protocol.md §5.5): a participant
selects everything and deletes it; the facilitator finds the restore point
kept before that bulk deletion, brings one note back, then the whole board,
and everyone sees it."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.test_roles import add_sticky, join_both
from tests.procs import CollabNode


async def test_a_facilitator_brings_back_what_a_participant_deleted(
    browsers: Browsers, collab: CollabNode
) -> None:
    fac, par = await join_both(browsers, collab)
    for i, x in enumerate((0.2, 0.4, 0.6, 0.8, 0.3, 0.7)):
        await add_sticky(par, (x, 0.3 + 0.3 * (i // 4)), f"note {i}")
    for s in (fac, par):
        await expect(s.shapes("sticky")).to_have_count(6)

    await par.tool("Select").click()
    await par.board.focus()
    await par.page.keyboard.press("Control+a")
    await par.page.keyboard.press("Delete")
    for s in (fac, par):
        await expect(s.shapes("sticky")).to_have_count(0)

    await fac.page.get_by_role("button", name="The board's history").click()
    dialog = fac.page.get_by_role("dialog", name="Board history")
    point = dialog.locator(".history-point", has_text="Before many shapes were deleted")
    await expect(point).to_have_count(1)
    await expect(point).to_contain_text("6 shapes")
    await point.get_by_role("button", name="Deleted shapes").click()
    await expect(point.locator(".history-shapes li")).to_have_count(6)
    await browsers.screenshot(fac.page, "history-dialog")
    await (
        point.locator(".history-shapes li", has_text="note 2")
        .get_by_role("button", name="Restore")
        .click()
    )
    await expect(fac.toast("Shape restored.")).to_be_visible()
    for s in (fac, par):
        await expect(s.page.locator(".sticky-text")).to_have_text(["note 2"])

    await point.get_by_role("button", name="Restore board").click()
    confirm = fac.page.get_by_role("dialog", name="Restore board")
    await expect(confirm).to_contain_text("kept as a restore point first")
    await confirm.get_by_role("button", name="Restore board").click()
    await expect(fac.toast("Board restored.")).to_be_visible()
    for s in (fac, par):
        await expect(s.shapes("sticky")).to_have_count(6)
    # The board before the restore was kept: it is in the list now.
    await expect(dialog.locator(".history-point", has_text="Before a restore")).to_have_count(1)
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_have_count(0)
