"""Browser tests: the web app in headless Chromium against a real ``collab serve``.

Every test gets its own ``collab serve --dev`` process (SQLite under tmp_path)
and its own Chromium. Any uncaught page error, console error or error message
shown to the user fails the test.
Screenshots go to ``<tmp_path>/test-results/`` (pytest keeps the last three
runs under its base temp directory, e.g. ``/tmp/pytest-of-$USER/pytest-current/``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    async_playwright,
    expect,
)

from tests.prereqs import unavailable
from tests.procs import CollabNode

CHROMIUM = shutil.which("chromium")

#: Default time an expectation may take (ms): the app answers within one round trip.
EXPECT_MS = 10_000

expect.set_options(timeout=EXPECT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@dataclass
class ErrorLog:
    """Uncaught page errors and console errors of every page of a context.

    ``allow`` holds patterns of console errors a test expects (a WebSocket that
    cannot reach a stopped server); nothing else may appear.
    """

    errors: list[str] = field(default_factory=list)
    allow: list[re.Pattern[str]] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = f"console error: {message.text} at {message.location.get('url', '?')}"
        if not any(p.search(message.text) for p in self.allow):
            self.errors.append(text)

    def on_page_error(self, error: Any) -> None:
        self.errors.append(f"uncaught error: {error}")

    def on_error_toast(self, text: str) -> None:
        self.errors.append(f"error shown to the user: {text}")


#: Reports every error toast the app shows (a refused event, a failed request):
#: none is expected in these tests.
WATCH_ERROR_TOASTS = """
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType === 1 && node.classList.contains('toast-error')) {
        window.collabErrorToast(node.textContent)
      }
    }
  }
}).observe(document, { childList: true, subtree: true })
"""


@dataclass
class Browsers:
    """Contexts (one per user) of one Chromium, with their error logs."""

    browser: Browser
    shots: Path
    logs: list[ErrorLog] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    async def context(self, **options: Any) -> BrowserContext:
        options.setdefault("viewport", {"width": 1280, "height": 720})
        options.setdefault("accept_downloads", True)
        context = await self.browser.new_context(**options)
        context.set_default_timeout(EXPECT_MS)
        log = ErrorLog()
        context.on("console", log.on_console)
        context.on("weberror", lambda e: log.on_page_error(e.error))
        await context.expose_function("collabErrorToast", log.on_error_toast)
        await context.add_init_script(WATCH_ERROR_TOASTS)
        context.log = log  # type: ignore[attr-defined]
        self.logs.append(log)
        self.contexts.append(context)
        return context

    async def page(self, **options: Any) -> Page:
        context = await self.context(**options)
        return await context.new_page()

    async def screenshot(self, page: Page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await page.screenshot(path=str(path))
        return path

    def errors(self) -> list[str]:
        return [e for log in self.logs for e in log.errors]


@pytest.fixture
async def browsers(
    tmp_path: Path, collab_factory: Callable[..., Awaitable[CollabNode]]
) -> AsyncIterator[Browsers]:
    # After collab_factory, so the pages close before its servers are killed:
    # an ack still on its way when a test ends (a moderation's, written to
    # the store first) would otherwise fail as "no answer" in the teardown.
    if CHROMIUM is None:
        unavailable("chromium is not installed (Debian: apt-get install chromium)")
    shots = tmp_path / "test-results"
    shots.mkdir()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        b = Browsers(browser, shots)
        try:
            yield b
        finally:
            for context in b.contexts:
                await context.close()
            await browser.close()
    assert not b.errors(), "\n".join(b.errors())


@pytest.fixture
async def collab_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[CollabNode]]]:
    """Start ``collab serve --dev`` processes (SQLite in tmp_path/<node id>)."""
    nodes: list[CollabNode] = []

    async def make(*extra: str, node_id: str = "web") -> CollabNode:
        node = CollabNode(
            tmp_path,
            "--dev",
            "--store",
            "sqlite",
            "--log-level",
            "warning",
            "--flush-interval-s",
            "0.1",
            *extra,
            node_id=node_id,
        )
        nodes.append(node)
        await node.start()
        return node

    yield make
    for node in nodes:
        await node.kill()


@pytest.fixture
async def collab(collab_factory: Callable[..., Awaitable[CollabNode]]) -> CollabNode:
    return await collab_factory()


async def dev_token(base_url: str, room: str, name: str, role: str) -> str:
    """A token from the dev server's ``POST /dev/token``."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base_url}/dev/token", json={"room": room, "name": name, "role": role}
        ) as response,
    ):
        assert response.status == 200, await response.text()
        body = await response.json()
        return str(body["token"])
