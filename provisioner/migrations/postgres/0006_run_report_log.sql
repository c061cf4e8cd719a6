-- The tail of a canary's log (docs/provisioner.md, "Black holes"), as its
-- runner sent it with the report: at most 64 KiB (client.MaxRunLog),
-- empty for every other run. It is pruned with the report.
ALTER TABLE run_reports ADD COLUMN log TEXT NOT NULL DEFAULT '';

-- A machine's latest canary (its dashboard page) and a canary's task id
-- (the why page) are found among the few canary rows, not the pool's runs.
CREATE INDEX run_reports_canary_machine ON run_reports (machine_id, id) WHERE kind = 'canary';
CREATE INDEX run_reports_canary_task ON run_reports (task_id) WHERE kind = 'canary';
