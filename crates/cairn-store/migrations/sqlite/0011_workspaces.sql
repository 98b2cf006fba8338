-- Workspaces: JupyterLab servers on a project snapshot, served through Cairn's proxy. A row is
-- owned (leased) by the replica running it; the request is kept as JSON so a stopped workspace
-- can be started again. The JupyterLab token is never stored; the workspace's API token (for
-- MLflow logging from notebooks) is an api_tokens row, revoked when the workspace stops.
CREATE TABLE workspaces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    owner TEXT NOT NULL,
    owner_id INTEGER REFERENCES users(id),
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    environment_revision INTEGER NOT NULL,
    executor TEXT NOT NULL,
    snapshot TEXT,
    exec_id TEXT,
    port INTEGER,
    token_id INTEGER,
    claimed_by TEXT,
    claimed_until INTEGER,
    stop_requested_by TEXT,
    reason TEXT,
    synced_snapshot TEXT,
    synced_at INTEGER,
    last_activity_at INTEGER,
    created_at INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    running_at INTEGER,
    stopped_at INTEGER
);
CREATE INDEX workspaces_project ON workspaces (project_id, id);
CREATE INDEX workspaces_claimed ON workspaces (claimed_by);
CREATE INDEX workspaces_state ON workspaces (state, claimed_until);
