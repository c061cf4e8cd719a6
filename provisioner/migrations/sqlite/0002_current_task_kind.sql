-- The kind of work a machine runs (taskcluster or buildbot) and, for a
-- Buildbot build, its builder and build number. Runs reported before this
-- migration were Taskcluster runs.
ALTER TABLE machines ADD COLUMN current_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE machines ADD COLUMN current_builder TEXT NOT NULL DEFAULT '';
ALTER TABLE machines ADD COLUMN current_build_number INTEGER NOT NULL DEFAULT 0;
UPDATE machines SET current_kind = 'taskcluster' WHERE current_task_id <> '';
