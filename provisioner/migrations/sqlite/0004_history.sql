-- History for the dashboard's charts, written by the replica that runs
-- the assigner on every history tick and pruned after historyRetention.
-- pool_samples: one row per pool and tick; pending is NULL when the
-- pool's source could not be asked.
CREATE TABLE pool_samples (
	pool_id TEXT NOT NULL,
	at BIGINT NOT NULL,
	pending BIGINT,
	assigned INTEGER NOT NULL,
	busy INTEGER NOT NULL,
	idle INTEGER NOT NULL,
	quarantined INTEGER NOT NULL,
	offline INTEGER NOT NULL,
	target INTEGER NOT NULL,
	recommended INTEGER NOT NULL,
	PRIMARY KEY (pool_id, at)
);
CREATE INDEX pool_samples_at ON pool_samples (at);

-- machine_states: a machine's state as the sampler saw it, one row per
-- change (quarantined and offline take precedence over the reported state).
CREATE TABLE machine_states (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	machine_id TEXT NOT NULL,
	at BIGINT NOT NULL,
	state TEXT NOT NULL,
	detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX machine_states_machine ON machine_states (machine_id, at);
CREATE INDEX machine_states_at ON machine_states (at);

-- A machine's timeline reads its finished runs; "why is this task not
-- running?" reads a task's.
CREATE INDEX task_runs_machine ON task_runs (machine_id, finished);
CREATE INDEX task_runs_task ON task_runs (task_id);

-- replicas: every provisioner replica on this database says it is alive
-- on each history tick, whether it runs the assigner, and its last error.
CREATE TABLE replicas (
	replica_id TEXT PRIMARY KEY,
	hostname TEXT NOT NULL,
	started BIGINT NOT NULL,
	seen BIGINT NOT NULL,
	assigns INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	last_error_at BIGINT
);
