-- Browser sessions of the web UI. The cookie holds a random secret; only its SHA-256 digest is
-- stored, with the user, the session's CSRF token (checked on every form post), and when it was
-- created, when it expires (sliding, with an absolute cap) and when it was last seen. Logging out
-- deletes the row; expired rows are deleted by later logins.
CREATE TABLE ui_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX ui_sessions_user ON ui_sessions (user_id);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
