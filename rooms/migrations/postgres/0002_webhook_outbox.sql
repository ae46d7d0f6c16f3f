-- The webhook outbox (rooms/outbox.py, protocol.md §10.5): one row per
-- event and endpoint, kept until delivered or given up. A claim moves
-- next_ms to the end of its lease (rooms/store_postgres.py outbox_claim).

CREATE TABLE outbox (
    id text COLLATE "C" PRIMARY KEY,
    event_id text NOT NULL,
    event_type text NOT NULL,
    endpoint text NOT NULL,
    room text COLLATE "C" NOT NULL,
    body bytea NOT NULL,
    created_ms double precision NOT NULL,
    next_ms double precision NOT NULL,
    attempts integer NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_ms);
CREATE INDEX outbox_created ON outbox (created_ms);
