ALTER TABLE runs DROP COLUMN waited_on;
ALTER TABLE inbox DROP COLUMN waited_on;
