-- A room's images (rooms.store.BlobStore, collab/images.py, protocol.md
-- §10.6): blobs named by the SHA-256 of their bytes, deleted with their room
-- (rooms/store_postgres.py delete_room_rows). Stored out of line and not
-- compressed: PNG, JPEG and WebP are compressed already, so TOAST's attempt
-- would only cost CPU.

CREATE TABLE blobs (
    room text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    media_type text NOT NULL,
    data bytea NOT NULL,
    created_ms double precision NOT NULL,
    PRIMARY KEY (room, digest)
);
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;
