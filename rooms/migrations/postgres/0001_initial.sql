-- The PostgreSQL store's first schema (rooms/store_postgres.py): the same
-- tables as the SQLite store's, with room and document names compared and
-- sorted byte by byte (COLLATE "C"), as SQLite and Python do.
-- Applied once by rooms/postgres_migrations.py, in one transaction; never
-- edit a migration once released: add the next one.

CREATE TABLE snapshots (
    room text COLLATE "C" NOT NULL,
    doc text COLLATE "C" NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (room, doc)
);

-- The bigserial seq is the LogPosition Store.append returns.
CREATE TABLE updates (
    seq bigserial PRIMARY KEY,
    room text COLLATE "C" NOT NULL,
    doc text COLLATE "C" NOT NULL,
    data bytea NOT NULL
);
CREATE INDEX updates_by_doc ON updates (room, doc, seq);

CREATE TABLE rooms (
    room text COLLATE "C" PRIMARY KEY,
    title text NOT NULL,
    retention_days double precision,
    created_ms double precision NOT NULL,
    last_activity_ms double precision NOT NULL
);

-- Append-only: no row is ever updated or deleted, not with its room either
-- (protocol.md §10.2).
CREATE TABLE audit (
    id bigserial PRIMARY KEY,
    ts double precision NOT NULL,
    room text COLLATE "C",
    user_id text,
    role text,
    action text NOT NULL,
    outcome text NOT NULL,
    detail text NOT NULL
);
CREATE INDEX audit_by_room ON audit (room, id);

CREATE TABLE revocations (
    id text PRIMARY KEY,
    jti text,
    sub text,
    room text COLLATE "C",
    until_ms double precision NOT NULL,
    created_ms double precision NOT NULL,
    by_admin text NOT NULL
);

-- Advanced with every added or deleted revocation, in the same transaction;
-- every node polls it (rooms/revocations.py).
CREATE TABLE revocation_version (
    one integer PRIMARY KEY CHECK (one = 1),
    version bigint NOT NULL
);
INSERT INTO revocation_version (one, version) VALUES (1, 0);

-- The probe write while writes fail with nothing else to write (protocol.md §11.4).
CREATE TABLE health (
    one integer PRIMARY KEY CHECK (one = 1),
    probed_ms double precision NOT NULL
);
