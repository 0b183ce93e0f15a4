DROP TABLE locks;
DROP INDEX runs_open_conversation;
DROP INDEX inbox_open_conversation;
ALTER TABLE runs DROP COLUMN conversation;
ALTER TABLE inbox DROP COLUMN conversation;
