-- Operator replies (RetailCRM chats → messenger). MG posts each operator message to our
-- transport webhook; the row is stored before we answer, keyed by MG's message id so a
-- repeated webhook finds it instead of sending again. It then follows the lease protocol of
-- the other work tables (see core/src/db/lease.rs) until delivered or failed for good.
CREATE TABLE mg_replies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id BIGINT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    dedup_key TEXT NOT NULL,
    mg_message_id BIGINT,
    channel_id BIGINT NOT NULL,
    external_user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    payload TEXT NOT NULL,
    messenger_provider_id BIGINT,
    chat_id TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    mg_error TEXT,
    external_message_id TEXT,
    send_started_at TIMESTAMP,
    answer TEXT,
    acked_at TIMESTAMP,
    -- When the messenger said the customer read it (reported to MG then).
    read_at TIMESTAMP,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    enqueued_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (provider_id, dedup_key)
);
CREATE INDEX mg_replies_due ON mg_replies (status, next_attempt_at);
CREATE INDEX mg_replies_created ON mg_replies (created_at);

-- Where an MG chat's replies go: written each time a customer's message is posted into a
-- RetailCRM chat, read when the operator answers (MG's external_chat_id may be empty, so
-- the key is the channel and our customer id in it).
CREATE TABLE mg_routes (
    provider_id BIGINT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    channel_id BIGINT NOT NULL,
    external_user_id TEXT NOT NULL,
    messenger_provider_id BIGINT NOT NULL,
    chat_id TEXT NOT NULL,
    -- When the customer last wrote (the messenger's time): official WhatsApp refuses free
    -- text 24 hours after it.
    customer_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (provider_id, channel_id, external_user_id)
);
