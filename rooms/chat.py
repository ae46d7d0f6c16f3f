"""Chat: the server-written ``chat`` document and its idempotent ``send``.

Clients never write the chat document; they ask (``chat:send``) and the
server stamps author, role, time and id, then appends (protocol.md §6.1).
A retry with the same client message id returns the stored message id and
appends nothing.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crdt.schemas import (
    CHAT_ROOT,
    ChatMessage,
    read_chat,
    validate_chat_text,
    validate_client_message_id,
)
from crdt.types import Update, UserId
from rooms.document import Document
from rooms.identity import Identity
from rooms.limits import Limits

__all__ = ["ChatLog", "SendResult", "new_message_id"]

#: What a message's fields and Yjs framing add to its text, about.
_MESSAGE_OVERHEAD_BYTES = 512


def new_message_id(ts_ms: float) -> str:
    """A message id that sorts by server time: 12 hex digits of ms, then 8 random."""
    return f"{int(ts_ms):012x}{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class SendResult:
    message: ChatMessage
    #: The update to relay and keep, or None for a duplicate.
    update: Update | None

    @property
    def duplicate(self) -> bool:
        return self.update is None


class ChatLog:
    """The chat of one room, over its ``chat`` document."""

    __slots__ = ("_by_client_id", "_clock", "doc", "limits")

    def __init__(self, doc: Document, *, limits: Limits, clock_ms: Callable[[], float]) -> None:
        self.doc = doc
        self.limits = limits
        self._clock = clock_ms
        self._by_client_id: dict[tuple[UserId, str], ChatMessage] = {}
        for message in self.messages():
            if message.client_message_id is not None:
                key = (UserId(message.author_id), message.client_message_id)
                self._by_client_id[key] = message

    def messages(self) -> list[ChatMessage]:
        return read_chat(self.doc.engine.read_array(CHAT_ROOT))

    def send(
        self, identity: Identity, text: Any, client_message_id: Any, *, hold: bool = False
    ) -> SendResult:
        """Append a message from ``identity``; raise InvalidChatMessage,
        PermissionDenied or DocumentTooLarge (nothing appended) if it may not
        be sent, InternalError if the engine failed (nothing appended either).

        With ``hold`` the append stays retractable (:meth:`take_back`) until
        the document's ``release()``: for storing before acknowledging."""
        self.doc.policy.check_chat(identity)
        cmid = validate_client_message_id(client_message_id)
        body = validate_chat_text(text, max_chars=self.limits.max_chat_chars)
        key = (identity.user_id, cmid)
        existing = self._by_client_id.get(key)
        if existing is not None:
            return SendResult(existing, None)
        ts = float(int(self._clock()))
        message = ChatMessage(
            id=new_message_id(ts),
            author_id=identity.user_id,
            author_name=identity.name,
            role=identity.role.value,
            text=body,
            ts=ts,
            client_message_id=cmid,
        )
        fields = message.to_fields()
        update = self.doc.write(
            lambda engine: engine.append_map(CHAT_ROOT, fields),
            adding=len(body.encode()) + _MESSAGE_OVERHEAD_BYTES,
            hold=hold,
        )
        self._by_client_id[key] = message
        return SendResult(message, update)

    def redacted(self, message_id: str) -> None:
        """Forget the text of a redacted message (the copy kept for resends)."""
        for key, message in self._by_client_id.items():
            if message.id == message_id:
                self._by_client_id[key] = dataclasses.replace(message, text="", redacted=True)

    def take_back(self, result: SendResult) -> None:
        """Undo a held :meth:`send` whose update could not be stored."""
        assert result.update is not None
        self.doc.retract(result.update)
        key = (UserId(result.message.author_id), result.message.client_message_id or "")
        self._by_client_id.pop(key, None)
