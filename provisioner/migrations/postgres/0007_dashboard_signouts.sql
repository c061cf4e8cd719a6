-- Dashboard sessions ended by sign-out (docs/dashboard.md, "Security").
-- A session is a signed cookie, so signing out records its id here and
-- every request refuses a listed id; a row is forgotten once the session
-- would have expired anyway (expires, Unix milliseconds).
CREATE TABLE dashboard_signouts (
	session_id TEXT PRIMARY KEY,
	expires BIGINT NOT NULL
);
CREATE INDEX dashboard_signouts_expires ON dashboard_signouts (expires);
