"""Driving the session page like a user: join, draw, chat, moderate.

Locators use what a user (or a screen reader) sees: roles and accessible
names, so the tests also check that the controls are labelled.
"""

from __future__ import annotations

import re

from playwright.async_api import Locator, Page, expect


class SessionPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    # -- joining ----------------------------------------------------------------

    async def join_from_lobby(self, base_url: str, room: str, name: str, role: str) -> None:
        """Open the lobby, fill it in and wait until the session is synced."""
        page = self.page
        await page.goto(base_url + "/")
        await page.get_by_label("Room").fill(room)
        await page.get_by_label("Your name").fill(name)
        await page.get_by_label("Role").select_option(role)
        await page.get_by_role("button", name="Join session").click()
        await page.wait_for_url(re.compile(r"/r/"))
        await self.wait_synced()

    async def wait_synced(self) -> None:
        await expect(self.status).to_have_attribute("data-state", "synced")

    # -- parts ------------------------------------------------------------------

    @property
    def status(self) -> Locator:
        return self.page.locator(".conn-status")

    @property
    def board(self) -> Locator:
        return self.page.get_by_role("application", name=re.compile("Whiteboard"))

    def tool(self, label: str) -> Locator:
        return self.page.get_by_role("toolbar", name="Drawing tools").get_by_role(
            "button", name=label, exact=True
        )

    def shapes(self, kind: str | None = None) -> Locator:
        selector = ".shapes > [data-type]" if kind is None else f'.shapes > [data-type="{kind}"]'
        return self.page.locator(selector)

    @property
    def chat_input(self) -> Locator:
        return self.page.get_by_role("textbox", name="Message")

    @property
    def chat_messages(self) -> Locator:
        return self.page.get_by_role("list", name="Chat messages").locator("li.chat-message")

    def banner(self, kind: str) -> Locator:
        return self.page.locator(f'[data-banner="{kind}"]')

    # -- actions ----------------------------------------------------------------

    async def board_point(self, fx: float, fy: float) -> tuple[float, float]:
        """Page coordinates of a point given as fractions of the board's box."""
        box = await self.board.bounding_box()
        assert box is not None
        return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy

    async def drag(
        self, start: tuple[float, float], end: tuple[float, float], steps: int = 8
    ) -> None:
        """Press at start (fractions of the board), move to end, release."""
        mouse = self.page.mouse
        x0, y0 = await self.board_point(*start)
        x1, y1 = await self.board_point(*end)
        await mouse.move(x0, y0)
        await mouse.down()
        await mouse.move(x1, y1, steps=steps)
        await mouse.up()

    async def draw_rect(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        await self.tool("Rectangle").click()
        await self.drag(start, end)

    async def draw_pen(self, points: list[tuple[float, float]]) -> None:
        await self.tool("Pen").click()
        mouse = self.page.mouse
        first = await self.board_point(*points[0])
        await mouse.move(*first)
        await mouse.down()
        for p in points[1:]:
            await mouse.move(*(await self.board_point(*p)), steps=6)
        await mouse.up()

    def chat_message(self, text: str) -> Locator:
        """The stored (not pending) chat message with this text."""
        return self.page.locator("li.chat-message:not(.pending)").filter(has_text=text)

    async def send_chat(self, text: str) -> None:
        await self.chat_input.fill(text)
        await self.chat_input.press("Enter")
        await expect(self.chat_message(text)).to_be_visible()

    async def confirm(self, label: str) -> None:
        await self.page.get_by_role("dialog").get_by_role("button", name=label).click()
        await expect(self.page.get_by_role("dialog")).to_have_count(0)

    def toast(self, text: str | re.Pattern[str]) -> Locator:
        return self.page.locator(".toast").filter(has_text=text)
