-- A row that settles hands its conversation on to the next one (see `conversations`). Looking
-- for that next row after every settle cost each independent run two more statements; so a row
-- that has to wait marks the rows it waits for, and only a marked row looks when it settles.
ALTER TABLE inbox ADD COLUMN waited_on BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE runs ADD COLUMN waited_on BOOLEAN NOT NULL DEFAULT FALSE;
