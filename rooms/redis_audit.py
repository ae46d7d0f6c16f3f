"""The audit log in Redis: one stream per room (``collab-audit:{<room>}``)
and ``collab-audit:-`` for records of no room (admin logins).

Audit streams are never trimmed: a record stays until an operator removes it,
so no volume of other records (refused connects, failed logins) can push a
room's real ones out. They are keys of their own, outside ``collab:{<room>}:*``
(document logs are rebuilt by compaction, room keys deleted with the room);
what bounds them is that repeated failures are summarised before they are
written (rooms.incidents).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from crdt.types import RoomId
from rooms.audit import AuditAction, AuditRecord
from rooms.redis_keys import audit_key, text

__all__ = ["append", "read"]


async def append(client: Any, records: Sequence[AuditRecord]) -> None:
    """Append ``records`` to their rooms' streams in one round trip (no
    MAXLEN: never trimmed). OSError if Redis fails."""
    try:
        pipe = client.pipeline(transaction=False)
        for r in records:
            pipe.xadd(
                audit_key(r.room),
                {
                    "ts": repr(r.ts),
                    "room": r.room or "",
                    "user": r.user_id or "",
                    "role": r.role or "",
                    "action": r.action.value,
                    "outcome": r.outcome,
                    "detail": r.detail,
                },
            )
        await pipe.execute()
    except RedisError as exc:
        raise OSError(f"Redis audit write failed: {exc}") from exc


async def read(client: Any, room: RoomId | None, *, limit: int = 1000) -> list[AuditRecord]:
    """The latest ``limit`` records of ``room`` (None: of no room), oldest first."""
    if limit <= 0:
        return []
    try:
        raw = await client.xrevrange(audit_key(room), count=limit)
    except RedisError as exc:
        raise OSError(f"Redis read failed: {exc}") from exc
    records = []
    for _, f in reversed(raw):
        g = {text(k): text(v) for k, v in f.items()}
        records.append(
            AuditRecord(
                float(g["ts"]),
                g["room"] or None,
                g["user"] or None,
                g["role"] or None,
                AuditAction(g["action"]),
                g["outcome"],
                g["detail"],
            )
        )
    return records
