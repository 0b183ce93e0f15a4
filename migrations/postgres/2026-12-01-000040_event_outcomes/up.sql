-- What became of each stored delivery, for the Events page: `started` (runs were created),
-- `not_listened` (no running bundle listens to this event), `no_match` (bundles listen, but
-- none for the order's status), `other_store` (an order the provider's store key cannot see:
-- skipped, never retried), `failed` (could not become an event; `error` says why). NULL while
-- it waits to be dispatched.
ALTER TABLE inbox ADD COLUMN outcome TEXT;
UPDATE inbox SET outcome = 'failed' WHERE status = 'failed';
UPDATE inbox SET outcome = 'started'
    WHERE status = 'done' AND EXISTS (SELECT 1 FROM runs WHERE runs.inbox_id = inbox.id);
UPDATE inbox SET outcome = 'not_listened'
    WHERE status = 'done' AND outcome IS NULL AND event IS NULL;
UPDATE inbox SET outcome = 'no_match' WHERE status = 'done' AND outcome IS NULL;
-- The Events page lists newest first, optionally of one provider or one outcome; each page
-- then reads the runs of its items.
CREATE INDEX inbox_provider_events ON inbox (provider_id, id);
CREATE INDEX inbox_outcome_events ON inbox (outcome, id);
CREATE INDEX inbox_provider_outcome_events ON inbox (provider_id, outcome, id);
CREATE INDEX runs_inbox ON runs (inbox_id);
