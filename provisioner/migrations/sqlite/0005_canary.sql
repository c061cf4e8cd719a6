-- A black hole's recovery probe (docs/provisioner.md, "Black holes"):
-- the canary task it was sent when its quarantine ended, and by when
-- its report must arrive. Empty when no canary is running.
ALTER TABLE blackhole_watch ADD COLUMN canary_task TEXT NOT NULL DEFAULT '';
ALTER TABLE blackhole_watch ADD COLUMN canary_deadline BIGINT;
