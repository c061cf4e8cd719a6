-- The BBB `tasks` table (specs/bridge.md §3.1, after BBB's migration 002:
-- buildrequestId nullable, UNIQUE(taskId, runId)), plus a surrogate id and
-- the reflector's row-lease columns. Times are epoch seconds.
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    buildrequestId INTEGER NULL,
    taskId VARCHAR(32) NOT NULL,
    runId INTEGER NOT NULL,
    createdDate INTEGER NULL,
    processedDate INTEGER NULL,
    takenUntil INTEGER NULL,
    lease_owner VARCHAR(128) NULL,
    lease_until INTEGER NULL,
    CONSTRAINT uc_tasks_taskId_runId UNIQUE (taskId, runId)
);
CREATE INDEX IF NOT EXISTS ix_tasks_buildrequestId ON tasks (buildrequestId);
CREATE INDEX IF NOT EXISTS ix_tasks_taskId ON tasks (taskId);
CREATE INDEX IF NOT EXISTS ix_tasks_takenUntil ON tasks (takenUntil);
CREATE INDEX IF NOT EXISTS ix_tasks_lease_until ON tasks (lease_until);
