"""The recovery file: what a stopping server could not store, kept beside the
store for the next start (protocol.md §11.3).

A stop whose final write the store does not take within ``shutdown_grace_s``
writes the full state of every document with changes the store lacks (every
loaded document, if the store's files are gone) and the audit records not
yet written to ``<data-dir>/collab-recovery-<time>-<node>.bin``: mode 0600,
written under a temporary name, synced, then renamed, so a file under the
final name is always whole. The next start replays every such file, oldest
first, before it accepts a connect (:func:`replay_recovery_files`): it merges
each state into the stored document, stores the result, and only then
deletes the file.

Exactly once. A crash between storing and deleting replays the file again at
the next start. For documents that changes nothing: merging a Yjs state a
second time leaves the state as it was (updates are idempotent), and an
acknowledged chat message is an item of the chat document with its own Yjs
id, so it is never appended twice. Audit records are the exception: in that
window, the file's records would be written twice.

Format, version 1: :data:`MAGIC` (16 bytes), the SHA-256 of the body (32
bytes), then the body, a msgpack map ``{"v": 1, "node": str, "created_ms":
float, "documents": [[room, doc, state], ...], "audit": [[ts, room, user_id,
role, action, outcome, detail], ...]}``. A file that fails its digest or
does not parse stops the start, with its name: starting without it would
drop what it holds, silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack

from crdt.errors import CollabError
from crdt.types import DocName, RoomId, Update
from rooms.audit import AuditAction, AuditRecord
from rooms.names import validate_doc_name, validate_room_id

if TYPE_CHECKING:
    from rooms.registry import RoomRegistry
    from rooms.room import Room

__all__ = [
    "MAGIC",
    "Recovery",
    "RecoveryFileError",
    "read_recovery_file",
    "recovery_files",
    "replay_recovery_files",
    "write_recovery_file",
]

log = logging.getLogger("collab.rooms")

MAGIC = b"collab-recovery\n"
VERSION = 1
_PREFIX = "collab-recovery-"
_SUFFIX = ".bin"
_DIGEST_BYTES = 32
_FILE_MODE = 0o600
_DIRECTORY_MODE = 0o700


class RecoveryFileError(OSError):
    """A recovery file that cannot be read back (its name is in the message)."""


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a stopping node could not store."""

    node: str
    created_ms: float
    #: (room, document, full state) per document.
    documents: tuple[tuple[RoomId, DocName, Update], ...]
    audit: tuple[AuditRecord, ...] = ()

    @classmethod
    def collect(
        cls,
        node: str,
        rooms: Iterable[Room],
        audit: Sequence[AuditRecord],
        *,
        everything: bool,
    ) -> Recovery | None:
        """What the store does not have (None: nothing): the full state of
        each of the rooms' documents with unsaved changes (of every one with
        ``everything``: the store's files are gone) and ``audit``."""
        documents = tuple(
            (room.id, doc.name, doc.engine.full_state())
            for room in rooms
            for doc in room.docs.values()
            if everything or doc.unsaved_since is not None
        )
        if not documents and not audit:
            return None
        return cls(node, time.time() * 1000.0, documents, tuple(audit))

    def serialize(self) -> bytes:
        body: bytes = msgpack.packb(
            {
                "v": VERSION,
                "node": self.node,
                "created_ms": self.created_ms,
                "documents": [[room, doc, bytes(state)] for room, doc, state in self.documents],
                "audit": [
                    [r.ts, r.room, r.user_id, r.role, r.action.value, r.outcome, r.detail]
                    for r in self.audit
                ],
            },
            use_bin_type=True,
        )
        return MAGIC + hashlib.sha256(body).digest() + body

    @classmethod
    def parse(cls, data: bytes) -> Recovery:
        """The recovery that ``data`` holds; ValueError if it is not one
        (wrong magic, digest, version or shape)."""
        head = len(MAGIC)
        if data[:head] != MAGIC:
            raise ValueError("not a collab recovery file")
        digest, body = data[head : head + _DIGEST_BYTES], data[head + _DIGEST_BYTES :]
        if hashlib.sha256(body).digest() != digest:
            raise ValueError("the digest does not match: the file is damaged")
        try:
            fields = msgpack.unpackb(body, raw=False, strict_map_key=True)
            if not isinstance(fields, dict) or fields.get("v") != VERSION:
                raise ValueError(f"unknown version {fields.get('v')!r}")
            documents = tuple(
                (validate_room_id(room), validate_doc_name(doc), _bytes(state))
                for room, doc, state in fields["documents"]
            )
            audit = tuple(_audit_record(entry) for entry in fields["audit"])
            return cls(str(fields["node"]), float(fields["created_ms"]), documents, audit)
        except (CollabError, KeyError, TypeError, ValueError, msgpack.UnpackException) as exc:
            raise ValueError(f"the file does not parse: {type(exc).__name__}") from None


def _bytes(value: object) -> Update:
    if not isinstance(value, bytes):
        raise TypeError("a document state must be bytes")
    return value


def _audit_record(entry: Sequence[Any]) -> AuditRecord:
    ts, room, user_id, role, action, outcome, detail = entry
    return AuditRecord(
        float(ts),
        None if room is None else RoomId(str(room)),
        None if user_id is None else str(user_id),
        None if role is None else str(role),
        AuditAction(action),
        str(outcome),
        str(detail),
    )


def recovery_files(directory: Path) -> list[Path]:
    """The recovery files in ``directory``, oldest first (the name starts
    with the time it was written)."""
    try:
        names = sorted(
            p for p in directory.iterdir() if p.name.startswith(_PREFIX) and p.suffix == _SUFFIX
        )
    except FileNotFoundError:
        return []
    return names


def write_recovery_file(directory: Path, recovery: Recovery) -> Path:
    """Write ``recovery`` into ``directory`` (created 0700 if it is gone) and
    return its path; OSError if it cannot be written whole."""
    directory.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(recovery.created_ms / 1000.0))
    millis = int(recovery.created_ms) % 1000
    final = directory / f"{_PREFIX}{stamp}.{millis:03d}Z-{recovery.node}{_SUFFIX}"
    temporary = directory / f".{final.name}.tmp"
    data = recovery.serialize()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    try:
        os.fchmod(fd, _FILE_MODE)  # O_CREAT's mode is masked by the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    os.close(fd)
    os.replace(temporary, final)
    _sync_directory(directory)
    return final


def read_recovery_file(path: Path) -> Recovery:
    """The recovery in ``path``; RecoveryFileError if it cannot be read back."""
    try:
        return Recovery.parse(path.read_bytes())
    except ValueError as exc:
        raise RecoveryFileError(
            f"recovery file {path} cannot be replayed: {exc}; move it aside to start "
            "without it (what it holds is then not restored)"
        ) from None


async def replay_recovery_files(registry: RoomRegistry, directory: Path) -> int:
    """Replay and delete every recovery file in ``directory``, oldest first;
    return how many there were. Each file is deleted only once the store
    took everything in it; OSError (the file kept) if it did not."""
    files = recovery_files(directory)
    for path in files:
        recovery = read_recovery_file(path)
        for room_id, doc_name, state in recovery.documents:
            doc = await registry.document(room_id, doc_name)
            doc.merge_recovered(state)
        registry.restore_audit(recovery.audit)
        await registry.flush_all()
        _remove(path)
        log.warning(
            "recovery file replayed file=%s node=%s documents=%d audit_records=%d",
            path.name,
            recovery.node,
            len(recovery.documents),
            len(recovery.audit),
        )
    _remove_incomplete(directory)
    return len(files)


def _remove(path: Path) -> None:
    """Delete a replayed file, durably."""
    path.unlink()
    _sync_directory(path.parent)


def _remove_incomplete(directory: Path) -> None:
    """A stop that died while writing its recovery file left it under its
    temporary name: it never held anything whole."""
    for leftover in directory.glob(f".{_PREFIX}*.tmp") if directory.is_dir() else ():
        log.warning("incomplete recovery file removed file=%s", leftover.name)
        leftover.unlink()


def _sync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
