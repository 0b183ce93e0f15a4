-- Failure alerts (issue 17 item 6). A bundle counts its consecutive permanent run failures
-- (a success or a resume clears the count) and pauses itself at the configured number,
-- remembering why; the reason shows on its page and list.
ALTER TABLE bundles ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bundles ADD COLUMN paused_reason TEXT;

-- How the admin is told: one row (id 1). `settings` is JSON (channel and its plain fields),
-- `secrets` the SMTP password encrypted like providers' secrets.
CREATE TABLE alert_settings (
    id BIGINT PRIMARY KEY,
    settings TEXT NOT NULL,
    secrets TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Alerts to deliver. Each row follows the lease protocol of the work tables (see
-- core/src/db/lease.rs): stored in the transaction that records the failure, delivered by a
-- worker, retried with back-off, never sent twice. A bundle's failures within the
-- coalescing window add to one row's `count` instead of making new rows.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject_id BIGINT NOT NULL,
    subject_name TEXT NOT NULL,
    reason TEXT,
    count INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    enqueued_at TIMESTAMP,
    sent_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX alerts_due ON alerts (status, next_attempt_at);
CREATE INDEX alerts_subject ON alerts (kind, subject_id, id);
