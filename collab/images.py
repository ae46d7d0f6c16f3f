"""Images on the board over HTTP (protocol.md §10.6): upload and serving.

``POST /api/rooms/{room}/images`` takes the raw bytes of a PNG, JPEG or
WebP image from a participant or facilitator of the room; the server
decodes and re-encodes it (collab.image_codec, in a worker thread), stores
the result under its SHA-256 in the room (rooms.store.BlobStore) and
answers ``{"id", "width", "height", "mediaType", "bytes"}``. A board shape
then names it (``type: "image"``, ``src``: the id; protocol.md §5.1).
``GET /api/rooms/{room}/images/{id}`` serves it to anyone who may read the
room, observers included.

Both take the room's own token as ``Authorization: Bearer <token>``, the
token a connect sends (protocol.md §9), checked as a connect checks it: the
platform's ``authenticate`` hooks, then the token (signature, lifetime,
``room`` covering this room), revocations, and whether the user was
removed from the room. An upload is a board write: refused to observers,
while the board is locked for participants, after the session ended and
while the room is read-only for a store outage, like a ``sync-update``.

Every client input has a limit on by default (protocol.md §8.5): the
body's bytes (from ``Content-Length`` before reading, and while reading),
the pixels the header declares (before decoding), the room's total image
bytes, uploads per user and room (a token bucket, taken before the body is
read). Decoding runs :data:`DECODERS` at a time. Refusals are typed errors
(protocol.md §7), counted, and for uploads audited once per kind a minute;
an upload is audited with the image's digest and size, never its content,
and logged with ids and sizes only.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from collab.errors import (
    AppCode,
    ExpiredToken,
    ImageQuotaExceeded,
    ImagesUnavailable,
    ImageTooLarge,
    MissingToken,
    RateLimited,
    Revoked,
    UnsupportedImage,
)
from collab.image_codec import MEDIA_TYPES, CleanImage, clean_image
from collab.logs import user_ref
from crdt.errors import CollabError, CrdtCode, InvalidPayload, WireCode
from crdt.schemas import DocKind, is_digest
from crdt.types import RoomId, UserId
from rooms.audit import AuditAction
from rooms.breakouts import breakout_of
from rooms.errors import NotFound, RoomCode, RoomUnavailable, StoreUnavailable
from rooms.identity import Identity
from rooms.names import META, validate_room_id
from rooms.ratelimit import Rate, TokenBucket
from rooms.store import BlobStore

if TYPE_CHECKING:
    from collab.app import CollabApp
    from rooms.registry import RoomRegistry
    from rooms.room import Room

__all__ = ["DECODERS", "ImageRoutes", "add_image_routes", "image_usage"]

log = logging.getLogger("collab.images")

#: Images decoded at once (each may hold max_image_pixels × 4 bytes, twice).
DECODERS = 2
#: How long an upload's body may take to arrive.
BODY_TIMEOUT_S = 30.0
#: (room, user) pairs whose upload allowance is remembered (least recent forgotten).
MAX_BUCKETS = 10_000
#: What a request may name as its body's type (the bytes decide what it is).
_CONTENT_TYPES = MEDIA_TYPES | {"application/octet-stream"}

_STATUS = {
    AppCode.MISSING_TOKEN: 401,
    AppCode.INVALID_TOKEN: 401,
    AppCode.EXPIRED_TOKEN: 401,
    AppCode.WRONG_ROOM: 403,
    AppCode.REVOKED: 403,
    RoomCode.REMOVED: 403,
    RoomCode.PERMISSION_DENIED: 403,
    RoomCode.BOARD_LOCKED: 403,
    RoomCode.SESSION_ENDED: 403,
    RoomCode.BREAKOUT_CLOSED: 403,
    RoomCode.NOT_IN_GROUP: 403,
    RoomCode.NOT_FOUND: 404,
    AppCode.IMAGE_QUOTA_EXCEEDED: 409,
    AppCode.IMAGE_TOO_LARGE: 413,
    AppCode.UNSUPPORTED_IMAGE: 415,
    AppCode.RATE_LIMITED: 429,
    CrdtCode.INTERNAL_ERROR: 500,
    AppCode.IMAGES_UNAVAILABLE: 501,
    RoomCode.ROOM_UNAVAILABLE: 503,
    RoomCode.STORE_UNAVAILABLE: 503,
}
#: The limit (protocol.md §8.5) a refusal is counted under.
_LIMITS: dict[WireCode, str] = {
    AppCode.IMAGE_TOO_LARGE: "image_size",
    AppCode.IMAGE_QUOTA_EXCEEDED: "image_quota",
    AppCode.RATE_LIMITED: "image_uploads",
}
#: Refusals of an upload written to the audit log (who may do what, and limits).
_AUDITED = frozenset(
    {
        RoomCode.PERMISSION_DENIED,
        RoomCode.BOARD_LOCKED,
        RoomCode.SESSION_ENDED,
        RoomCode.REMOVED,
        AppCode.REVOKED,
        AppCode.IMAGE_QUOTA_EXCEEDED,
        AppCode.RATE_LIMITED,
    }
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


async def image_usage(store: object, room: RoomId) -> tuple[int, int] | None:
    """How many images the room holds and their bytes (None: the store keeps none)."""
    if not isinstance(store, BlobStore):
        return None
    blobs = await store.list_blobs(room)
    return len(blobs), sum(b.size for b in blobs)


class ImageRoutes:
    """The two routes, for a :class:`collab.app.CollabApp` (its parts made at
    its start: until then a request is ``room_unavailable``)."""

    def __init__(self, app: CollabApp) -> None:
        self.app = app
        s = app.settings
        self.max_bytes = s.max_image_bytes
        self.max_pixels = s.max_image_pixels
        self.max_room_bytes = s.max_room_image_bytes
        self.rate = Rate(s.image_rate_per_s, s.image_burst)
        self._buckets: OrderedDict[tuple[RoomId, UserId], TokenBucket] = OrderedDict()
        self._decoders = asyncio.Semaphore(DECODERS)
        #: One upload at a time per room on this node: the quota is checked
        #: and the image stored in one step (nodes sharing a store may each
        #: add one image past it at the same moment).
        self._room_locks: weakref.WeakValueDictionary[RoomId, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @property
    def registry(self) -> RoomRegistry:
        if self.app.registry is None:
            raise RoomUnavailable("the server is starting")
        return self.app.registry

    def _blobs(self) -> BlobStore:
        store = self.registry.store
        if not isinstance(store, BlobStore):
            raise ImagesUnavailable("this server's store keeps no images")
        return store

    def guarded(self, handler: Handler) -> Handler:
        """``handler`` with its CollabErrors as JSON errors (counted), and a
        store failure as ``store_unavailable``."""

        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                try:
                    return await handler(request)
                except OSError as exc:
                    log.warning("image request failed: store error=%s", type(exc).__name__)
                    raise StoreUnavailable("the store cannot be reached; try again") from None
            except CollabError as exc:
                return self._refusal(exc)

        return wrapper

    def _refusal(self, exc: CollabError) -> web.Response:
        metrics = self.app.metrics
        metrics.count_error(exc)
        limit = _LIMITS.get(exc.code)
        if limit is not None:
            metrics.refused(limit)
        headers = {}
        if exc.code in (AppCode.MISSING_TOKEN, AppCode.INVALID_TOKEN, AppCode.EXPIRED_TOKEN):
            headers["WWW-Authenticate"] = "Bearer"
        if exc.code is AppCode.RATE_LIMITED:
            headers["Retry-After"] = str(max(1, round(1 / self.rate.per_s)))
        body = {"error": {"code": exc.code.value, "message": str(exc)}}
        return _json(body, _STATUS.get(exc.code, 400), headers)

    # -- who is asking ------------------------------------------------------------------

    async def _identity(self, request: web.Request, room_id: RoomId) -> Identity:
        """The token's identity, checked as a connect checks it (the module
        docstring); whether the user was removed is checked with the room loaded."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise MissingToken("an Authorization: Bearer <token> header is required")
        auth = {"token": token}
        app = self.app
        # A breakout group room takes the main room's token (protocol.md §6.7).
        breakout = breakout_of(room_id)
        token_room = breakout[0] if breakout is not None else room_id
        identity = await app.extensions.authenticate(auth, token_room)
        if identity is None:
            identity = app.authenticator.authenticate(auth, token_room)
        if identity.expires_at is not None and identity.expires_at <= time.time():
            raise ExpiredToken("the token has expired")
        revocations = app.revocations
        if revocations is None:
            raise RoomUnavailable("the server is starting")
        try:
            await revocations.ensure_loaded()
        except OSError:
            raise RoomUnavailable("the server cannot check revocations; try again") from None
        for room in {room_id, token_room}:
            if revocations.match(sub=identity.user_id, jti=identity.token_id, room=room):
                raise Revoked("the token was revoked")
        if breakout is not None and app.control is not None:
            await app.control.breakouts.admit(room_id, identity)
        return identity

    def _take(self, room_id: RoomId, user: UserId) -> None:
        """One upload from the user's allowance in the room; RateLimited past it."""
        key = (room_id, user)
        now = time.monotonic()
        bucket = self._buckets.pop(key, None) or self.rate.bucket(now)
        self._buckets[key] = bucket
        while len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
        if not bucket.take(now):
            raise RateLimited("too many image uploads; wait a little")

    # -- POST /api/rooms/{room}/images ------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        room_id = validate_room_id(request.match_info["room"])
        identity: Identity | None = None
        try:
            identity = await self._identity(request, room_id)
            store = self._blobs()
            async with self.registry.use(room_id) as room:
                policy = room.policy
                policy.check_join(identity)
                policy.check_write(identity, DocKind.BOARD)
                identity = policy.effective(identity)
                self._take(room_id, identity.user_id)
                image = await self._decode(await self._body(request))
                added = await self._store(store, room, identity, image)
        except CollabError as exc:
            if exc.code in _AUDITED and self.app.reporter is not None:
                self.app.reporter.audit(
                    AuditAction.UPLOAD, room=room_id, identity=identity, outcome=exc.code.value
                )
            raise
        return _json(
            {
                "id": image.digest,
                "width": image.width,
                "height": image.height,
                "mediaType": image.media_type,
                "bytes": len(image.data),
            },
            201 if added else 200,
        )

    async def _body(self, request: web.Request) -> bytes:
        """The request's bytes, at most ``max_bytes``: ImageTooLarge from
        ``Content-Length`` before reading, or as soon as more arrived."""
        kind = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if kind not in _CONTENT_TYPES:
            raise UnsupportedImage("send the image's bytes as image/png, image/jpeg or image/webp")
        declared = request.content_length
        if declared is not None and declared > self.max_bytes:
            raise ImageTooLarge(f"the image has {declared} bytes; the limit is {self.max_bytes}")
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                while chunk := await request.content.readany():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ImageTooLarge(f"the image has more than {self.max_bytes} bytes")
                    parts.append(chunk)
        except TimeoutError:
            raise InvalidPayload(f"the image did not arrive within {BODY_TIMEOUT_S:g} s") from None
        if not size:
            raise UnsupportedImage("the request has no image")
        return b"".join(parts)

    async def _decode(self, data: bytes) -> CleanImage:
        """collab.image_codec in a worker thread, :data:`DECODERS` at a time."""
        async with self._decoders:
            return await asyncio.to_thread(
                clean_image, data, max_bytes=self.max_bytes, max_pixels=self.max_pixels
            )

    async def _store(
        self, store: BlobStore, room: Room, identity: Identity, image: CleanImage
    ) -> bool:
        """Hold the room's image bytes to their quota, keep the room's record
        (so retention deletes the image with the room), store, audit, log."""
        lock = self._room_locks.get(room.id)
        if lock is None:
            lock = self._room_locks[room.id] = asyncio.Lock()
        async with lock:
            blobs = await store.list_blobs(room.id)
            if any(b.digest == image.digest for b in blobs):
                return False  # the same picture again: one image, no more bytes
            used = sum(b.size for b in blobs)
            if used + len(image.data) > self.max_room_bytes:
                raise ImageQuotaExceeded(
                    f"the room's images would take {used + len(image.data)} bytes; "
                    f"the limit is {self.max_room_bytes}"
                )
            registry = self.registry
            room.recorded = True
            room.last_activity_ms = registry.clock_ms()
            await registry.flush_document(room, room.docs[META])
            added = await store.put_blob(room.id, image.digest, image.data, image.media_type)
        registry.audit(
            AuditAction.UPLOAD,
            room=room.id,
            identity=identity,
            detail=f"{image.digest} bytes={len(image.data)}",
        )
        log.info(
            "image stored room=%s user=%s id=%s bytes=%d pixels=%dx%d",
            room.id,
            user_ref(identity.user_id),
            image.digest[:16],
            len(image.data),
            image.width,
            image.height,
        )
        return added

    # -- GET /api/rooms/{room}/images/{digest} ----------------------------------------

    async def serve(self, request: web.Request) -> web.Response:
        room_id = validate_room_id(request.match_info["room"])
        digest = request.match_info["digest"]
        if not is_digest(digest):
            raise NotFound("no such image")
        identity = await self._identity(request, room_id)
        store = self._blobs()
        async with self.registry.use(room_id) as room:
            room.policy.check_join(identity)
            found = await store.get_blob(room_id, digest)
        if found is None or found[1] not in MEDIA_TYPES:
            # A room's other blobs (rooms.restore_points) are not images.
            raise NotFound("no such image in this room")
        data, media_type = found
        etag = f'"{digest}"'
        headers = {
            # Only this user's browser may keep it, and it asks again before
            # each use: a redacted image (404) or a revoked token (403) is
            # not served from a cache.
            "Cache-Control": "private, no-cache",
            "ETag": etag,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        }
        if etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
            return web.Response(status=304, headers=headers)
        return web.Response(body=data, content_type=media_type, headers=headers)


def add_image_routes(web_app: web.Application, app: CollabApp) -> None:
    """Route the room image endpoints (protocol.md §10.6) to ``app``."""
    routes = ImageRoutes(app)
    web_app.router.add_post("/api/rooms/{room}/images", routes.guarded(routes.upload))
    web_app.router.add_get("/api/rooms/{room}/images/{digest}", routes.guarded(routes.serve))
