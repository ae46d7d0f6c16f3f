"""A minimal Socket.IO v5 / Engine.IO v4 WebSocket client for tests that need
exact control of frames and their order (no library between the test and the wire)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp


class RawSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession) -> None:
        self.ws = ws
        self.session = session

    @classmethod
    async def open(
        cls, url: str, *, max_msg_size: int = 4 << 20, local_addr: str | None = None
    ) -> RawSocket:
        connector = aiohttp.TCPConnector(local_addr=(local_addr, 0)) if local_addr else None
        session = aiohttp.ClientSession(connector=connector)
        try:
            ws = await session.ws_connect(
                url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
                max_msg_size=max_msg_size,
            )
        except BaseException:
            await session.close()
            raise
        hello = await ws.receive_str()
        assert hello.startswith("0{"), hello
        return cls(ws, session)

    async def connect(self, namespace: str, auth: dict[str, Any] | None = None) -> dict[str, Any]:
        """Connect to ``namespace``; return the CONNECT (or CONNECT_ERROR) payload."""
        await self.ws.send_str(f"40{namespace}," + json.dumps(auth or {}))
        while True:
            # Events of namespaces already connected may come first (an
            # attachment is a binary frame): skipped.
            msg = await self.ws.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"closed while connecting: {msg.type}")
            text = str(msg.data)
            if text.startswith(f"40{namespace},"):
                return {"connected": True, **json.loads(text[len(f"40{namespace},") :])}
            if text.startswith(f"44{namespace},"):
                return {"connected": False, **json.loads(text[len(f"44{namespace},") :])}

    async def next_text(self, match: str | Callable[[str], bool]) -> str:
        """The next text frame starting with ``match`` (or for which it is
        true), skipping other frames; AssertionError if the session ends."""
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), 10)
            assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg
            if msg.type is aiohttp.WSMsgType.TEXT:
                text = str(msg.data)
                if text.startswith(match) if isinstance(match, str) else match(text):
                    return text

    async def send_binary_event(self, namespace: str, event: str, payload: bytes) -> None:
        header = json.dumps([event, {"_placeholder": True, "num": 0}])
        await self.ws.send_str(f"451-{namespace},{header}")
        await self.ws.send_bytes(payload)

    async def sync_updates(self, namespace: str, count: int) -> list[bytes]:
        """The payloads of the next ``count`` sync-update events received."""
        received: list[bytes] = []
        header = f'451-{namespace},["sync-update",'
        while len(received) < count:
            msg = await asyncio.wait_for(self.ws.receive(), 30)
            if msg.type == aiohttp.WSMsgType.TEXT and msg.data.startswith(header):
                attachment = await asyncio.wait_for(self.ws.receive(), 30)
                received.append(attachment.data)
        return received

    async def until_closed(self) -> aiohttp.WSMsgType:
        """Read past whatever data arrives until the server ends the
        connection; return how it ended (CLOSE, CLOSED or ERROR)."""
        msg = await asyncio.wait_for(self.ws.receive(), 30)
        while msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            msg = await asyncio.wait_for(self.ws.receive(), 30)
        return msg.type

    async def disconnect_namespace(self, namespace: str) -> None:
        await self.ws.send_str(f"41{namespace},")

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()
