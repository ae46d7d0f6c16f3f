"""Follow me, bring everyone here, landing and the laser pointer in the web
app (protocol.md §6.6): a participant follows the facilitator's view (and
may stop, for themselves), is brought once to where the facilitator looks,
a joiner lands on the content or on the leader's view, and a pointer's
trail shows on the other pages and fades, leaving the board as it was."""

from __future__ import annotations

from playwright.async_api import Locator, expect

from tests.browser.conftest import Browsers
from tests.browser.session import SessionPage
from tests.browser.test_layout import inside
from tests.procs import CollabNode
from tests.waiting import until

ROOM = "clinic-7/follow"
FOLLOW_ME = "Follow me: everyone sees what you see"
BRING_HERE = "Bring everyone here, once"


async def rect_at(s: SessionPage) -> dict[str, float]:
    """Where the one rectangle is on the page, relative to the board's corner."""
    board = await s.board.bounding_box()
    shape = await s.shapes("rect").bounding_box()
    assert board is not None and shape is not None
    return {
        "x": shape["x"] - board["x"],
        "y": shape["y"] - board["y"],
        "width": shape["width"],
        "height": shape["height"],
    }


def same_place(a: dict[str, float], b: dict[str, float], tolerance: float = 2.0) -> bool:
    return all(abs(a[k] - b[k]) <= tolerance for k in ("x", "y", "width", "height"))


async def in_view(s: SessionPage) -> bool:
    """Whether the rectangle is wholly on the page's board."""
    board = await s.board.bounding_box()
    assert board is not None
    return inside(await rect_at(s), board["width"], board["height"])


async def pan(s: SessionPage, start: tuple[float, float], end: tuple[float, float]) -> None:
    await s.tool("Pan").click()
    await s.drag(start, end)


def banner(s: SessionPage) -> Locator:
    return s.page.locator(".follow-banner")


async def test_follow_me_bring_here_and_landing(browsers: Browsers, collab: CollabNode) -> None:
    fac = SessionPage(await browsers.page())
    await fac.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    # Far from the origin: twice a board's width to the right, then a shape there.
    for _ in range(2):
        await pan(fac, (0.9, 0.5), (0.1, 0.5))
    await fac.draw_rect((0.1, 0.15), (0.3, 0.35))
    await expect(fac.shapes("rect")).to_have_count(1)

    # A joiner lands fitted to the content, not at an empty origin.
    par = SessionPage(await browsers.page())
    await par.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    await expect(par.shapes("rect")).to_have_count(1)
    await until(lambda: in_view(par), what="the joiner sees the content")
    assert not same_place(await rect_at(par), await rect_at(fac))

    # Follow me: the participant's view becomes the facilitator's, and moves with it.
    follow = fac.page.get_by_role("button", name=FOLLOW_ME)
    await follow.click()
    await expect(follow).to_have_attribute("aria-pressed", "true")
    await expect(banner(fac)).to_contain_text("Everyone is following your view.")
    await expect(banner(par)).to_contain_text("You are following Dr. Kim.")
    await until(lambda: _same(par, fac), what="the follower's view is the leader's")
    await fac.page.get_by_role("button", name="Zoom in").click()
    await pan(fac, (0.5, 0.5), (0.35, 0.4))
    await until(lambda: _same(par, fac), what="the follower moves with the leader")
    await browsers.screenshot(par.page, "following")

    # Moving one's own view is stopping to follow (this page only).
    await pan(par, (0.5, 0.5), (0.6, 0.7))
    await expect(par.toast("You stopped following")).to_be_visible()
    await expect(banner(par)).to_contain_text("Dr. Kim is leading the view.")
    await fac.page.get_by_role("button", name="Zoom out").click()
    await expect(banner(fac)).to_contain_text("Everyone is following your view.")
    assert not await _same(par, fac)
    await banner(par).get_by_role("button", name="Follow").click()
    await until(lambda: _same(par, fac), what="following again")
    await banner(par).get_by_role("button", name="Stop following").click()
    await expect(banner(par)).to_contain_text("is leading the view")

    # The leader stops: no banner; then brings everyone once to their view.
    await banner(fac).get_by_role("button", name="Stop").click()
    await expect(follow).to_have_attribute("aria-pressed", "false")
    await expect(banner(par)).to_be_hidden()
    await pan(par, (0.2, 0.2), (0.8, 0.9))
    assert not await _same(par, fac)
    await fac.page.get_by_role("button", name=BRING_HERE).click()
    await expect(fac.toast("Everyone was brought to your view.")).to_be_visible()
    await expect(par.toast("Dr. Kim brought everyone to their view.")).to_be_visible()
    await until(lambda: _same(par, fac), what="brought to the facilitator's view")
    # Once: the participant moves on freely afterwards.
    await pan(par, (0.5, 0.5), (0.3, 0.3))
    await fac.page.get_by_role("button", name="Zoom in").click()
    assert not await _same(par, fac)

    # With follow on, a joiner (an observer) lands on the leader's view.
    await follow.click()
    obs = SessionPage(await browsers.page())
    await obs.join_from_lobby(collab.url, ROOM, "Olu", "observer")
    await expect(banner(obs)).to_contain_text("You are following Dr. Kim.")
    # (Its board is shorter, under the observer's banner: the same area, scaled.)
    await until(lambda: _same_area(obs, fac), what="the joiner lands on the leader's view")
    # Observers may follow but not lead, bring or point.
    for name in (FOLLOW_ME, BRING_HERE, "Laser pointer"):
        await expect(obs.page.get_by_role("button", name=name)).to_have_count(0)
    await browsers.screenshot(fac.page, "leading")


async def _same(a: SessionPage, b: SessionPage) -> bool:
    return same_place(await rect_at(a), await rect_at(b))


async def _same_area(a: SessionPage, b: SessionPage) -> bool:
    """Whether both boards are centred on the same point, whatever their sizes:
    the rectangle's centre, from the board's centre, in rectangle widths."""

    async def offset(s: SessionPage) -> tuple[float, float]:
        board = await s.board.bounding_box()
        shape = await rect_at(s)
        assert board is not None
        dx = shape["x"] + shape["width"] / 2 - board["width"] / 2
        dy = shape["y"] + shape["height"] / 2 - board["height"] / 2
        return dx / shape["width"], dy / shape["height"]

    (ax, ay), (bx, by) = await offset(a), await offset(b)
    return abs(ax - bx) < 0.02 and abs(ay - by) < 0.02


async def test_the_pointer_trail_shows_and_fades(browsers: Browsers, collab: CollabNode) -> None:
    fac = SessionPage(await browsers.page())
    par = SessionPage(await browsers.page())
    await fac.join_from_lobby(collab.url, ROOM, "Dr. Kim", "facilitator")
    await par.join_from_lobby(collab.url, ROOM, "Ann", "participant")
    await fac.draw_rect((0.2, 0.2), (0.3, 0.3))
    await expect(par.shapes("rect")).to_have_count(1)

    pointer = par.page.get_by_role("button", name="Laser pointer")
    await pointer.click()
    await expect(pointer).to_have_attribute("aria-pressed", "true")
    mouse = par.page.mouse
    await mouse.move(*await par.board_point(0.3, 0.6))
    await mouse.down()
    for fx in (0.4, 0.5, 0.6, 0.7):
        await mouse.move(*await par.board_point(fx, 0.5), steps=4)
    # Drawn on the facilitator's page while it moves...
    trail = fac.page.locator(".laser-trail")
    await expect(trail).to_have_count(1)
    await expect(par.page.locator(".laser-trail")).to_have_count(1)
    await browsers.screenshot(fac.page, "pointer-trail")
    await mouse.up()
    # ...then it fades, and is gone from awareness.
    await expect(trail).to_have_count(0, timeout=5000)
    await expect(par.page.locator(".laser-trail")).to_have_count(0, timeout=5000)
    # Nothing was drawn on the board.
    await expect(fac.shapes()).to_have_count(1)
    await expect(par.shapes()).to_have_count(1)
    # Escape puts the pointer away; the tools work again.
    await par.page.keyboard.press("Escape")
    await expect(pointer).to_have_attribute("aria-pressed", "false")
    await par.draw_rect((0.6, 0.6), (0.7, 0.7))
    await expect(fac.shapes("rect")).to_have_count(2)
