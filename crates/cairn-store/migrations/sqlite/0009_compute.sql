-- Compute: project file snapshots (content-addressed; the manifest lives in the artifact store),
-- IT-approved environments with revisions, hardware tiers and quotas, jobs (queued durably,
-- dispatched and polled by whichever replica holds the row's lease), schedules (claimed once per
-- firing; a job per firing is unique), and secrets encrypted at rest. API tokens may be confined
-- to one project (the short-lived tokens given to jobs).
CREATE TABLE project_snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    digest TEXT NOT NULL,
    message TEXT NOT NULL,
    author TEXT NOT NULL,
    file_count INTEGER NOT NULL,
    total_bytes INTEGER NOT NULL,
    new_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX project_snapshots_project ON project_snapshots (project_id, id);
CREATE INDEX project_snapshots_digest ON project_snapshots (project_id, digest);
CREATE TABLE environments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE environment_revisions (
    environment INTEGER NOT NULL REFERENCES environments(id),
    revision INTEGER NOT NULL,
    definition TEXT NOT NULL,
    digest TEXT NOT NULL,
    state TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    PRIMARY KEY (environment, revision)
);
CREATE TABLE hardware_tiers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    active INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE compute_quotas (
    scope_kind TEXT NOT NULL,
    scope_id INTEGER NOT NULL,
    max_jobs INTEGER,
    max_gpus INTEGER,
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope_kind, scope_id)
);
CREATE TABLE job_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    template TEXT NOT NULL,
    missed TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    owner_id INTEGER REFERENCES users(id),
    next_run_at INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_until INTEGER,
    last_fired_at INTEGER,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX job_schedules_due ON job_schedules (enabled, next_run_at);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    environment TEXT NOT NULL,
    environment_revision INTEGER NOT NULL,
    tier TEXT NOT NULL,
    executor TEXT NOT NULL,
    gpus INTEGER NOT NULL,
    submitted_by TEXT NOT NULL,
    user_id INTEGER REFERENCES users(id),
    experiment_id INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    token_id INTEGER,
    schedule_id INTEGER REFERENCES job_schedules(id),
    scheduled_for INTEGER,
    reproduced_from TEXT,
    queue_reason TEXT,
    reason TEXT,
    exit_code INTEGER,
    cancel_requested_by TEXT,
    claimed_by TEXT,
    claimed_until INTEGER,
    log_path TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    running_at INTEGER,
    finished_at INTEGER
);
CREATE INDEX jobs_project ON jobs (project_id, id);
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_run ON jobs (run_id);
CREATE UNIQUE INDEX jobs_schedule_firing ON jobs (schedule_id, scheduled_for);
CREATE TABLE secrets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope_kind TEXT NOT NULL,
    scope_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (scope_kind, scope_id, name)
);
ALTER TABLE api_tokens ADD COLUMN scope_project INTEGER REFERENCES projects(id);
