-- Conversations: the deliveries of one chat or one order, and the runs they start, are worked
-- on one at a time in arrival order (the inbox id). An inbox row is dispatched only when no
-- earlier row of its conversation (same provider) still waits; a run is claimed only when no
-- earlier run of its conversation (same bundle) is unfinished. Both checks read these partial
-- indexes, which hold only the unfinished rows, so they stay small however long the history.
-- NULL (rows from before this migration) belongs to no conversation.
ALTER TABLE inbox ADD COLUMN conversation TEXT;
ALTER TABLE runs ADD COLUMN conversation TEXT;
CREATE INDEX inbox_open_conversation ON inbox (conversation, id)
    WHERE status IN ('pending', 'processing');
CREATE INDEX runs_open_conversation ON runs (conversation, inbox_id)
    WHERE status IN ('queued', 'running');

-- Named short-lived locks across worker processes (the find-or-create of one contact): a row
-- is held by `holder` until `lock_until`; an expired row is anybody's (its holder died).
CREATE TABLE locks (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    lock_until TIMESTAMP NOT NULL
);
