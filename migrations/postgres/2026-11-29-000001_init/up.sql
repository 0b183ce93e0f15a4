-- Times are naive UTC written by the application, as on SQLite.
CREATE TABLE admins (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE providers (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    settings TEXT NOT NULL,
    secrets TEXT NOT NULL,
    webhook_secret TEXT NOT NULL,
    check_status TEXT NOT NULL,
    check_message TEXT,
    checked_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE inbox (
    id BIGSERIAL PRIMARY KEY,
    provider_id BIGINT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    dedup_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    event TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    enqueued_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (provider_id, dedup_key)
);
CREATE INDEX inbox_due ON inbox (status, next_attempt_at);

CREATE TABLE bundles (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    source_provider_id BIGINT NOT NULL REFERENCES providers(id),
    event_type TEXT NOT NULL,
    status_filter TEXT NOT NULL,
    target_provider_id BIGINT NOT NULL REFERENCES providers(id),
    steps TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX bundles_source ON bundles (source_provider_id, state);

CREATE TABLE runs (
    id BIGSERIAL PRIMARY KEY,
    bundle_id BIGINT NOT NULL REFERENCES bundles(id) ON DELETE CASCADE,
    inbox_id BIGINT NOT NULL REFERENCES inbox(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    definition TEXT NOT NULL,
    event TEXT NOT NULL,
    error TEXT,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    enqueued_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (bundle_id, inbox_id)
);
CREATE INDEX runs_due ON runs (status, next_attempt_at);
CREATE INDEX runs_bundle ON runs (bundle_id, created_at);
CREATE INDEX runs_created ON runs (created_at);

CREATE TABLE run_steps (
    id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT,
    error TEXT,
    attempt INTEGER NOT NULL,
    duration_ms BIGINT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    UNIQUE (run_id, position)
);
