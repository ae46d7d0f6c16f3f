"""Webhook endpoints: the event types, what an endpoint is, and reading
them from ``--webhooks-file`` (collab.webhooks sends; protocol.md §10.5).

No I/O beyond reading the file: collab.config reads it at start through
:func:`load_webhooks_file`, so a bad file stops ``collab serve`` with one
line naming the problem (never a secret).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from crdt.text import quote
from rooms.moderation import MODERATION_EVENTS as MOD_EVENTS

__all__ = [
    "CHAT_MESSAGE",
    "CHECKIN_CLOSED",
    "CONTENT_EVENTS",
    "EVENT_TYPES",
    "EXPORT_READY",
    "MIN_SECRET_BYTES",
    "MODERATION_ANY",
    "MODERATION_EVENTS",
    "ROOM_DELETED",
    "ROOM_PURGED",
    "SESSION_ENDED",
    "Endpoint",
    "is_loopback",
    "load_webhooks_file",
    "parse_endpoints",
]

SESSION_ENDED = "session.ended"
ROOM_DELETED = "room.deleted"
ROOM_PURGED = "room.purged"
EXPORT_READY = "export.ready"
#: A facilitator closed a check-in (``mod:checkin`` close, protocol.md §6.9).
CHECKIN_CLOSED = "checkin.closed"
CHAT_MESSAGE = "chat.message"
#: ``moderation.<action>``: one per ``mod:*`` event (``moderation.mute``).
MODERATION_EVENTS = frozenset("moderation." + a.removeprefix("mod:") for a in MOD_EVENTS)
MODERATION_ANY = "moderation.*"
EVENT_TYPES = frozenset(
    {SESSION_ENDED, ROOM_DELETED, ROOM_PURGED, EXPORT_READY, CHECKIN_CLOSED, CHAT_MESSAGE}
    | MODERATION_EVENTS
)
#: Events whose body holds what people wrote: only for ``include_content``.
CONTENT_EVENTS = frozenset({CHAT_MESSAGE})
MIN_SECRET_BYTES = 32

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FIELDS = frozenset({"name", "url", "secret", "events", "include_content"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a platform takes webhooks; ValueError if it is not valid (the
    message never holds the secret)."""

    name: str
    url: str
    secret: str = field(repr=False)
    events: frozenset[str]
    #: Whether bodies may carry chat text (``chat.message`` needs it).
    include_content: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError("an endpoint's name must be 1-64 characters of [A-Za-z0-9_.-]")
        where = f"endpoint {self.name}"
        try:
            url = urlsplit(self.url) if isinstance(self.url, str) else None
            _ = url.port if url is not None else None  # ValueError for a bad port
        except ValueError:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"{where}: url must be an http:// or https:// URL with a host")
        if url.username is not None or url.password is not None:
            raise ValueError(f"{where}: no credentials in the url (the secret signs each body)")
        if not isinstance(self.secret, str) or len(self.secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"{where}: secret must be at least {MIN_SECRET_BYTES} bytes")
        if not isinstance(self.include_content, bool):
            raise ValueError(f"{where}: include_content must be true or false")
        if not self.events:
            raise ValueError(f"{where}: events must name at least one event")
        for event in self.events:
            if event != MODERATION_ANY and event not in EVENT_TYPES:
                raise ValueError(f"{where}: unknown event {quote(str(event))}")
            if event in CONTENT_EVENTS and not self.include_content:
                raise ValueError(f"{where}: {event} carries chat text: needs include_content")

    def wants(self, event_type: str) -> bool:
        return event_type in self.events or (
            event_type.startswith("moderation.") and MODERATION_ANY in self.events
        )


def parse_endpoints(data: Any) -> tuple[Endpoint, ...]:
    """Endpoints from JSON: a list of ``{name, url, secret, events,
    include_content?}``, or ``{"endpoints": [...]}``. ValueError if invalid."""
    if isinstance(data, Mapping) and set(data) == {"endpoints"}:
        data = data["endpoints"]
    if not isinstance(data, list) or not data:
        raise ValueError('expected a non-empty list of endpoints (or {"endpoints": [...]})')
    endpoints = []
    for item in data:
        if isinstance(item, Endpoint):
            endpoints.append(item)
            continue
        if not isinstance(item, Mapping) or not {"name", "url", "secret", "events"} <= set(item):
            raise ValueError("each endpoint is an object with name, url, secret and events")
        unknown = set(item) - _FIELDS
        if unknown:
            raise ValueError(f"unknown endpoint field {quote(sorted(map(str, unknown))[0])}")
        events = item["events"]
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise ValueError("an endpoint's events are a list of event names")
        endpoints.append(
            Endpoint(
                name=item["name"],
                url=item["url"],
                secret=item["secret"],
                events=frozenset(events),
                include_content=item.get("include_content", False),
            )
        )
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise ValueError("two endpoints share a name")
    return tuple(endpoints)


def load_webhooks_file(path: Path) -> tuple[Endpoint, ...]:
    """The endpoints of a ``--webhooks-file`` (JSON). It holds secrets: a file
    group or others may read or write is refused. ValueError says why."""
    try:
        with path.open("rb") as f:
            mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
            raw = f.read()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ValueError(
            f"{path} holds secrets but group or others may use it (mode {mode:03o}): chmod 600 it"
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError(f"{path} is not JSON") from None
    return parse_endpoints(data)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
