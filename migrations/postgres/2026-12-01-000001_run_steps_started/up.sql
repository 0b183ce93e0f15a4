-- A retry reconciling a send reads other runs' sends of the last minutes by start time.
CREATE INDEX run_steps_started_at ON run_steps (started_at);
