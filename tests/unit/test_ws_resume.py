"""collab.ws_connection._Resume: a coroutine whose first step ran in a
read goes on in a task as if the task had run it from the start."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any

import pytest

from collab.ws_connection import _Resume


def _started(coro: Coroutine[Any, Any, Any]) -> tuple[Coroutine[Any, Any, Any], Any]:
    """Run ``coro``'s first step; return it and what it waits for."""
    return coro, coro.send(None)


@types.coroutine
def _bare_yield() -> Generator[None, None, None]:
    """A bare yield: what a task sees of a zero-length asyncio pause."""
    yield


def _in_task(resume: _Resume) -> tuple[asyncio.Task[Any], asyncio.Event]:
    """A task awaiting ``resume``, and an event set as it starts to."""
    entered = asyncio.Event()

    async def run() -> object:
        entered.set()
        return await resume

    return asyncio.get_running_loop().create_task(run()), entered


async def test_it_goes_on_from_where_it_waits_and_returns_its_value() -> None:
    gate = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def handler() -> str:
        seen.append("first step")
        value = await gate
        await _bare_yield()
        seen.append(f"then {value}")
        return "done"

    coro, waiting = _started(handler())
    assert waiting is gate and seen == ["first step"]
    task, entered = _in_task(_Resume(coro, waiting))
    await entered.wait()
    assert not task.done()
    gate.set_result("opened")
    assert await task == "done"
    assert seen == ["first step", "then opened"]


async def test_its_failure_and_its_task_s_cancel_reach_the_coroutine() -> None:
    async def fails() -> None:
        await _bare_yield()
        raise ValueError("refused")

    coro, waiting = _started(fails())
    task, _ = _in_task(_Resume(coro, waiting))
    with pytest.raises(ValueError, match="refused"):
        await task

    cleaned: list[str] = []

    async def waits_forever() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            cleaned.append("finally ran")

    coro, waiting = _started(waits_forever())
    task, entered = _in_task(_Resume(coro, waiting))
    await entered.wait()  # the task waits on the coroutine's future now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["finally ran"]
