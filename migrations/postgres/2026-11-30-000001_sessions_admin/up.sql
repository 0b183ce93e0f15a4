-- Exactly one administrator, enforced by the schema: two set-up forms racing cannot both
-- create one. An install that already has more than one keeps the first.
DELETE FROM admins WHERE id <> (SELECT MIN(id) FROM admins);
CREATE UNIQUE INDEX admins_only_one ON admins ((true));

-- Signed-in browsers. The cookie carries a random token; only its SHA-256 is stored, so a
-- copy of this table does not sign anyone in. Deleting a row ends that session everywhere
-- the cookie was copied to.
CREATE TABLE admin_sessions (
    token_hash TEXT PRIMARY KEY,
    admin_id BIGINT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX admin_sessions_admin ON admin_sessions (admin_id);

-- First-run set-up codes (SHA-256), printed by each web process at start while no
-- administrator exists; all are deleted when the administrator is created.
CREATE TABLE setup_codes (
    code_hash TEXT PRIMARY KEY,
    created_at TIMESTAMP NOT NULL
);
