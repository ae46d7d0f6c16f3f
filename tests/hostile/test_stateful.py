"""Issue 12: honest and hostile clients, interleaved by a Hypothesis state machine.

Each example runs one real server (memory store, ``--dev`` with signed tokens,
so a user keeps one user id across its connections and reconnects) on a
loopback port, and drives real :class:`~collab.client.CollabClient`\\ s:

- 3 or 4 users in room ``group``, each with a board and a chat connection;
- a bystander on the board of room ``elsewhere``.

Rules mix honest events (board edits, also while offline; chat; awareness;
disconnect and reconnect) with hostile ones (bad ``sync-update`` payloads, the
POISON update that makes yrs panic, writes to the read-only chat document,
``chat:send`` with lone surrogates, control characters, empty, over-long and
wrongly typed fields, reuse of another message's ``clientMessageId``,
malformed and forged awareness, unknown events, moderation by participants).
Whether a text with a lone surrogate or a control character is accepted is
not assumed; what is acknowledged must be kept, and nothing else may break.

Async from sync rules: each example owns an event loop
(``asyncio.new_event_loop()``) and every rule runs one coroutine to completion
on it. The server, its background tasks and all clients live on that loop; it
stands still between rules, so nothing happens behind the model's back, and
while a rule awaits, server and clients interleave as in production. The test
is a synchronous ``unittest.TestCase``, so pytest-asyncio never wraps it in a
loop of its own, and nothing outlives an example: teardown closes the clients,
stops the server, cancels what is left and closes the loop.

Refusals are checked as they arrive (an error must come back for each bad
event; after an event that may be accepted, a probe event marks when it was
handled). A ``chat:send`` whose connection drops before its ack is recorded as
unanswered and the client reloads (a failure at the end, after the checks that
say what the drop did to the chat). The end-state invariants need everyone synced, so they run in
``teardown``: offline connections come back, then each check waits on a
condition (``tests.waiting.until``, ``CollabClient.wait_for``), or on a round
trip on the client's own connection, never for a fixed time:

- each acknowledged chat message is on the server once, with its text, its
  sender's identity, in ack order, and in every chat connection's document;
- every message on the server is whole (no half-written entry) and was
  acknowledged: nothing refused was stored;
- every client's chat and board equal the server's; rooms do not leak;
  nothing of a refused update was applied;
- every client got exactly the errors it provoked, every ``chat:send`` an
  ack, and a fresh client in a fresh room still syncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import socketio
from hypothesis import Phase, settings
from hypothesis import event as event_note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from pycrdt import Array, Doc, Map

from collab.client import CollabClient, CollabClientError
from crdt.awareness import AwarenessEntry, encode_awareness
from crdt.lib0 import Encoder
from tests.conftest import SECRET, RunningServer, mint, start_server
from tests.unit.test_document import POISON
from tests.waiting import let_io_run, until

T = TypeVar("T")

ROOM = "group"
ELSEWHERE = "elsewhere"
#: A wait for what a healthy server does at once (an ack, an error, a resync,
#: a relay); only a broken server waits it out.
STEP_TIMEOUT_S = 10.0
#: An unknown event sent after an event that may or may not be refused: its
#: ``collab:error`` shows everything before it was handled (events of one
#: connection are handled in arrival order, protocol.md §4).
PROBE = "hostile:probe"

#: Rate limits raised out of the way: this test is about content, not floods.
SERVER_SETTINGS: dict[str, Any] = {
    "dev": False,
    "jwt_secret": SECRET,
    "chat_burst": 1000,
    "chat_rate_per_s": 1000.0,
    "event_burst": 1000,
    "event_rate_per_s": 1000.0,
    "max_refusals_per_min": 10_000,
}


def _real_update() -> bytes:
    doc: Doc[Any] = Doc()
    doc.get("shapes", type=Map)["real"] = {"type": "rect", "x": 1.5, "text": "hello"}
    return bytes(doc.get_update())


#: A valid board update (key ``real``) that only ever reaches the server cut or
#: extended, or on the read-only chat document: ``real`` must never appear.
REAL_UPDATE = _real_update()

MALFORMED_UPDATE = frozenset({"malformed_update"})
INVALID_PAYLOAD = frozenset({"invalid_payload"})

#: Bad ``sync-update`` arguments and the codes that may refuse them (§3, §7).
BAD_UPDATES: dict[str, tuple[tuple[Any, ...], frozenset[str]]] = {
    "garbage": ((b"\xff\xff\xff\xff\x0f\x01",), MALFORMED_UPDATE),
    "trailing bytes": ((REAL_UPDATE + b"\x00",), MALFORMED_UPDATE),
    "engine panic (POISON)": ((POISON,), MALFORMED_UPDATE),
    "text instead of bytes": (("hello",), INVALID_PAYLOAD),
    "object instead of bytes": (({"update": "AAA="},), INVALID_PAYLOAD),
    "no argument": ((), INVALID_PAYLOAD),
    "two arguments": ((b"\x00\x00", "x"), INVALID_PAYLOAD),
    # More than one binary attachment in one packet: ``invalid_packet`` (§7),
    # maybe once more for each attachment that then arrives unannounced.
    "two attachments": ((b"\x00\x00", b"\x00\x00"), INVALID_PAYLOAD | {"invalid_packet"}),
}


@dataclass(frozen=True)
class Expect:
    """What a server may answer: accept (``ok``), or refuse with ``codes``."""

    ok: bool
    codes: frozenset[str] = frozenset()


ACCEPT = Expect(ok=True)
#: Accepted or refused with invalid_chat_message; the test does not assume which.
EITHER = Expect(ok=True, codes=frozenset({"invalid_chat_message"}))
REFUSE = Expect(ok=False, codes=frozenset({"invalid_chat_message"}))
NOT_AN_OBJECT = Expect(ok=False, codes=frozenset({"invalid_payload"}))

#: Texts pycrdt cannot encode (a lone surrogate) or that have no place in a
#: message (control characters): accepted or refused, the test does not assume.
UNSTORABLE_TEXTS = {
    "lone high surrogate": "a\ud800b",
    "lone low surrogate": "\udc00",
    "escape (C0)": "\x1b[2Jcleared",
    "carriage return": "a\r forged line",
    "bell": "ding\x07",
    "C1 control": "next\x85line",
    "DEL": "a\x7f",
}

#: Other hostile ``chat:send`` payloads (``ID``: a fresh client message id), §6.1.
ID = "<fresh id>"
HOSTILE_CHATS: dict[str, tuple[Any, Expect]] = {
    "NUL": ({"text": "a\x00b", "clientMessageId": ID}, REFUSE),
    "empty": ({"text": "", "clientMessageId": ID}, REFUSE),
    "blank": ({"text": " \t\n ", "clientMessageId": ID}, REFUSE),
    "over-long": ({"text": "x" * 4001, "clientMessageId": ID}, REFUSE),
    "far over-long": ({"text": "x" * 100_000, "clientMessageId": ID}, REFUSE),
    "number": ({"text": 42, "clientMessageId": ID}, REFUSE),
    "null": ({"text": None, "clientMessageId": ID}, REFUSE),
    "list": ({"text": ["hi"], "clientMessageId": ID}, REFUSE),
    "object": ({"text": {"text": "hi"}, "clientMessageId": ID}, REFUSE),
    "boolean": ({"text": True, "clientMessageId": ID}, REFUSE),
    "no text": ({"clientMessageId": ID}, REFUSE),
    "id with a space": ({"text": "hi", "clientMessageId": "has space"}, REFUSE),
    "empty id": ({"text": "hi", "clientMessageId": ""}, REFUSE),
    "id too long": ({"text": "hi", "clientMessageId": "x" * 65}, REFUSE),
    "numeric id": ({"text": "hi", "clientMessageId": 7}, REFUSE),
    "no id": ({"text": "hi"}, REFUSE),
    "forged author": (
        {"text": "hi", "clientMessageId": ID, "authorId": "boss", "role": "facilitator"},
        ACCEPT,
    ),
    "not an object": ("just a string", NOT_AN_OBJECT),
    "array": (["hi", "id"], NOT_AN_OBJECT),
}


def _raw_awareness(client_id: int, state: bytes) -> bytes:
    enc = Encoder()
    for value in (1, client_id, 1):
        enc.write_var_uint(value)
    enc.write_var_bytes(state)
    return enc.to_bytes()


def _states(ids: list[int], state: str = "{}") -> bytes:
    return encode_awareness([AwarenessEntry(i, 1, state) for i in ids])


MALFORMED = Expect(ok=False, codes=frozenset({"malformed_awareness"}))
NOT_OWNED = Expect(ok=False, codes=frozenset({"awareness_client_not_owned"}))
UNKNOWN_EVENT = Expect(ok=False, codes=frozenset({"unknown_event"}))

#: Hostile ``awareness-update`` payloads, built from fresh client ids (§3.1).
HOSTILE_AWARENESS: dict[str, tuple[Callable[[list[int]], Any], Expect]] = {
    "truncated": (lambda ids: b"\x05\x01", MALFORMED),
    "array state": (lambda ids: _states(ids[:1], "[1,2]"), MALFORMED),
    "state not JSON": (lambda ids: _states(ids[:1], "{nope"), MALFORMED),
    "invalid UTF-8 state": (lambda ids: _raw_awareness(ids[0], b'{"n":"\xff\xfe"}'), MALFORMED),
    "text instead of bytes": (lambda ids: "text", Expect(False, frozenset({"invalid_payload"}))),
    "nine client ids": (lambda ids: _states(ids[:9]), NOT_OWNED),
    "seventeen entries": (
        lambda ids: _states(ids[:17]),
        Expect(False, frozenset({"message_too_large"})),
    ),
    "escaped lone surrogate": (
        lambda ids: _states(ids[:1], '{"name":"\\ud800"}'),
        Expect(ok=True, codes=frozenset({"malformed_awareness"})),
    ),
}

UNKNOWN_EVENTS = ["sync-step-2", "awareness-query", "__proto__", "yjs|evil", "e" * 200]
#: Moderation events a participant sends: all refused (protocol.md §6.3).
MODERATION: dict[str, dict[str, Any]] = {
    "mod:lock": {"locked": True},
    "mod:end": {},
    "mod:mute": {"userId": "user-0", "muted": True},
    "mod:remove": {"userId": "user-0", "removed": True},
    "mod:redact": {"messageId": "0123456789ab01234567"},
}

# -- strategies ---------------------------------------------------------------------

users = st.integers(min_value=0, max_value=3)  # modulo the example's user count
vias = st.sampled_from(["board", "chat"])
keys = st.sampled_from([f"s{i}" for i in range(6)])
coordinates = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
#: What a well-behaved client sends: no surrogates or control characters
#: (tab and newline are fine); it starts with a letter, so it is never blank.
honest_text = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\t"), max_size=200
).map(lambda body: "m" + body)
shapes = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["rect", "ellipse", "sticky", "text"]),
        "x": coordinates,
        "y": coordinates,
        "text": st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    }
)
#: Text from hostile alphabets: lone surrogates, controls, format characters, spaces.
hostile_text = st.text(
    st.characters(categories=("Cs", "Cc", "Cf", "Zs", "Ll")), min_size=1, max_size=12
)

# -- the model ----------------------------------------------------------------------


class Conn:
    """One connection of the model: its client (None while offline), its
    document (kept offline), and what it should have been told."""

    def __init__(self, name: str, room: str, doc_name: str, auth: dict[str, Any]) -> None:
        self.name = name
        self.room = room
        self.doc_name = doc_name
        self.auth = auth
        self.doc: Doc[Any] = Doc()
        self.client: CollabClient | None = None
        #: ``collab:error`` events this client has provoked.
        self.provoked = 0
        #: Client ids this client claimed with hostile awareness the server accepted.
        self.claimed = 0
        #: Set once a peer has seen this client's awareness (so the server owns it).
        self.announced = False

    async def connect(self, url: str) -> None:
        """Connect with a fresh Yjs client id and the document as it is here
        (a reload that kept the document locally, as y-indexeddb does)."""
        doc: Doc[Any] = Doc(client_id=secrets.randbits(32))
        doc.apply_update(self.doc.get_update())
        self.doc = doc
        self.client = CollabClient(url, self.room, self.doc_name, auth=self.auth, doc=doc)
        self.provoked = self.claimed = 0
        self.announced = False
        await self.client.connect(timeout_s=STEP_TIMEOUT_S)

    async def ready(self) -> CollabClient:
        """The client, synced."""
        assert self.client is not None, f"{self.name} is offline"
        await self.client.wait_synced(timeout_s=STEP_TIMEOUT_S)
        return self.client


@dataclass(frozen=True)
class Acked:
    """A chat message the server acknowledged with ``{"ok": true}``."""

    id: str
    text: str
    author: str
    cmid: str

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 40 else f"{self.text[:20]}...({len(self.text)})"
        return f"Acked({self.id} {text!r} by {self.author}, {self.cmid})"


def on_the_wire(text: str) -> str:
    """``text`` as the server reads it from the JSON the client sends: two
    surrogates that form a pair become the one character they encode."""
    return str(json.loads(json.dumps(text)))


def shapes_of(doc: Doc[Any]) -> dict[str, Any]:
    return doc.get("shapes", type=Map).to_py() or {}


def messages_of(doc: Doc[Any]) -> list[dict[str, Any]]:
    return doc.get("messages", type=Array).to_py() or []


class HostileClients(RuleBasedStateMachine):
    """One server, honest and hostile clients (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.failed = False
        self.server: RunningServer | None = None
        self.users = 0
        self.conns: dict[tuple[int, str], Conn] = {}
        self.bystander = Conn("bystander", ELSEWHERE, "board", {})
        self.acked: list[Acked] = []
        #: chat:send whose connection dropped before the ack: (user id, cmid, text).
        self.unanswered: list[tuple[str, Any, Any]] = []
        self._cmids = itertools.count()
        self._fresh_client_ids = itertools.count(4_000_000_000, -1)

    # -- driving ------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this example's loop; a failure skips the end checks."""
        try:
            return self.loop.run_until_complete(coro)
        except BaseException:
            self.failed = True
            raise

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def online(self, user: int, via: str) -> Conn | None:
        """User ``user``'s connection ``via``, else its other one, if online."""
        for name in (via, "chat" if via == "board" else "board"):
            conn = self.conns[user % self.users, name]
            if conn.client is not None:
                return conn
        return None

    def board(self, user: int) -> Conn | None:
        conn = self.conns[user % self.users, "board"]
        return conn if conn.client is not None else None

    def user_id(self, user: int) -> str:
        return f"user-{user % self.users}"

    def server_doc(self, room: str, doc_name: str) -> Any:
        assert self.server is not None
        return self.server.registry.rooms[room].docs[doc_name].engine

    # -- setup ----------------------------------------------------------------------

    @initialize(count=st.integers(min_value=3, max_value=4))
    def start(self, count: int) -> None:
        self.users = count
        self.run(self._start())

    async def _start(self) -> None:
        self.server = await start_server(**SERVER_SETTINGS)
        for user in range(self.users):
            auth = {"token": mint(ROOM, sub=f"user-{user}", name=f"User {user}")}
            for doc_name in ("board", "chat"):
                self.conns[user, doc_name] = Conn(f"user{user}/{doc_name}", ROOM, doc_name, auth)
        self.bystander.auth = {"token": mint(ELSEWHERE, sub="bystander", name="Bystander")}
        conns = [*self.conns.values(), self.bystander]
        await asyncio.gather(*(conn.connect(self.url) for conn in conns))

    # -- refusals -------------------------------------------------------------------

    async def refused(self, conn: Conn, event: str, expect: Expect) -> None:
        """Wait for the one ``collab:error`` that ``event`` must provoke."""
        client = await conn.ready()
        conn.provoked += 1
        await client.wait_for(lambda: len(client.errors) >= conn.provoked, timeout_s=STEP_TIMEOUT_S)
        error = client.errors[conn.provoked - 1]
        assert error.get("code") in expect.codes, f"{event} from {conn.name}: {error}"
        # It names this event (maybe cut short), unless the packet was refused
        # before its event was read (``invalid_packet``).
        if error.get("code") != "invalid_packet":
            name = error.get("event")
            assert isinstance(name, str) and name and event.startswith(name), error

    async def errors_before_probe(self, conn: Conn) -> list[dict[str, Any]]:
        """Send a probe; when its error is back, everything sent before it was
        handled. The errors that came before the probe's."""
        client = await conn.ready()
        before = conn.provoked
        await client.emit_raw(PROBE, {})

        def probed() -> bool:
            return any(e.get("event") == PROBE for e in client.errors[before:])

        await client.wait_for(probed, timeout_s=STEP_TIMEOUT_S)
        new = client.errors[before:]
        assert new[-1].get("code") == "unknown_event", new
        conn.provoked = len(client.errors)
        return new[:-1]

    async def maybe_refused(self, conn: Conn, event: str, expect: Expect) -> bool:
        """After an event that may be accepted: True if it was, else check the
        one refusal."""
        errors = await self.errors_before_probe(conn)
        assert len(errors) <= 1, f"{event} from {conn.name}: {errors}"
        if errors:
            assert errors[0].get("code") in expect.codes, f"{event} from {conn.name}: {errors}"
            assert errors[0].get("event") == event, errors
        event_note(f"{event} {errors[0].get('code') if errors else 'accepted'}")
        return not errors

    async def ask(self, conn: Conn, event: str, payload: Any) -> dict[str, Any] | None:
        """The ack of ``event`` (a refusal as ``{"ok": False, "code": ...}``),
        or None if the connection dropped before the ack came."""
        client = await conn.ready()
        call = asyncio.ensure_future(client.call(event, payload, timeout_s=STEP_TIMEOUT_S))
        dropped = asyncio.ensure_future(
            client.wait_for(lambda: not client.synced.is_set(), timeout_s=STEP_TIMEOUT_S)
        )
        await asyncio.wait({call, dropped}, return_when=asyncio.FIRST_COMPLETED)
        dropped.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await dropped
        if not call.done():
            call.cancel()
            # The client would reconnect by itself after about a second; a
            # reload now keeps each example short (shrinking replays it often).
            await client.close(drain_timeout_s=0)
            await conn.connect(self.url)
            return None
        try:
            return call.result()
        except CollabClientError as exc:
            return {"ok": False, "code": exc.code}
        except socketio.exceptions.TimeoutError:
            raise AssertionError(f"{event} from {conn.name}: no ack, still connected") from None

    async def round_trip(self, conn: Conn) -> None:
        """An event with an ack on ``conn``'s connection: when the ack is back,
        the client has handled everything the server sent it before."""
        ack = await self.ask(conn, PROBE, {})
        assert ack == {"ok": False, "code": "unknown_event"}, ack
        await self.refused(conn, PROBE, UNKNOWN_EVENT)

    # -- board ----------------------------------------------------------------------

    @rule(user=users, key=keys, shape=shapes)
    def edit(self, user: int, key: str, shape: dict[str, Any]) -> None:
        """Set a shape; offline too (sent when the connection comes back)."""
        self.conns[user % self.users, "board"].doc.get("shapes", type=Map)[key] = shape
        self.run(let_io_run())

    @rule(user=users, key=keys)
    def delete(self, user: int, key: str) -> None:
        board = self.conns[user % self.users, "board"].doc.get("shapes", type=Map)
        if key in board:
            del board[key]
        self.run(let_io_run())

    @rule(key=keys, shape=shapes)
    def bystander_edit(self, key: str, shape: dict[str, Any]) -> None:
        self.bystander.doc.get("shapes", type=Map)[f"b-{key}"] = shape
        self.run(let_io_run())

    @rule(user=users, case=st.sampled_from(list(BAD_UPDATES)))
    def bad_update(self, user: int, case: str) -> None:
        args, codes = BAD_UPDATES[case]
        if conn := self.board(user):
            self.run(self._bad_update(conn, args, codes))

    @rule(user=users, cut=st.integers(min_value=1, max_value=len(REAL_UPDATE) - 1))
    def truncated_update(self, user: int, cut: int) -> None:
        if conn := self.board(user):
            self.run(self._bad_update(conn, (REAL_UPDATE[:cut],), MALFORMED_UPDATE))

    @rule(user=users)
    def write_chat_document(self, user: int) -> None:
        """A client writes the server-written chat document (protocol.md §5.3)."""
        conn = self.conns[user % self.users, "chat"]
        if conn.client is not None:
            self.run(self._bad_update(conn, (REAL_UPDATE,), frozenset({"read_only_document"})))

    async def _bad_update(self, conn: Conn, args: tuple[Any, ...], codes: frozenset[str]) -> None:
        client = await conn.ready()
        await client.emit_raw("sync-update", *args)
        if "invalid_packet" not in codes:
            await self.refused(conn, "sync-update", Expect(False, codes))
            return
        errors = await self.errors_before_probe(conn)
        assert errors and all(e.get("code") in codes for e in errors), errors

    # -- chat -------------------------------------------------------------------------

    async def chat(self, user: int, via: str, payload: Any, expect: Expect, label: str) -> None:
        """Send ``chat:send``; record it if acknowledged, check a refusal's code."""
        conn = self.online(user, via)
        if conn is None:
            return
        ack = await self.ask(conn, "chat:send", payload)
        outcome = "no ack" if ack is None else "accepted" if ack["ok"] else ack["code"]
        event_note(f"chat:send {label}: {outcome}")
        fields = payload if isinstance(payload, dict) else {}
        text, cmid = fields.get("text"), fields.get("clientMessageId")
        if ack is None:
            self.unanswered.append((self.user_id(user), cmid, text))
        elif ack["ok"]:
            assert expect.ok, f"accepted {payload!r}: {ack}"
            assert ack["duplicate"] is False, ack
            assert isinstance(text, str) and isinstance(cmid, str), f"accepted {payload!r}"
            self.acked.append(Acked(ack["id"], on_the_wire(text), self.user_id(user), cmid))
        else:
            assert ack["code"] in expect.codes, f"refused {payload!r}: {ack}"

    @rule(user=users, via=vias, text=honest_text)
    def send_chat(self, user: int, via: str, text: str) -> None:
        payload = {"text": text, "clientMessageId": self.cmid()}
        self.run(self.chat(user, via, payload, ACCEPT, "honest"))

    @rule(user=users, via=vias)
    def send_longest_chat(self, user: int, via: str) -> None:
        """Exactly ``max_chat_chars`` (4000) characters: accepted."""
        payload = {"text": "x" * 4000, "clientMessageId": self.cmid()}
        self.run(self.chat(user, via, payload, ACCEPT, "4000 characters"))

    @rule(user=users, via=vias, case=st.sampled_from(list(HOSTILE_CHATS)))
    def send_hostile_chat(self, user: int, via: str, case: str) -> None:
        payload, expect = HOSTILE_CHATS[case]
        if isinstance(payload, dict):
            payload = {k: self.cmid() if v == ID else v for k, v in payload.items()}
        self.run(self.chat(user, via, payload, expect, case))

    @rule(user=users, via=vias, case=st.sampled_from(list(UNSTORABLE_TEXTS)))
    def send_unstorable_chat(self, user: int, via: str, case: str) -> None:
        payload = {"text": UNSTORABLE_TEXTS[case], "clientMessageId": self.cmid()}
        self.run(self.chat(user, via, payload, EITHER, case))

    @rule(user=users, via=vias, text=hostile_text)
    def send_hostile_text(self, user: int, via: str, text: str) -> None:
        payload = {"text": text, "clientMessageId": self.cmid()}
        self.run(self.chat(user, via, payload, EITHER, "hostile alphabet"))

    @rule(user=users, via=vias, pick=st.integers(min_value=0, max_value=99), new_text=st.booleans())
    def resend_chat(self, user: int, via: str, pick: int, new_text: bool) -> None:
        """Send again with an acknowledged message's client message id: the
        idempotency key is (user, id), so from a user who already used it a
        duplicate (nothing appended, the stored message's id), else a new message."""
        if not self.acked:
            return
        original = self.acked[pick % len(self.acked)]
        text = f"resent {original.cmid}" if new_text else original.text
        self.run(self._resend(user, via, original.cmid, text))

    async def _resend(self, user: int, via: str, cmid: str, text: str) -> None:
        conn = self.online(user, via)
        if conn is None:
            return
        ack = await self.ask(conn, "chat:send", {"text": text, "clientMessageId": cmid})
        author = self.user_id(user)
        if ack is None:
            self.unanswered.append((author, cmid, text))
            return
        assert ack["ok"], (cmid, ack)
        stored = next((a for a in self.acked if (a.author, a.cmid) == (author, cmid)), None)
        if stored is not None:
            assert ack["duplicate"] is True and ack["id"] == stored.id, (stored, ack)
        elif any((u, c) == (author, cmid) for u, c, _ in self.unanswered):
            # Stored or not before its connection dropped: either answer is right.
            self.acked.append(Acked(ack["id"], on_the_wire(text), author, cmid))
        else:
            assert ack["duplicate"] is False, ack
            self.acked.append(Acked(ack["id"], on_the_wire(text), author, cmid))

    @rule(user=users, text=honest_text)
    def send_chat_twice(self, user: int, text: str) -> None:
        """One message on both of a user's connections at once (a retry racing
        the original): stored once, and both acks name it."""
        board, chat = self.conns[user % self.users, "board"], self.conns[user % self.users, "chat"]
        if board.client is not None and chat.client is not None:
            self.run(self._send_twice(user, board, chat, text))

    async def _send_twice(self, user: int, board: Conn, chat: Conn, text: str) -> None:
        cmid, author = self.cmid(), self.user_id(user)
        payload = {"text": text, "clientMessageId": cmid}
        acks = await asyncio.gather(
            self.ask(board, "chat:send", payload), self.ask(chat, "chat:send", payload)
        )
        answered = [ack for ack in acks if ack is not None]
        if len(answered) < 2:
            self.unanswered.append((author, cmid, text))
        assert all(ack["ok"] for ack in answered), acks
        assert len({ack["id"] for ack in answered}) <= 1, f"stored twice: {acks}"
        if len(answered) == 2:
            assert sorted(ack["duplicate"] for ack in answered) == [False, True], acks
        if answered:
            self.acked.append(Acked(answered[0]["id"], on_the_wire(text), author, cmid))

    def cmid(self) -> str:
        return f"c{next(self._cmids)}"

    @rule(user=users, via=vias, event=st.sampled_from(list(MODERATION)))
    def moderate(self, user: int, via: str, event: str) -> None:
        """Participants may not moderate (protocol.md §6.3)."""
        if conn := self.online(user, via):
            ack = self.run(self.ask(conn, event, MODERATION[event]))
            assert ack == {"ok": False, "code": "permission_denied"}, ack

    # -- awareness ----------------------------------------------------------------------

    @rule(user=users, x=coordinates, y=coordinates)
    def set_awareness(self, user: int, x: float, y: float) -> None:
        if conn := self.board(user):
            self.run(self._set_awareness(conn, [x, y]))

    async def _set_awareness(self, conn: Conn, cursor: list[float]) -> None:
        """Publish a cursor; a peer on the board must see it (§3.1)."""
        client = await conn.ready()
        await client.set_awareness({"cursor": cursor})
        peers = [c for (_, name), c in self.conns.items() if name == "board" and c is not conn]
        peer = next((c.client for c in peers if c.client is not None), None)
        if peer is None:
            return
        await peer.wait_synced(timeout_s=STEP_TIMEOUT_S)
        cid = client.doc.client_id

        def seen() -> bool:
            state = peer.awareness.get(cid)
            return isinstance(state, dict) and state.get("cursor") == cursor

        await peer.wait_for(seen, timeout_s=STEP_TIMEOUT_S)
        conn.announced = True

    @rule(user=users, case=st.sampled_from(list(HOSTILE_AWARENESS)))
    def hostile_awareness(self, user: int, case: str) -> None:
        build, expect = HOSTILE_AWARENESS[case]
        conn = self.board(user)
        # An accepted state claims a client id; a connection may hold 8 (§3.1).
        if conn is not None and conn.claimed < 6:
            ids = [next(self._fresh_client_ids) for _ in range(17)]
            self.run(self._hostile_awareness(conn, build(ids), expect))

    @rule(user=users, owner=users)
    def forge_awareness(self, user: int, owner: int) -> None:
        """Speak for another user's Yjs client id with a newer clock: refused."""
        conn, victim = self.board(user), self.board(owner)
        if conn is None or victim is None or conn is victim or not victim.announced:
            return
        assert victim.client is not None
        forged = AwarenessEntry(victim.client.doc.client_id, 1 << 20, '{"cursor":[6,6]}')
        self.run(self._hostile_awareness(conn, encode_awareness([forged]), NOT_OWNED))

    async def _hostile_awareness(self, conn: Conn, payload: Any, expect: Expect) -> None:
        client = await conn.ready()
        await client.emit_raw("awareness-update", payload)
        if not expect.ok:
            await self.refused(conn, "awareness-update", expect)
        elif await self.maybe_refused(conn, "awareness-update", expect):
            conn.claimed += 1

    # -- other events ----------------------------------------------------------------------

    @rule(user=users, via=vias, name=st.sampled_from(UNKNOWN_EVENTS), with_ack=st.booleans())
    def unknown_event(self, user: int, via: str, name: str, with_ack: bool) -> None:
        if conn := self.online(user, via):
            self.run(self._unknown_event(conn, name, with_ack))

    async def _unknown_event(self, conn: Conn, name: str, with_ack: bool) -> None:
        """Refused with ``collab:error`` and, when asked for, an error ack (§6.2)."""
        client = await conn.ready()
        if with_ack:
            ack = await self.ask(conn, name, {"x": 1})
            assert ack == {"ok": False, "code": "unknown_event"}, ack
        else:
            await client.emit_raw(name, {"x": 1})
        await self.refused(conn, name, UNKNOWN_EVENT)

    # -- connections ------------------------------------------------------------------------

    @rule(user=users, via=vias)
    def disconnect(self, user: int, via: str) -> None:
        conn = self.conns[user % self.users, via]
        if conn.client is not None:
            self.run(self._disconnect(conn))

    async def _disconnect(self, conn: Conn) -> None:
        client = conn.client
        assert client is not None
        await client.close()
        conn.client = None
        assert len(client.errors) == conn.provoked, f"{conn.name} got {client.errors}"

    @rule(user=users, via=vias)
    def reconnect(self, user: int, via: str) -> None:
        conn = self.conns[user % self.users, via]
        if conn.client is None:
            self.run(conn.connect(self.url))

    # -- the end state ------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            if self.server is not None and not self.failed:
                self.run(self._check_end_state())
        finally:
            self.loop.run_until_complete(self._stop())
            self._close_loop()

    async def _check_end_state(self) -> None:
        everyone = [*self.conns.values(), self.bystander]
        for conn in everyone:
            if conn.client is None:
                await conn.connect(self.url)
            await conn.ready()
        self._check_acked_on_server()
        await self._check_acked_on_clients()
        self._check_nothing_else_in_chat()
        await self._check_chat_on_clients()
        await self._check_boards()
        for conn in everyone:
            assert conn.client is not None
            assert len(conn.client.errors) == conn.provoked, f"{conn.name}: {conn.client.errors}"
        assert self.unanswered == [], f"chat:send without an ack: {self.unanswered}"
        await self._check_still_serving()

    def _check_acked_on_server(self) -> None:
        """Each acknowledged message is on the server once, with its text and
        its sender's identity, in the order the acks came."""
        messages = self.server_doc(ROOM, "chat").read_array("messages")
        ids = [m.get("id") for m in messages]
        for acked in self.acked:
            assert ids.count(acked.id) == 1, f"{acked} is {ids.count(acked.id)} times on the server"
            stored = messages[ids.index(acked.id)]
            assert stored.get("text") == acked.text, (acked, stored)
            assert stored.get("authorId") == acked.author, (acked, stored)
            assert stored.get("role") == "participant", (acked, stored)
        positions = [ids.index(a.id) for a in self.acked]
        assert positions == sorted(positions), "acknowledged messages out of order"

    async def _check_acked_on_clients(self) -> None:
        """Every chat connection has every acknowledged message.

        No waiting needed: the server relays a message before it acknowledges
        it, and a round trip on the recipient's own connection comes back
        after everything the server sent it before (one connection, one
        order). So what a client lacks after the round trip is not late: it
        will never come (the client holds a later message it cannot place)."""
        for user in range(self.users):
            conn = self.conns[user, "chat"]
            await self.round_trip(conn)
            held = {m.get("id"): m.get("text") for m in messages_of(conn.doc)}
            lost = [a for a in self.acked if held.get(a.id) != a.text]
            assert not lost, f"{conn.name} never got acknowledged {lost}"

    async def _check_chat_on_clients(self) -> None:
        """Every chat connection ends with the server's chat document."""
        for user in range(self.users):
            conn = self.conns[user, "chat"]
            await until(
                functools.partial(self._chat_matches, conn),
                timeout_s=STEP_TIMEOUT_S,
                what=f"{conn.name}'s chat equal to the server's",
            )

    async def _check_boards(self) -> None:
        """Every board client holds the server's board; nothing crosses rooms;
        nothing of a refused update was applied."""
        for conn in [*(self.conns[u, "board"] for u in range(self.users)), self.bystander]:
            await until(
                functools.partial(self._board_matches, conn),
                timeout_s=STEP_TIMEOUT_S,
                what=f"{conn.name}'s board equal to the server's",
            )
        board = self.server_doc(ROOM, "board").read_map("shapes")
        assert "real" not in board and not any(k.startswith("b-") for k in board), board
        elsewhere = self.server_doc(ELSEWHERE, "board").read_map("shapes")
        assert all(k.startswith("b-") for k in elsewhere), elsewhere

    def _chat_matches(self, conn: Conn) -> bool:
        server = self.server_doc(conn.room, "chat").read_array("messages")
        return bool(messages_of(conn.doc) == server)

    def _board_matches(self, conn: Conn) -> bool:
        server = self.server_doc(conn.room, "board").read_map("shapes")
        return bool(shapes_of(conn.doc) == server)

    def _check_nothing_else_in_chat(self) -> None:
        """No half-written message, none that was refused: every message on the
        server is whole and acknowledged (or its connection dropped first)."""
        acked = {a.id for a in self.acked}
        unanswered = {(user, cmid) for user, cmid, _ in self.unanswered}
        for message in self.server_doc(ROOM, "chat").read_array("messages"):
            assert isinstance(message.get("id"), str), f"half-written message {message}"
            assert isinstance(message.get("text"), str), f"half-written message {message}"
            if message["id"] not in acked:
                key = (message.get("authorId"), message.get("clientMessageId"))
                assert key in unanswered, f"a message nobody acknowledged: {message}"

    async def _check_still_serving(self) -> None:
        """A fresh client in a fresh room syncs and writes."""
        auth = {"token": mint("fresh", sub="fresh", name="Fresh")}
        async with CollabClient(self.url, "fresh", auth=auth) as fresh:
            fresh.doc.get("shapes", type=Map)["alive"] = {"type": "rect"}
            await until(
                lambda: "alive" in self.server_doc("fresh", "board").read_map("shapes"),
                timeout_s=STEP_TIMEOUT_S,
                what="a fresh client's edit on the server",
            )

    async def _stop(self) -> None:
        clients = [c.client for c in [*self.conns.values(), self.bystander] if c.client]
        closing = (client.close(drain_timeout_s=1.0) for client in clients)
        await asyncio.gather(*closing, return_exceptions=True)
        if self.server is not None:
            await self.server.stop()

    def _close_loop(self) -> None:
        pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:  # gather() of nothing makes its future on another loop
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


HostileClients.TestCase.settings = settings(
    # About 7 s on 2 idle cores, 13 s with both busy. Many short examples
    # rather than few long ones: a failure shrinks to a few steps in seconds.
    max_examples=100,
    stateful_step_count=20,
    deadline=None,
    # The same examples on every run and in CI: a fixed seed, no database,
    # and no explain phase (a failure is reported once, shrunk).
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
TestHostileClients = HostileClients.TestCase
