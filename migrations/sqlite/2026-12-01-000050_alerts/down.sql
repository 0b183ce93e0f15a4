DROP TABLE alerts;
DROP TABLE alert_settings;
ALTER TABLE bundles DROP COLUMN paused_reason;
ALTER TABLE bundles DROP COLUMN consecutive_failures;
