"""collab.ws_connection._Resume: a coroutine whose first step ran in a
read goes on in a task as if the task had run it from the start."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from collab.ws_connection import _Resume


def _started(coro: Coroutine[Any, Any, Any]) -> tuple[Coroutine[Any, Any, Any], Any]:
    """Run ``coro``'s first step; return it and what it waits for."""
    return coro, coro.send(None)


async def test_it_goes_on_from_where_it_waits_and_returns_its_value() -> None:
    loop = asyncio.get_running_loop()
    gate = loop.create_future()
    seen: list[str] = []

    async def handler() -> str:
        seen.append("first step")
        value = await gate
        await asyncio.sleep(0)  # a bare yield, as a task sees it
        seen.append(f"then {value}")
        return "done"

    coro, waiting = _started(handler())
    assert waiting is gate and seen == ["first step"]
    task = loop.create_task(_wrap(_Resume(coro, waiting)))
    await asyncio.sleep(0)
    assert not task.done()
    gate.set_result("opened")
    assert await task == "done"
    assert seen == ["first step", "then opened"]


async def test_its_failure_and_its_task_s_cancel_reach_the_coroutine() -> None:
    loop = asyncio.get_running_loop()

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("refused")

    coro, waiting = _started(fails())
    with pytest.raises(ValueError, match="refused"):
        await loop.create_task(_wrap(_Resume(coro, waiting)))

    cleaned: list[str] = []

    async def waits_forever() -> None:
        try:
            await loop.create_future()
        finally:
            cleaned.append("finally ran")

    coro, waiting = _started(waits_forever())
    task = loop.create_task(_wrap(_Resume(coro, waiting)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["finally ran"]


async def _wrap(resume: _Resume) -> object:
    return await resume
