-- Who may long-poll a Telegram bot right now (Telegram answers 409 to a second poller). A
-- worker holds a row until lease_until and renews it before every getUpdates call.
CREATE TABLE poll_leases (
    provider_id BIGINT PRIMARY KEY REFERENCES providers(id) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    lease_until TIMESTAMP NOT NULL
);
