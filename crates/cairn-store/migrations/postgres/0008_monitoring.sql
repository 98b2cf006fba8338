-- Monitoring: the schedule row of each monitored deployment (claimed by one replica at a time),
-- the checks with their results, alerts (one open alert per deployment and threshold), the
-- notifications owed to alert routes (a durable outbox, retried with backoff), and ground truth
-- posted by prediction id.
CREATE TABLE monitor_schedules (
    deployment BIGINT PRIMARY KEY REFERENCES deployments(id),
    revision BIGINT NOT NULL,
    next_run_at BIGINT NOT NULL,
    claimed_by TEXT COLLATE "C",
    claimed_until BIGINT
);
CREATE INDEX monitor_schedules_due ON monitor_schedules (next_run_at);
CREATE TABLE monitor_checks (
    id BIGSERIAL PRIMARY KEY,
    deployment BIGINT NOT NULL REFERENCES deployments(id),
    deployment_name TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    cause TEXT COLLATE "C" NOT NULL,
    requested_by TEXT COLLATE "C" NOT NULL,
    window_start BIGINT NOT NULL,
    window_end BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    message TEXT COLLATE "C" NOT NULL,
    result TEXT COLLATE "C",
    report_path TEXT COLLATE "C"
);
CREATE INDEX monitor_checks_deployment ON monitor_checks (deployment, id);
CREATE TABLE monitor_alerts (
    id BIGSERIAL PRIMARY KEY,
    deployment BIGINT NOT NULL REFERENCES deployments(id),
    deployment_name TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    message TEXT COLLATE "C" NOT NULL,
    opened_check BIGINT NOT NULL,
    opened_at BIGINT NOT NULL,
    last_check BIGINT NOT NULL,
    closed_check BIGINT,
    closed_at BIGINT
);
CREATE UNIQUE INDEX monitor_alerts_open ON monitor_alerts (deployment, key) WHERE state = 'open';
CREATE INDEX monitor_alerts_deployment ON monitor_alerts (deployment, id);
CREATE TABLE alert_notifications (
    id BIGSERIAL PRIMARY KEY,
    deployment BIGINT NOT NULL REFERENCES deployments(id),
    check_id BIGINT NOT NULL,
    route TEXT COLLATE "C" NOT NULL,
    payload TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX alert_notifications_due ON alert_notifications (state, next_attempt_at);
CREATE TABLE ground_truth (
    deployment BIGINT NOT NULL REFERENCES deployments(id),
    prediction_id TEXT COLLATE "C" NOT NULL,
    row_index BIGINT NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (deployment, prediction_id, row_index)
);
