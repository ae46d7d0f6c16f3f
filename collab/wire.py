"""Where an exception becomes a wire error (protocol.md §7), and nowhere else."""

from __future__ import annotations

from typing import Any

from crdt.errors import CollabError, CrdtCode, InvalidPayload

__all__ = [
    "ERROR_EVENT",
    "ROOM_STATE",
    "TEMPLATES_LIST",
    "ack_error",
    "ack_ok",
    "error_payload",
    "one_argument",
]

#: The event that carries an error for events without an acknowledgement.
ERROR_EVENT = "collab:error"
#: The event that carries a room's moderation state (protocol.md §6.4).
ROOM_STATE = "room:state"
#: A facilitator asks which board templates there are (protocol.md §6.3).
TEMPLATES_LIST = "templates:list"


def error_payload(exc: BaseException, *, event: str | None = None) -> dict[str, Any]:
    """``{"code", "message"[, "event"]}`` for ``exc``. Unexpected exceptions
    become ``internal_error`` without their text (it may hold internals)."""
    if isinstance(exc, CollabError):
        payload: dict[str, Any] = {"code": exc.code.value, "message": str(exc)}
    else:
        payload = {"code": CrdtCode.INTERNAL_ERROR.value, "message": "internal error"}
    if event is not None:
        payload["event"] = event
    return payload


def ack_ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def ack_error(exc: BaseException) -> dict[str, Any]:
    return {"ok": False, "error": error_payload(exc)}


def one_argument(args: tuple[Any, ...]) -> Any:
    """The single argument every collab event takes (protocol.md §3)."""
    if len(args) != 1:
        raise InvalidPayload(f"expected exactly one argument, got {len(args)}")
    return args[0]
