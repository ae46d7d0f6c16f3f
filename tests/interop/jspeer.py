"""Drive a node script of tests/interop/js over JSON lines (see js/peer.mjs).

A :class:`JsPeer` is one node process: commands go to its stdin, everything it
prints is parsed into :attr:`JsPeer.events`, and a test waits on conditions
over those events (never on sleeps).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

INTEROP_DIR = Path(__file__).resolve().parent
JS_DIR = INTEROP_DIR / "js"

#: Default wait for one step; every node script also exits by itself after 30 s.
STEP_TIMEOUT_S = 10.0

Event = dict[str, Any]


class JsPeerError(AssertionError):
    """A node peer failed a command, timed out or died; carries its stderr."""


class JsPeer:
    def __init__(self, proc: asyncio.subprocess.Process, label: str) -> None:
        self.proc = proc
        self.label = label
        self.events: list[Event] = []
        self.stderr: list[str] = []
        self._changed = asyncio.Condition()
        self._tags = itertools.count(1)
        self._readers = [
            asyncio.get_running_loop().create_task(self._read_stdout()),
            asyncio.get_running_loop().create_task(self._read_stderr()),
        ]

    @classmethod
    async def spawn(cls, node: str, script: str, config: dict[str, Any]) -> JsPeer:
        proc = await asyncio.create_subprocess_exec(
            node,
            str(JS_DIR / script),
            json.dumps(config),
            cwd=str(INTEROP_DIR),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 22,
        )
        return cls(proc, f"{script} {config.get('room')!r}")

    # -- reading -------------------------------------------------------------

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            text = line.decode("utf-8", "replace").strip()
            if not text:
                continue
            try:
                event = json.loads(text)
            except ValueError:
                event = {"event": "stdout", "text": text}
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        async with self._changed:
            self.events.append({"event": "eof", "returncode": await self.proc.wait()})
            self._changed.notify_all()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr.append(line.decode("utf-8", "replace").rstrip())

    def _describe(self) -> str:
        tail = "\n".join(json.dumps(e)[:300] for e in self.events[-15:])
        err = "\n".join(self.stderr[-20:])
        return f"[{self.label}] last events:\n{tail}\nstderr:\n{err}"

    # -- waiting -------------------------------------------------------------

    async def wait_event(
        self,
        predicate: Callable[[Event], bool],
        *,
        since: int = 0,
        timeout_s: float = STEP_TIMEOUT_S,
        what: str = "event",
    ) -> Event:
        """The first event at index >= ``since`` that satisfies ``predicate``."""

        def find() -> Event | None:
            for event in self.events[since:]:
                if predicate(event):
                    return event
            return None

        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: find() is not None or _ended(self.events)),
                    timeout_s,
                )
            except TimeoutError:
                raise JsPeerError(f"no {what} in {timeout_s} s\n{self._describe()}") from None
            found = find()
        if found is None:
            raise JsPeerError(f"peer ended before {what}\n{self._describe()}")
        return found

    def find_events(self, name: str) -> list[Event]:
        return [e for e in self.events if e.get("event") == name]

    # -- commands --------------------------------------------------------------

    async def send(self, cmd: str, **fields: Any) -> int:
        """Write a command; return its tag (its reply carries the same tag)."""
        assert self.proc.stdin is not None
        tag = next(self._tags)
        line = json.dumps({"cmd": cmd, "tag": tag, **fields}) + "\n"
        self.proc.stdin.write(line.encode("utf-8"))
        await self.proc.stdin.drain()
        return tag

    async def reply(self, tag: int, *, timeout_s: float = STEP_TIMEOUT_S) -> Event:
        event = await self.wait_event(
            lambda e: e.get("tag") == tag and e.get("event") in ("reply", "error"),
            timeout_s=timeout_s,
            what=f"reply to command #{tag}",
        )
        if event["event"] == "error":
            raise JsPeerError(f"command #{tag} failed: {event['message']}\n{self._describe()}")
        return event

    async def request(self, cmd: str, *, timeout_s: float = STEP_TIMEOUT_S, **fields: Any) -> Event:
        """Send a command and return its reply; raise JsPeerError if it failed."""
        return await self.reply(await self.send(cmd, **fields), timeout_s=timeout_s)

    async def wait_until(self, timeout_s: float = STEP_TIMEOUT_S, **until: Any) -> Event:
        """Ask the peer to answer once ``until`` holds on its side (see peer.mjs
        ``wait``); return its state at that moment."""
        return await self.request(
            "wait",
            until=until,
            timeoutMs=int(timeout_s * 1000),
            timeout_s=timeout_s + STEP_TIMEOUT_S,
        )

    async def wait_synced(self, *, since: int = 0, timeout_s: float = STEP_TIMEOUT_S) -> Event:
        return await self.wait_event(
            lambda e: e.get("event") == "synced" and e.get("value") is True,
            since=since,
            timeout_s=timeout_s,
            what="synced",
        )

    @property
    def client_id(self) -> int:
        for event in self.events:
            if event.get("event") == "ready":
                return int(event["clientID"])
        raise JsPeerError(f"peer never reported ready\n{self._describe()}")

    # -- ending ----------------------------------------------------------------

    async def close(self, *, timeout_s: float = 5.0) -> int | None:
        """Ask the peer to exit; kill it if it does not. Returns its exit code."""
        if self.proc.returncode is None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send("exit")
            if self.proc.stdin is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout_s)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for task in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout_s)
        return self.proc.returncode


def _ended(events: list[Event]) -> bool:
    return bool(events) and events[-1].get("event") == "eof"
