-- Compute: project file snapshots (content-addressed; the manifest lives in the artifact store),
-- IT-approved environments with revisions, hardware tiers and quotas, jobs (queued durably,
-- dispatched and polled by whichever replica holds the row's lease), schedules (claimed once per
-- firing; a job per firing is unique), and secrets encrypted at rest. API tokens may be confined
-- to one project (the short-lived tokens given to jobs).
CREATE TABLE project_snapshots (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    digest TEXT COLLATE "C" NOT NULL,
    message TEXT COLLATE "C" NOT NULL,
    author TEXT COLLATE "C" NOT NULL,
    file_count BIGINT NOT NULL,
    total_bytes BIGINT NOT NULL,
    new_bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX project_snapshots_project ON project_snapshots (project_id, id);
CREATE INDEX project_snapshots_digest ON project_snapshots (project_id, digest);
CREATE TABLE environments (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    description TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE environment_revisions (
    environment BIGINT NOT NULL REFERENCES environments(id),
    revision BIGINT NOT NULL,
    definition TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    decided_by TEXT COLLATE "C",
    decided_at BIGINT,
    PRIMARY KEY (environment, revision)
);
CREATE TABLE hardware_tiers (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    spec TEXT COLLATE "C" NOT NULL,
    active BIGINT NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE compute_quotas (
    scope_kind TEXT COLLATE "C" NOT NULL,
    scope_id BIGINT NOT NULL,
    max_jobs BIGINT,
    max_gpus BIGINT,
    updated_by TEXT COLLATE "C" NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (scope_kind, scope_id)
);
CREATE TABLE job_schedules (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    name TEXT COLLATE "C" NOT NULL,
    cron TEXT COLLATE "C" NOT NULL,
    timezone TEXT COLLATE "C" NOT NULL,
    template TEXT COLLATE "C" NOT NULL,
    missed TEXT COLLATE "C" NOT NULL,
    enabled BIGINT NOT NULL,
    owner_id BIGINT REFERENCES users(id),
    next_run_at BIGINT NOT NULL,
    claimed_by TEXT COLLATE "C",
    claimed_until BIGINT,
    last_fired_at BIGINT,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX job_schedules_due ON job_schedules (enabled, next_run_at);
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    state TEXT COLLATE "C" NOT NULL,
    spec TEXT COLLATE "C" NOT NULL,
    snapshot TEXT COLLATE "C" NOT NULL,
    environment TEXT COLLATE "C" NOT NULL,
    environment_revision BIGINT NOT NULL,
    tier TEXT COLLATE "C" NOT NULL,
    executor TEXT COLLATE "C" NOT NULL,
    gpus BIGINT NOT NULL,
    submitted_by TEXT COLLATE "C" NOT NULL,
    user_id BIGINT REFERENCES users(id),
    experiment_id BIGINT NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    token_id BIGINT,
    schedule_id BIGINT REFERENCES job_schedules(id),
    scheduled_for BIGINT,
    reproduced_from TEXT COLLATE "C",
    queue_reason TEXT COLLATE "C",
    reason TEXT COLLATE "C",
    exit_code BIGINT,
    cancel_requested_by TEXT COLLATE "C",
    claimed_by TEXT COLLATE "C",
    claimed_until BIGINT,
    log_path TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    running_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX jobs_project ON jobs (project_id, id);
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_run ON jobs (run_id);
CREATE UNIQUE INDEX jobs_schedule_firing ON jobs (schedule_id, scheduled_for);
CREATE TABLE secrets (
    id BIGSERIAL PRIMARY KEY,
    scope_kind TEXT COLLATE "C" NOT NULL,
    scope_id BIGINT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    key_id TEXT COLLATE "C" NOT NULL,
    nonce TEXT COLLATE "C" NOT NULL,
    ciphertext TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (scope_kind, scope_id, name)
);
ALTER TABLE api_tokens ADD COLUMN scope_project BIGINT REFERENCES projects(id);
