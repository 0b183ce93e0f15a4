-- Worker processes alive right now: each writes its row every few seconds and deletes it on a
-- graceful stop. A row whose last_seen is old is a worker that died; the web process counts
-- only fresh rows, and a starting worker deletes rows that are long dead.
CREATE TABLE workers (
    id TEXT PRIMARY KEY NOT NULL,
    hostname TEXT NOT NULL,
    pid BIGINT NOT NULL,
    embedded BOOLEAN NOT NULL,
    started_at TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL
);
