"""Baseline (a): the stock python-socketio relay with no CRDT, the floor of
this stack. Relays ``sync-update`` to the other members of the namespace,
exactly as collab's document path does, and nothing else.

    python -m bench.relay_server --port 8100
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
from aiohttp import web


def build_app() -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        namespaces="*",
        logger=False,
        engineio_logger=False,
        async_handlers=False,
    )

    @sio.on("sync-update", namespace="*")
    async def relay(namespace: str, sid: str, *args: Any) -> None:
        await sio.emit("sync-update", args[0], namespace=namespace, skip_sid=sid)

    @sio.on("sync-step-1", namespace="*")
    async def step1(namespace: str, sid: str, *args: Any) -> bytes:
        return b"\x00\x00"

    app = web.Application()
    sio.attach(app)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    print(f"relay listening on http://{args.host}:{args.port}", flush=True)
    web.run_app(build_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
