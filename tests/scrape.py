"""Read a running server's ``/metrics`` (Prometheus text) into a dict."""

from __future__ import annotations

import aiohttp


async def scrape(url: str) -> dict[str, float]:
    """Sample name (with its labels, as written) → value."""
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
