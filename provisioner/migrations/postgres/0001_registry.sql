CREATE TABLE pools (
	pool_id TEXT PRIMARY KEY,
	spec TEXT NOT NULL,
	created BIGINT NOT NULL,
	updated BIGINT NOT NULL
);

CREATE TABLE machines (
	machine_id TEXT PRIMARY KEY,
	token_hash BYTEA NOT NULL UNIQUE,
	identity TEXT UNIQUE,
	pool_id TEXT NOT NULL DEFAULT '',
	moving_to TEXT NOT NULL DEFAULT '',
	facts TEXT NOT NULL,
	state TEXT NOT NULL DEFAULT 'starting',
	current_task_id TEXT NOT NULL DEFAULT '',
	current_run_id INTEGER NOT NULL DEFAULT 0,
	task_started BIGINT,
	health TEXT NOT NULL DEFAULT '[]',
	counters TEXT NOT NULL DEFAULT '{}',
	registered BIGINT NOT NULL,
	last_heartbeat BIGINT,
	last_moved BIGINT,
	quarantined_until BIGINT,
	quarantine_reason TEXT NOT NULL DEFAULT '',
	draining INTEGER NOT NULL DEFAULT 0,
	creds_expire BIGINT
);

CREATE TABLE directives (
	id BIGSERIAL PRIMARY KEY,
	machine_id TEXT NOT NULL,
	body TEXT NOT NULL,
	created BIGINT NOT NULL
);
CREATE INDEX directives_machine ON directives (machine_id, id);
CREATE INDEX directives_created ON directives (created);

CREATE TABLE actions (
	id BIGSERIAL PRIMARY KEY,
	machine_id TEXT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX actions_machine ON actions (machine_id, id);

CREATE TABLE task_runs (
	id BIGSERIAL PRIMARY KEY,
	pool_id TEXT NOT NULL,
	machine_id TEXT NOT NULL,
	task_id TEXT NOT NULL,
	run_id INTEGER NOT NULL,
	started BIGINT NOT NULL,
	finished BIGINT NOT NULL
);
CREATE INDEX task_runs_pool ON task_runs (pool_id, finished);

CREATE TABLE tokens (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	hash BYTEA NOT NULL UNIQUE,
	uses_left INTEGER NOT NULL DEFAULT 0,
	expires BIGINT,
	description TEXT NOT NULL DEFAULT '',
	created BIGINT NOT NULL
);
