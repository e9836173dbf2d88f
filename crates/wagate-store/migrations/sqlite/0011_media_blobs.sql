-- Inbound media kept in the database itself (media.store = "database"), so that every gateway
-- sharing it can serve every file. One row per distinct content, named by its SHA-256 (hex).
CREATE TABLE media_blobs (
    content_hash TEXT PRIMARY KEY,
    bytes        BLOB NOT NULL,
    created_at   BIGINT NOT NULL
);
