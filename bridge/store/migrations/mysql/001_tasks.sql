-- The BBB `tasks` table (specs/bridge.md §3.1, after BBB's migration 002:
-- buildrequestId nullable, UNIQUE(taskId, runId)), plus a surrogate id and
-- the reflector's row-lease columns. Times are epoch seconds, BIGINT so they
-- outlive 2038. Indexes are inline: MySQL has no CREATE INDEX IF NOT EXISTS.
CREATE TABLE IF NOT EXISTS tasks (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    buildrequestId BIGINT NULL,
    taskId VARCHAR(32) NOT NULL,
    runId INT NOT NULL,
    createdDate BIGINT NULL,
    processedDate BIGINT NULL,
    takenUntil BIGINT NULL,
    lease_owner VARCHAR(128) NULL,
    lease_until BIGINT NULL,
    CONSTRAINT uc_tasks_taskId_runId UNIQUE (taskId, runId),
    INDEX ix_tasks_buildrequestId (buildrequestId),
    INDEX ix_tasks_taskId (taskId),
    INDEX ix_tasks_takenUntil (takenUntil),
    INDEX ix_tasks_lease_until (lease_until)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
