"""What each role may do in a room, given the room's moderation state
(docs/architecture.md §8). The one place policy is decided; handlers ask, never decide.

The state mirrors the room's ``meta`` document (protocol.md §5.3) and is
rebuilt from it when the room loads.

Role overrides (``mod:role``, protocol.md §6.3) live in meta's ``roles`` map
(user id → ``participant`` or ``observer``; ``""`` clears one). They apply to
tokens whose role is participant or observer, never to a facilitator's token,
and never grant facilitator: every check here takes the role through
:meth:`RoomPolicy.role_of`, so an override holds for connections made before
it as well as after.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from crdt.engine import Engine
from crdt.schemas import (
    META_MUTED_ROOT,
    META_REMOVED_ROOT,
    META_ROOT,
    DocKind,
    RoomMeta,
    read_meta,
)
from crdt.types import UserId
from rooms.errors import (
    BoardLocked,
    Muted,
    PermissionDenied,
    ReadOnlyDocument,
    Removed,
    SessionEnded,
    StoreUnavailable,
)
from rooms.identity import Identity, Role

__all__ = [
    "META_ROLES_ROOT",
    "META_SHAPE_LOCKS_ROOT",
    "OVERRIDABLE_ROLES",
    "RoomPolicy",
    "lock_key",
]

#: The meta root of role overrides: user id → role value ("" when cleared).
META_ROLES_ROOT = "roles"
#: The meta root of locked shapes: ``lock_key(doc, shape id)`` → true.
META_SHAPE_LOCKS_ROOT = "shapeLocks"


def lock_key(doc: str, shape_id: str) -> str:
    """A shape lock's key in meta: ``<board document>/<shape id>`` (board
    names never hold a ``/``, so the first one splits it)."""
    return f"{doc}/{shape_id}"


#: The roles an override may set (a facilitator comes only from a signed token).
OVERRIDABLE_ROLES = frozenset({Role.PARTICIPANT, Role.OBSERVER})


@dataclass(slots=True)
class RoomPolicy:
    """A room's moderation state and the checks that follow from it."""

    title: str = ""
    locked: bool = False
    ended: bool = False
    muted: set[UserId] = field(default_factory=set)
    removed: set[UserId] = field(default_factory=set)
    #: Role overrides (``mod:role``): user id → participant or observer.
    roles: dict[UserId, Role] = field(default_factory=dict)
    #: Locked shapes (``mod:lock-shapes``): board document → shape ids.
    shape_locks: dict[str, frozenset[str]] = field(default_factory=dict)
    #: The store has not taken the room's writes for longer than the delay
    #: window (``Room.set_saving``, protocol.md §11): board edits and chat are
    #: refused with ``store_unavailable``. Not part of meta.
    store_read_only: bool = False

    def load(self, meta_engine: Engine) -> None:
        """Take the state from the room's meta document."""
        meta = read_meta(
            meta_engine.read_map(META_ROOT),
            meta_engine.read_map(META_MUTED_ROOT),
            meta_engine.read_map(META_REMOVED_ROOT),
        )
        self.title = meta.title
        self.locked = meta.locked
        self.ended = meta.ended
        self.muted = {UserId(u) for u in meta.muted}
        self.removed = {UserId(u) for u in meta.removed}
        self.roles = {
            UserId(user): Role(value)
            for user, value in meta_engine.read_map(META_ROLES_ROOT).items()
            if isinstance(user, str) and value in {r.value for r in OVERRIDABLE_ROLES}
        }
        locks: dict[str, set[str]] = {}
        for key, on in meta_engine.read_map(META_SHAPE_LOCKS_ROOT).items():
            doc, sep, shape = key.partition("/")
            if sep and on is True:
                locks.setdefault(doc, set()).add(shape)
        self.shape_locks = {doc: frozenset(shapes) for doc, shapes in locks.items()}

    def role_of(self, identity: Identity) -> Role:
        """The role ``identity`` has in this room: its token's, or the room's
        override for that user (never for a facilitator's token)."""
        if identity.role is Role.FACILITATOR:
            return identity.role
        return self.roles.get(identity.user_id, identity.role)

    def effective(self, identity: Identity) -> Identity:
        """``identity`` with :meth:`role_of` as its role (the same object if unchanged)."""
        role = self.role_of(identity)
        return identity if role is identity.role else replace(identity, role=role)

    def roles_json(self) -> dict[str, str]:
        """The overrides, for ``room:state`` (protocol.md §6.4)."""
        return {user: role.value for user, role in sorted(self.roles.items())}

    def snapshot(self) -> RoomMeta:
        return RoomMeta(
            title=self.title,
            locked=self.locked,
            ended=self.ended,
            muted=frozenset(self.muted),
            removed=frozenset(self.removed),
        )

    # -- checks (raise) ----------------------------------------------------------

    def check_join(self, identity: Identity) -> None:
        if identity.user_id in self.removed:
            raise Removed("you were removed from this room")

    def check_write(self, identity: Identity, kind: DocKind) -> None:
        """Raise unless ``identity`` may send ``sync-update`` to a ``kind`` document."""
        if kind.server_written:
            raise ReadOnlyDocument(f"the {kind.value} document is written by the server only")
        role = self.role_of(identity)
        if role is Role.OBSERVER:
            raise PermissionDenied("observers are read-only")
        if self.ended:
            raise SessionEnded("the session has ended; the room is read-only")
        if self.locked and role is not Role.FACILITATOR:
            raise BoardLocked("the board is locked by the facilitator")
        self._check_store()

    def locked_shapes(self, identity: Identity, doc: str) -> frozenset[str]:
        """The shapes of board ``doc`` that ``identity`` may not change
        (none for a facilitator)."""
        if self.role_of(identity) is Role.FACILITATOR:
            return frozenset()
        return self.shape_locks.get(doc, frozenset())

    def can_write(self, identity: Identity, kind: DocKind) -> bool:
        try:
            self.check_write(identity, kind)
        except (ReadOnlyDocument, PermissionDenied, SessionEnded, BoardLocked, StoreUnavailable):
            return False
        return True

    def check_chat(self, identity: Identity) -> None:
        role = self.role_of(identity)
        if role is Role.OBSERVER:
            raise PermissionDenied("observers are read-only")
        if self.ended:
            raise SessionEnded("the session has ended; the room is read-only")
        if identity.user_id in self.muted and role is not Role.FACILITATOR:
            raise Muted("you are muted in this room's chat")
        self._check_store()

    def check_private(self, identity: Identity) -> None:
        """A message on the private line (rooms.private_line): as chat, except
        that muting is about the group chat only."""
        if self.role_of(identity) is Role.OBSERVER:
            raise PermissionDenied("observers are read-only")
        if self.ended:
            raise SessionEnded("the session has ended; the room is read-only")
        self._check_store()

    def _check_store(self) -> None:
        if self.store_read_only:
            raise StoreUnavailable(
                "the server cannot save now: the room is read-only until it can; retry later"
            )

    def check_moderate(self, identity: Identity) -> None:
        if identity.role is not Role.FACILITATOR:
            raise PermissionDenied("only facilitators may moderate")

    def check_take_part(self, identity: Identity) -> None:
        """Raise unless ``identity`` may take part in the session's activities
        (raise a hand, react: protocol.md §6.6): observers watch
        (PermissionDenied), and nothing happens after the end (SessionEnded).
        Muting is about the chat only; the store does not matter (what an
        activity writes to meta is kept and written like moderation)."""
        if self.role_of(identity) is Role.OBSERVER:
            raise PermissionDenied("observers watch: they cannot take part")
        if self.ended:
            raise SessionEnded("the session has ended; the room is read-only")
