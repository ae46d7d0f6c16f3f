"""Chat: the server-written ``chat`` document and its idempotent ``send``.

Clients never write the chat document; they ask (``chat:send``) and the
server stamps author, role, time and id, then appends (protocol.md §6.1).
A retry with the same client message id returns the stored message id and
appends nothing.

Across nodes (Redis), the retry may reach another node before the message
did: a message sent with ``hold`` carries a *claim*, its key
(:func:`message_key`: the user and the client message id) and value (its id
and time), which the store checks and sets atomically with the append. A
claim refused because another node stored that key first is marked
(:meth:`ChatLog.duplicate`); the sender then takes its copy back and answers
with the stored message (:meth:`ChatLog.stored_elsewhere`).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

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

__all__ = ["ChatLog", "SendResult", "message_key", "message_keys", "new_message_id"]

#: What a message's fields and Yjs framing add to its text, about.
_MESSAGE_OVERHEAD_BYTES = 512


def new_message_id(ts_ms: float) -> str:
    """A message id that sorts by server time: 12 hex digits of ms, then 8 random."""
    return f"{int(ts_ms):012x}{secrets.token_hex(4)}"


def message_key(
    user_id: str, client_message_id: str, message_id: str, ts: float
) -> tuple[str, str]:
    """The key a message claims in the store (JSON ``[user, clientMessageId]``,
    unambiguous whatever either holds) and its value (``"<id>|<ts>"``)."""
    return orjson.dumps([user_id, client_message_id]).decode(), f"{message_id}|{int(ts)}"


def message_keys(doc: Document) -> dict[str, str]:
    """The key of every message of a chat document that has a client message id."""
    keys = {}
    for m in read_chat(doc.engine.read_array(CHAT_ROOT)):
        if m.client_message_id is not None:
            name, value = message_key(m.author_id, m.client_message_id, m.id, m.ts)
            keys[name] = value
    return keys


@dataclass(slots=True)
class _Claim:
    """A held message's key, until its send is over."""

    update: Update
    key: tuple[str, str]
    #: The value the store holds for the key, if another node stored it first.
    stored: str | None = None


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

    __slots__ = ("_by_client_id", "_claims", "_clock", "_stale", "doc", "limits")

    def __init__(self, doc: Document, *, limits: Limits, clock_ms: Callable[[], float]) -> None:
        self.doc = doc
        self.limits = limits
        self._clock = clock_ms
        self._by_client_id: dict[tuple[UserId, str], ChatMessage] = {}
        self._claims: list[_Claim] = []
        self._stale = True

    def invalidate(self) -> None:
        """Messages came from elsewhere (another node): re-read the client
        message ids before the next send."""
        self._stale = True

    def _index(self) -> None:
        self._stale = False
        self._by_client_id = {}
        for message in self.messages():
            if message.client_message_id is not None:
                key = (UserId(message.author_id), message.client_message_id)
                self._by_client_id[key] = message

    def messages(self) -> list[ChatMessage]:
        return read_chat(self.doc.engine.read_array(CHAT_ROOT))

    def check(self, identity: Identity) -> None:
        """Raise unless ``identity`` may send here (the room's chat rules;
        rooms.private_line has its own)."""
        self.doc.policy.check_chat(identity)

    def send(
        self,
        identity: Identity,
        text: Any,
        client_message_id: Any,
        *,
        hold: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> SendResult:
        """Append a message from ``identity``; raise InvalidChatMessage,
        PermissionDenied or DocumentTooLarge (nothing appended) if it may not
        be sent, InternalError if the engine failed (nothing appended either).

        With ``hold`` the append stays retractable (:meth:`take_back`) until
        the document's ``release()``: for storing before acknowledging.
        ``extra`` fields are stored with the message's (a private thread's owner)."""
        self.check(identity)
        cmid = validate_client_message_id(client_message_id)
        body = validate_chat_text(text, max_chars=self.limits.max_chat_chars)
        key = (identity.user_id, cmid)
        if self._stale:
            self._index()
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
        fields = message.to_fields() | (extra or {})
        update = self.doc.write(
            lambda engine: engine.append_map(CHAT_ROOT, fields),
            adding=len(body.encode()) + _MESSAGE_OVERHEAD_BYTES,
            hold=hold,
        )
        self._by_client_id[key] = message
        if hold:
            claim = message_key(identity.user_id, cmid, message.id, ts)
            self._claims.append(_Claim(update, claim))
        return SendResult(message, update)

    def claims(self, updates: Sequence[Update]) -> dict[int, tuple[str, str]]:
        """Index in ``updates`` → the key and value that update claims (held
        messages not yet settled)."""
        found = {}
        for i, update in enumerate(updates):
            for claim in self._claims:
                if claim.update is update:
                    found[i] = claim.key
        return found

    def duplicate(self, update: Update, stored: str) -> None:
        """The store refused ``update``'s claim: it holds ``stored`` (another
        node's message id and time) for the key. The update was not stored."""
        for claim in self._claims:
            if claim.update is update:
                claim.stored = stored

    def stored_elsewhere(self, result: SendResult) -> SendResult | None:
        """If another node stored ``result``'s key first: the answer to give
        (that message's id and time, ``duplicate``); the caller takes its own
        copy back (:meth:`take_back`)."""
        for claim in self._claims:
            if claim.update is result.update and claim.stored is not None:
                message_id, _, ts = claim.stored.rpartition("|")
                stored = dataclasses.replace(result.message, id=message_id, ts=float(ts))
                return SendResult(stored, None)
        return None

    def settled(self, result: SendResult) -> None:
        """The send of ``result`` is over (stored, taken back, or answered as
        a duplicate): forget its claim."""
        self._claims = [c for c in self._claims if c.update is not result.update]

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
