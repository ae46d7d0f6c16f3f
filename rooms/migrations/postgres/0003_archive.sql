-- PostgreSQL as the system of record behind Redis (--store redis with a
-- PostgreSQL URL; rooms/store_tiered.py, docs/architecture.md §6): each
-- document's full state as the last compaction archived it. A new archive
-- is merged into the stored one (CRDT union, deletions included), so no
-- node's archive replaces another's; epoch, seq and stream_id are the Redis
-- position of the compaction that wrote it last.

CREATE TABLE archive (
    room text COLLATE "C" NOT NULL,
    doc text COLLATE "C" NOT NULL,
    data bytea NOT NULL,
    epoch text NOT NULL,
    seq bigint NOT NULL,
    stream_id text NOT NULL,
    archived_ms double precision NOT NULL,
    PRIMARY KEY (room, doc)
);

-- A room deleted while PostgreSQL is the system of record behind Redis: the
-- deletion's epoch (the one Redis's tombstone holds). An archive or a room
-- record from a copy loaded before the deletion names another epoch and is
-- refused, also after Redis lost its tombstone. Kept as long as Redis keeps
-- its own (rooms.store_redis.TOMBSTONE_TTL_S), then pruned by the next
-- deletion.
CREATE TABLE tombstones (
    room text COLLATE "C" PRIMARY KEY,
    epoch text NOT NULL,
    deleted_ms double precision NOT NULL
);
