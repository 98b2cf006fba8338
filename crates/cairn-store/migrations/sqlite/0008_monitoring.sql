-- Monitoring: the schedule row of each monitored deployment (claimed by one replica at a time),
-- the checks with their results, alerts (one open alert per deployment and threshold), the
-- notifications owed to alert routes (a durable outbox, retried with backoff), and ground truth
-- posted by prediction id.
CREATE TABLE monitor_schedules (
    deployment INTEGER PRIMARY KEY REFERENCES deployments(id),
    revision INTEGER NOT NULL,
    next_run_at INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_until INTEGER
);
CREATE INDEX monitor_schedules_due ON monitor_schedules (next_run_at);
CREATE TABLE monitor_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment INTEGER NOT NULL REFERENCES deployments(id),
    deployment_name TEXT NOT NULL,
    revision INTEGER NOT NULL,
    cause TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    result TEXT,
    report_path TEXT
);
CREATE INDEX monitor_checks_deployment ON monitor_checks (deployment, id);
CREATE TABLE monitor_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment INTEGER NOT NULL REFERENCES deployments(id),
    deployment_name TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL,
    opened_check INTEGER NOT NULL,
    opened_at INTEGER NOT NULL,
    last_check INTEGER NOT NULL,
    closed_check INTEGER,
    closed_at INTEGER
);
CREATE UNIQUE INDEX monitor_alerts_open ON monitor_alerts (deployment, key) WHERE state = 'open';
CREATE INDEX monitor_alerts_deployment ON monitor_alerts (deployment, id);
CREATE TABLE alert_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment INTEGER NOT NULL REFERENCES deployments(id),
    check_id INTEGER NOT NULL,
    route TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX alert_notifications_due ON alert_notifications (state, next_attempt_at);
CREATE TABLE ground_truth (
    deployment INTEGER NOT NULL REFERENCES deployments(id),
    prediction_id TEXT NOT NULL,
    row_index INTEGER NOT NULL,
    value TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (deployment, prediction_id, row_index)
);
