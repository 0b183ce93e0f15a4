DROP INDEX runs_inbox;
DROP INDEX inbox_provider_outcome_events;
DROP INDEX inbox_outcome_events;
DROP INDEX inbox_provider_events;
ALTER TABLE inbox DROP COLUMN outcome;
