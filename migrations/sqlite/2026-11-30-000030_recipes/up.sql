-- When each provider's webhook last delivered something we stored, and the last delivery we
-- refused (and why), for the provider page: the admin's proof the upstream reaches us.
CREATE TABLE hook_deliveries (
    provider_id BIGINT PRIMARY KEY NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    last_ok_at TIMESTAMP,
    last_error TEXT,
    last_error_at TIMESTAMP
);
