"""A private line to the facilitators (protocol.md §6.8): each participant's
thread with the room's facilitators, in a server-written document of its own.

A thread is the document ``private:<key>``, ``<key>`` being the first 32 hex
digits of the SHA-256 of the room id and the participant's user id
(:func:`thread_doc`). The name is a pseudonym, not a secret: it keeps the
user id (often an e-mail address) out of document names, store keys and log
lines, and differs from room to room; who may read a thread is decided by
role here, never by knowing its name.

Who may join (read) a thread: its participant and the room's facilitators;
observers (also by a role override) and everyone else are refused
``private_line_forbidden``, a removed user ``removed``. Who may write: the
same, through ``private:send`` only (the server stamps the message, as the
chat's; ``sync-update`` is ``read_only_document``). Muting is about the
group chat: a muted participant can still write to the facilitators. After
the session ended nothing is written.

Each message carries ``threadOf``, the user id of the thread's participant,
so a facilitator's list of threads (:func:`thread_summary`) names whose
thread it is even when a facilitator wrote first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from crdt.errors import InvalidPayload
from crdt.schemas import CHAT_ROOT, read_chat
from crdt.types import DocName, RoomId, UserId
from rooms.chat import ChatLog
from rooms.document import Document
from rooms.errors import PermissionDenied, PrivateLineForbidden
from rooms.identity import Identity, Role
from rooms.names import PRIVATE_KEY_CHARS, PRIVATE_PREFIX, is_private
from rooms.policy import RoomPolicy

__all__ = [
    "MAX_PRIVATE_THREADS",
    "PRIVATE_MESSAGE",
    "PRIVATE_SEND",
    "PRIVATE_THREADS",
    "THREAD_OF",
    "PrivateLog",
    "ThreadSummary",
    "check_private_join",
    "recipient",
    "thread_doc",
    "thread_owner",
    "thread_summary",
]

#: A participant's (or a facilitator's) message in a thread.
PRIVATE_SEND = "private:send"
#: A facilitator's question: which threads the room has.
PRIVATE_THREADS = "private:threads"
#: To the room's facilitators: a thread has a new message (no text).
PRIVATE_MESSAGE = "private:message"
#: The message field naming the thread's participant.
THREAD_OF = "threadOf"

#: Private threads one room may hold: a facilitator's ``private:send`` may
#: name any well-formed user id, and each new one is a document of the room
#: (``private:threads`` and the export read them all). A group's
#: participants are far fewer.
MAX_PRIVATE_THREADS = 200

#: User ids as tokens have them (collab.tokens ``sub``).
_USER_ID = re.compile(r"[A-Za-z0-9_.:@|+-]{1,128}")


def thread_doc(room: RoomId, user_id: str) -> DocName:
    """The document of ``user_id``'s private thread in ``room``."""
    digest = hashlib.sha256(f"{room}\n{user_id}".encode("utf-8", "surrogatepass")).hexdigest()
    return DocName(PRIVATE_PREFIX + digest[:PRIVATE_KEY_CHARS])


def check_private_join(policy: RoomPolicy, room: RoomId, doc: DocName, identity: Identity) -> None:
    """Raise unless ``identity`` may join (read) private thread ``doc``: its
    participant or a facilitator (the room's removals were checked before)."""
    role = policy.role_of(identity)
    if role is Role.FACILITATOR:
        return
    if role is Role.OBSERVER:
        raise PrivateLineForbidden("observers cannot read private threads")
    if thread_doc(room, identity.user_id) != doc:
        raise PrivateLineForbidden("this private thread is not yours")


def recipient(room: RoomId, policy: RoomPolicy, identity: Identity, to: Any) -> UserId:
    """The participant whose thread ``identity``'s ``private:send`` goes to:
    a participant's own (``to`` absent or themselves), the one a facilitator
    names in ``to`` (InvalidPayload without one)."""
    role = policy.role_of(identity)
    if role is Role.OBSERVER:
        raise PermissionDenied("observers are read-only")
    if role is not Role.FACILITATOR:
        if to is not None and to != identity.user_id:
            raise PrivateLineForbidden("a participant writes to their own thread only")
        return identity.user_id
    if not isinstance(to, str) or not _USER_ID.fullmatch(to):
        raise InvalidPayload("to must name a participant: 1-128 characters of [A-Za-z0-9_.:@|+-]")
    if to == identity.user_id:
        raise InvalidPayload("a facilitator has no private thread of their own")
    return UserId(to)


class PrivateLog(ChatLog):
    """One private thread: the chat's idempotent, store-before-ack ``send``
    over the thread's document, with the private line's rules."""

    __slots__ = ()

    def check(self, identity: Identity) -> None:
        self.doc.policy.check_private(identity)


def thread_owner(doc: Document) -> str | None:
    """The participant a thread is with (its messages' ``threadOf``), None if empty."""
    for value in doc.engine.read_array(CHAT_ROOT):
        if isinstance(value, dict) and isinstance(value.get(THREAD_OF), str):
            return str(value[THREAD_OF])
    return None


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """What a facilitator's list shows of a thread: ids, counts, times; no text."""

    doc: str
    user_id: str
    #: The participant's name as their last message gave it ("" if none).
    name: str
    messages: int
    last_ts: float
    #: The role of the last message's author.
    last_role: str

    def to_json(self) -> dict[str, Any]:
        return {
            "doc": self.doc,
            "userId": self.user_id,
            "name": self.name,
            "messages": self.messages,
            "lastTs": self.last_ts,
            "lastRole": self.last_role,
        }


def thread_summary(doc: Document) -> ThreadSummary | None:
    """``doc``'s summary, None for a document that is not a thread or holds no message."""
    if not is_private(doc.name):
        return None
    owner = thread_owner(doc)
    messages = read_chat(doc.engine.read_array(CHAT_ROOT))
    if owner is None or not messages:
        return None
    name = next((m.author_name for m in reversed(messages) if m.author_id == owner), "")
    last = messages[-1]
    return ThreadSummary(doc.name, owner, name, len(messages), last.ts, last.role)
