"""Extensions: how a platform plugs its own identity check, record-keeping and
reactions to session events into collab without forking it
(docs/architecture.md §12; an example in README, "Extensions").

An :class:`Extension` overrides the hooks it needs; every hook is async and
optional. ``create_app(settings, extensions=[...])`` installs them, and
:class:`Extensions` runs them:

* ``authenticate(auth, room)`` runs on connect, before collab's own check:
  extensions in ``priority`` order (highest first); the first to return an
  :class:`~rooms.identity.Identity` decides, a :class:`~crdt.errors.CollabError`
  refuses the connect with its code, None hands over to the next, and after
  the last to collab's authenticator (tokens). It may call out (the
  platform's API): it gets ``auth_timeout_s``, then the connect is refused
  ``room_unavailable`` (retryable); its answer, identity or refusal, is
  cached per auth payload and room for ``auth_cache_s``. Revocations and
  token expiry still apply to what it returns.
* The notifications, in the order a session meets them: ``on_connect``;
  ``on_load_document`` (a document is loaded into this node);
  ``on_change`` (an update was applied and relayed: a client's, or the
  server's own chat and moderation writes; not updates from other nodes);
  ``on_chat_message`` (stored and acknowledged; a duplicate is not told
  twice); ``on_moderation`` (a facilitator's ``mod:*`` took effect);
  ``on_export`` (a transcript or board was exported); ``on_room_ended``
  (``mod:end``, or the room was deleted or purged by retention);
  ``on_store_document`` (the store took a batch of a document's updates);
  ``on_disconnect``.
* ``events()``: custom Socket.IO events (``"poll:vote"``) the extension
  answers; a handler gets an :class:`EventContext` and the event's argument
  and returns the ack's ``result`` (protocol.md §6.5).
* ``on_start(server)`` and ``on_stop()``: ``server`` (:class:`ExtensionServer`)
  is the narrow part of the running server an extension may use.

Notifications never run on the broadcast's critical path: they are handed
over after the fan-out, queued per extension (in order), and run by the
extension's own task, so a slow or failing hook delays only that extension,
never a room. A queue past ``queue_limit`` drops the oldest notification
(counted in ``collab_extension_events_dropped_total``, logged once a
minute). A hook's failure is contained: logged with its class and frames
(collab.logs.describe_exception: never its message, which may quote
content, whatever formatter the platform's logging uses) and counted. A
node fires notifications for what happened on it: an update a client sent
to another node fires ``on_change`` there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from collab.logs import describe_exception
from crdt.errors import CollabError, InvalidPayload
from crdt.text import quote
from crdt.types import DocName, RoomId, Update
from rooms.errors import InternalError, RoomUnavailable
from rooms.identity import Identity

__all__ = [
    "ChangeEvent",
    "ChatEvent",
    "ConnectEvent",
    "DisconnectEvent",
    "DocumentEvent",
    "EventContext",
    "EventHandler",
    "ExportEvent",
    "Extension",
    "ExtensionServer",
    "Extensions",
    "ModerationEvent",
    "RoomEvent",
    "check_event_name",
]

log = logging.getLogger("collab.extensions")

#: Names of the notification hooks, in the order a session meets them.
NOTIFICATIONS = (
    "on_connect",
    "on_load_document",
    "on_change",
    "on_chat_message",
    "on_moderation",
    "on_export",
    "on_room_ended",
    "on_store_document",
    "on_disconnect",
)

#: Event names collab's protocol uses or reserves: no extension may take them.
RESERVED_PREFIXES = (
    "sync-",
    "awareness-",
    "chat:",
    "mod:",
    "room:",
    "collab:",
    "hand:",
    "reaction",
)
RESERVED_EVENTS = frozenset(
    {
        "connect",
        "disconnect",
        "connect_error",
        "message",
        "time:now",
        "templates:list",
        "restore:shapes",
        "checkin:answer",
        "checkin:results",
    }
)

_LOG_EVERY_S = 60.0


# -- what hooks are told ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectEvent:
    room: RoomId
    doc: DocName
    sid: str
    identity: Identity


@dataclass(frozen=True, slots=True)
class DisconnectEvent:
    room: RoomId
    doc: DocName
    sid: str
    identity: Identity


@dataclass(frozen=True, slots=True)
class DocumentEvent:
    """A document loaded into this node, or a batch of its updates stored."""

    room: RoomId
    doc: DocName
    #: Updates in the stored batch (0 for a load).
    updates: int = 0
    #: Bytes of the stored batch, or of the loaded document's state.
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    room: RoomId
    doc: DocName
    #: The Yjs v1 update as applied.
    update: Update
    #: Who made it: the sender of an update or a chat message, the
    #: facilitator of a moderation write; None for an admin API action.
    author: Identity | None


@dataclass(frozen=True, slots=True)
class ChatEvent:
    room: RoomId
    #: The stored message, as in the chat document (protocol.md §5.2): ``id``,
    #: ``authorId``, ``authorName``, ``role``, ``text``, ``ts``, ``redacted``,
    #: ``clientMessageId``.
    message: Mapping[str, Any]
    author: Identity


@dataclass(frozen=True, slots=True)
class ModerationEvent:
    room: RoomId
    #: The ``mod:*`` event (``"mod:mute"``), or ``"admin:role"`` for a role
    #: set through the admin API.
    action: str
    #: The facilitator; None for an admin key.
    actor: Identity | None
    #: ``detail``: what the audit record keeps (target ids and flags, or a new
    #: title; never chat or board content); ``key``: the admin key's name.
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportEvent:
    room: RoomId
    #: ``json``, ``markdown`` or ``svg``.
    format: str
    #: The facilitator whose token exported it; None for an admin key.
    actor: Identity | None
    #: The admin key's name, for an admin export.
    key: str | None = None


@dataclass(frozen=True, slots=True)
class RoomEvent:
    room: RoomId
    #: Why: ``"ended"`` (mod:end), ``"deleted"``, ``"purged"``.
    reason: str
    actor: Identity | None = None


class ExtensionServer(Protocol):
    """What an extension may use of the running server."""

    node_id: str

    async def emit(self, room: RoomId, event: str, data: Any, *, doc: DocName | None = None) -> int:
        """Send ``event`` with ``data`` (JSON) to every local connection of
        ``room`` (of one document, with ``doc``); return how many."""
        ...

    async def document_state(self, room: RoomId, doc: DocName) -> Update:
        """The full Yjs state of a document (loaded if it is not)."""
        ...


@dataclass(frozen=True, slots=True)
class EventContext:
    """A custom event's sender, for its handler."""

    room: RoomId
    doc: DocName
    sid: str
    identity: Identity
    server: ExtensionServer

    async def reply_to_room(self, event: str, data: Any) -> int:
        """Send ``event`` to every local connection of the sender's room."""
        return await self.server.emit(self.room, event, data)


#: A custom event's handler: the ack's ``result`` (JSON), or a CollabError.
EventHandler = Callable[[EventContext, Any], Awaitable[Any]]


class Extension:
    """Override what you need; every hook is optional (see the module)."""

    #: Used in logs and metrics.
    name: str = "extension"
    #: Higher runs first (authenticate) and is handed notifications first.
    priority: int = 100
    #: Notifications that may wait for this extension (None: the
    #: ``queue_limit`` of :class:`Extensions`); past it the oldest is dropped.
    queue_limit: int | None = None

    async def on_start(self, server: ExtensionServer) -> None:
        """The server is up; keep ``server`` to emit or read documents later."""

    async def on_stop(self) -> None:
        """The server stops (after this extension's queue was drained)."""

    async def authenticate(self, auth: Any, room: RoomId) -> Identity | None:
        """An identity for this connect, None to leave it to the next, or
        raise a CollabError to refuse it."""
        return None

    def events(self) -> Mapping[str, EventHandler]:
        """Custom events this extension answers, by name."""
        return {}

    async def on_connect(self, event: ConnectEvent) -> None: ...
    async def on_disconnect(self, event: DisconnectEvent) -> None: ...
    async def on_load_document(self, event: DocumentEvent) -> None: ...
    async def on_store_document(self, event: DocumentEvent) -> None: ...
    async def on_change(self, event: ChangeEvent) -> None: ...
    async def on_chat_message(self, event: ChatEvent) -> None: ...
    async def on_moderation(self, event: ModerationEvent) -> None: ...
    async def on_export(self, event: ExportEvent) -> None: ...
    async def on_room_ended(self, event: RoomEvent) -> None: ...


def _overrides(extension: Extension, hook: str) -> bool:
    return getattr(type(extension), hook) is not getattr(Extension, hook)


def check_event_name(name: str) -> None:
    """ValueError unless ``name`` may be a custom event."""
    if (
        not name
        or len(name) > 64
        or name in RESERVED_EVENTS
        or name.startswith(RESERVED_PREFIXES)
        or not name.isprintable()
    ):
        raise ValueError(f"custom event name {name!r} is reserved or not allowed")


class _Worker:
    """One extension's queue of notifications and the task that runs them."""

    def __init__(self, extension: Extension, limit: int) -> None:
        self.extension = extension
        self.limit = limit
        self.queue: deque[tuple[str, object]] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.failures = 0
        self._dropped_logged = 0.0
        self._stopping = False

    def put(self, hook: str, event: object) -> None:
        if len(self.queue) >= self.limit:
            self.queue.popleft()
            self.dropped += 1
            now = time.monotonic()
            if now - self._dropped_logged >= _LOG_EVERY_S:
                self._dropped_logged = now
                log.warning(
                    "extension queue full extension=%s limit=%d dropped=%d",
                    quote(self.extension.name),
                    self.limit,
                    self.dropped,
                )
        self.queue.append((hook, event))
        self.wake.set()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            while not self.queue:
                if self._stopping:
                    return
                self.wake.clear()
                await self.wake.wait()
            hook, event = self.queue.popleft()
            await self.call(hook, event)

    async def call(self, hook: str, event: object) -> None:
        try:
            await getattr(self.extension, hook)(event)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - a hook's failure ends nothing
            self.failures += 1
            log.error(
                "extension hook failed extension=%s hook=%s error=%s",
                quote(self.extension.name),
                hook,
                describe_exception(exc),
            )

    async def stop(self, timeout_s: float) -> None:
        """Run what is queued (for at most ``timeout_s``), then end."""
        self._stopping = True
        self.wake.set()
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout_s)
        except TimeoutError:
            log.warning(
                "extension queue not drained extension=%s left=%d",
                quote(self.extension.name),
                len(self.queue),
            )
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@dataclass(slots=True)
class _Cached:
    expires: float
    identity: Identity | None
    refusal: CollabError | None


class Extensions:
    """The installed extensions, and the one place their hooks are called."""

    def __init__(
        self,
        extensions: Sequence[Extension] = (),
        *,
        auth_cache_s: float = 5.0,
        auth_timeout_s: float = 5.0,
        auth_cache_entries: int = 10_000,
        queue_limit: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # sorted() is stable: equal priorities keep the order they were given in.
        self.extensions = sorted(extensions, key=lambda e: -e.priority)
        self.auth_cache_s = auth_cache_s
        self.auth_timeout_s = auth_timeout_s
        self._auth_cache_entries = auth_cache_entries
        self._clock = clock
        self._authenticators = [e for e in self.extensions if _overrides(e, "authenticate")]
        self._cache: OrderedDict[tuple[bytes, RoomId], _Cached] = OrderedDict()
        self._workers = {id(e): _Worker(e, e.queue_limit or queue_limit) for e in self.extensions}
        #: Hook name → the workers of the extensions that override it (the
        #: check on the hot path is one dict lookup and a truth test).
        self._listeners: dict[str, list[_Worker]] = {
            hook: [self._workers[id(e)] for e in self.extensions if _overrides(e, hook)]
            for hook in NOTIFICATIONS
        }
        self.handlers: dict[str, tuple[Extension, EventHandler]] = {}
        for extension in self.extensions:
            for name, handler in extension.events().items():
                check_event_name(name)
                if name in self.handlers:
                    raise ValueError(f"custom event {name!r} is taken by two extensions")
                self.handlers[name] = (extension, handler)
        self.server: ExtensionServer | None = None

    def __bool__(self) -> bool:
        return bool(self.extensions)

    # -- lifecycle -------------------------------------------------------------

    async def start(self, server: ExtensionServer) -> None:
        self.server = server
        for extension in self.extensions:
            self._workers[id(extension)].start()
            await extension.on_start(server)

    async def stop(self, *, timeout_s: float = 5.0) -> None:
        """Drain every queue (at once, within ``timeout_s``), then ``on_stop``."""
        await asyncio.gather(*(w.stop(timeout_s) for w in self._workers.values()))
        for extension in self.extensions:
            try:
                await extension.on_stop()
            except Exception as exc:  # noqa: BLE001 - contained like any hook
                log.error(
                    "extension on_stop failed extension=%s error=%s",
                    quote(extension.name),
                    describe_exception(exc),
                )

    # -- notifications ---------------------------------------------------------

    def wants(self, hook: str) -> bool:
        """Whether any extension listens to ``hook`` (build the event only then)."""
        return bool(self._listeners[hook])

    def notify(self, hook: str, event: object) -> None:
        """Hand ``event`` to every extension that listens to ``hook``; returns at once."""
        for worker in self._listeners[hook]:
            worker.put(hook, event)

    @property
    def stats(self) -> dict[str, tuple[int, int, int]]:
        """Extension name → (queued, dropped, failed hooks)."""
        return {
            w.extension.name: (len(w.queue), w.dropped, w.failures) for w in self._workers.values()
        }

    # -- authentication --------------------------------------------------------

    async def authenticate(self, auth: Any, room: RoomId) -> Identity | None:
        """The extensions' identity for this connect (None: no extension
        decided; collab's own authenticator does). CollabError refuses."""
        if not self._authenticators:
            return None
        key = (_auth_key(auth), room)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached.expires > now:
            self._cache.move_to_end(key)
            if cached.refusal is not None:
                raise cached.refusal
            return cached.identity
        identity: Identity | None = None
        refusal: CollabError | None = None
        try:
            for extension in self._authenticators:
                identity = await self._ask(extension, auth, room)
                if identity is not None:
                    break
        except CollabError as exc:
            refusal = exc
        self._cache[key] = _Cached(now + self.auth_cache_s, identity, refusal)
        self._cache.move_to_end(key)
        while len(self._cache) > self._auth_cache_entries:
            self._cache.popitem(last=False)
        if refusal is not None:
            raise refusal
        return identity

    async def _ask(self, extension: Extension, auth: Any, room: RoomId) -> Identity | None:
        try:
            async with asyncio.timeout(self.auth_timeout_s):
                identity = await extension.authenticate(auth, room)
        except CollabError:
            raise
        except TimeoutError:
            log.warning("extension authenticate timed out extension=%s", quote(extension.name))
            raise RoomUnavailable("the identity check did not answer; try again") from None
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - contained like any hook
            log.error(
                "extension authenticate failed extension=%s error=%s",
                quote(extension.name),
                describe_exception(exc),
            )
            raise RoomUnavailable("the identity check failed; try again") from None
        if identity is not None and not isinstance(identity, Identity):
            log.error("extension authenticate returned a %s", type(identity).__name__)
            raise RoomUnavailable("the identity check failed; try again")
        return identity

    # -- custom events ---------------------------------------------------------

    async def handle(self, name: str, context: EventContext, payload: Any) -> Any:
        """Run the custom event ``name``'s handler; its result, or a
        CollabError (its own, or ``internal_error`` for anything else)."""
        extension, handler = self.handlers[name]
        try:
            result = await handler(context, payload)
            orjson.dumps(result)  # the ack must be JSON: fail here, not in the emit
            return result
        except CollabError:
            raise
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - contained like any hook
            log.error(
                "extension event failed extension=%s event=%s error=%s",
                quote(extension.name),
                quote(name),
                describe_exception(exc),
            )
            raise InternalError("the event's handler failed") from None


def _auth_key(auth: Any) -> bytes:
    """A digest of the connect's auth payload (a token is never kept as such)."""
    try:
        canonical = orjson.dumps(auth, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        raise InvalidPayload("auth must be JSON") from None
    return hashlib.sha256(canonical).digest()
