//! Whole-app tests: the production `App::build` behind a real socket or in-process, on SQLite
//! and PostgreSQL, driven by HTTP and by the real `mlflow` Python client.

#[path = "../support/mod.rs"]
mod support;

mod artifacts_proxy;
mod audit;
mod auth;
mod backup;
mod cli_client;
mod cli_governance;
mod comments_cli;
mod compute;
mod crash_safety;
mod datasets;
mod drift_golden;
mod governance;
mod hostile_input;
mod load;
mod mlflow_charts;
mod mlflow_client;
mod mlflow_fuzz;
mod mlflow_registry;
mod mlflow_wire;
mod monitoring;
mod native_audit;
mod native_identity;
mod ops;
mod outages;
mod permission_matrix;
mod rbac;
mod scale_out;
mod schedules;
mod schemathesis;
mod serving;
mod ui;
mod ui_a11y;
mod ui_browser;
mod ui_ops;
mod ui_pages;
mod workspaces;
