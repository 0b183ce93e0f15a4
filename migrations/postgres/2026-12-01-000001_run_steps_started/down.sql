DROP INDEX run_steps_started_at;
