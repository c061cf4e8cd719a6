-- Finished runs as machines report them, for the black-hole detector
-- (docs/provisioner.md, "Black holes"). A run is stored once: a report
-- sent again is a duplicate of the unique key.
CREATE TABLE run_reports (
	id BIGSERIAL PRIMARY KEY,
	pool_id TEXT NOT NULL,
	machine_id TEXT NOT NULL,
	task_id TEXT NOT NULL,
	run_id INTEGER NOT NULL,
	kind TEXT NOT NULL,
	builder TEXT NOT NULL DEFAULT '',
	build_number INTEGER NOT NULL DEFAULT 0,
	result TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	exit_code BIGINT,
	started BIGINT NOT NULL,
	finished BIGINT NOT NULL,
	received BIGINT NOT NULL,
	UNIQUE (machine_id, task_id, run_id, kind, build_number)
);
CREATE INDEX run_reports_pool ON run_reports (pool_id, received);
CREATE INDEX run_reports_finished ON run_reports (finished);

-- Per machine, the detector's memory: runs up to judged_after are not
-- judged again (they led to a quarantine, or an operator released the
-- machine), and auto_until is the end of the detector's own quarantine.
CREATE TABLE blackhole_watch (
	machine_id TEXT PRIMARY KEY,
	judged_after BIGINT NOT NULL DEFAULT 0,
	auto_until BIGINT
);
