//! The command line: `cairn serve` and `cairn migrate`, with a `CAIRN_*` variable for every flag.

use std::path::PathBuf;

use cairn_artifacts::S3Options;
use clap::{Args, Parser, Subcommand};

use crate::Config;

/// Cairn: the system of record for a data science organisation, with an MLflow-compatible
/// tracking server. Point `MLFLOW_TRACKING_URI` at it and use the unmodified `mlflow` client.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, long_about = None)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "CAIRN_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (tracking API, artifact proxy, health endpoints).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(BackendArgs),
    /// Administration straight against the database: audit, users, tokens, projects.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Save a server URL and token for the client commands below (checks them first).
    Login(LoginArgs),
    /// My API tokens, through a running server.
    #[command(subcommand)]
    Token(ClientTokenCommand),
    /// Projects and members, through a running server.
    #[command(subcommand)]
    Project(ClientProjectCommand),
    /// Registered models: promotions, model cards, history, deploy gate, compliance bundles.
    #[command(subcommand)]
    Model(crate::governance_cli::ModelCommand),
    /// Approval requests: list, show, approve, reject, withdraw.
    #[command(subcommand)]
    Approvals(crate::governance_cli::ApprovalsCommand),
    /// Deployments: serve registered model versions over HTTP (canary, rollback, history).
    #[command(subcommand)]
    Deploy(crate::deploy_cli::DeployCommand),
    /// Monitoring: drift and quality monitors of deployments, checks, reports, ground truth, alerts.
    #[command(subcommand)]
    Monitor(crate::monitor_cli::MonitorCommand),
    /// Promotion policies: what moving a version to an alias or stage requires.
    #[command(subcommand)]
    Policy(crate::governance_cli::PolicyCommand),
    /// Data drift between two local Parquet or CSV files, without a server (exit status 3
    /// when the dataset drifted).
    Drift(crate::drift_cli::DriftArgs),
    /// Upload a directory as the project's newest file snapshot (only new contents are sent).
    Push(crate::compute_cli::PushArgs),
    /// Download a project snapshot into a directory.
    Pull(crate::compute_cli::PullArgs),
    /// Project file snapshots.
    #[command(subcommand)]
    Snapshot(crate::compute_cli::SnapshotCommand),
    /// Versioned datasets: push, list, show, retention, delete.
    #[command(subcommand)]
    Dataset(crate::compute_cli::DatasetCommand),
    /// Approved environments (Python + requirements, or an image) and their revisions.
    #[command(subcommand)]
    Env(crate::compute_cli::EnvCommand),
    /// Hardware tiers: CPU, memory, GPUs, maximum run time, executor.
    #[command(subcommand)]
    Tier(crate::compute_cli::TierCommand),
    /// Quotas of concurrent jobs and GPUs per user, team or project.
    #[command(subcommand)]
    Quota(crate::compute_cli::QuotaCommand),
    /// Jobs: run a command on a project snapshot, follow its log, cancel it.
    #[command(subcommand)]
    Job(crate::compute_cli::JobCommand),
    /// Runs: re-run the job that produced one.
    #[command(subcommand)]
    Run(crate::compute_cli::RunCommand),
    /// Schedules: jobs fired by cron expressions in a time zone.
    #[command(subcommand)]
    Schedule(crate::compute_cli::ScheduleCommand),
    /// Secrets injected into jobs as environment variables (values never shown again).
    #[command(subcommand)]
    Secret(crate::compute_cli::SecretCommand),
    /// Workspaces: JupyterLab on a project snapshot, served through Cairn; saved on stop.
    #[command(subcommand)]
    Workspace(crate::workspace_cli::WorkspaceCommand),
    /// Comments on a project, a run or a model version, with @mentions.
    #[command(subcommand)]
    Comment(crate::comment_cli::CommentCommand),
    /// Search projects, experiments, runs, models, datasets and comments I may read.
    Search(crate::comment_cli::SearchArgs),
}

/// Flags of `cairn login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server, e.g. http://127.0.0.1:5000
    #[arg(long, env = "CAIRN_SERVER", default_value = "http://127.0.0.1:5000")]
    pub server: String,
    /// An API token (read from standard input when absent).
    #[arg(long, env = "CAIRN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `cairn token …` (client).
#[derive(Debug, Subcommand)]
pub enum ClientTokenCommand {
    /// Create a token for myself and print it (shown once).
    Create {
        /// A label.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until it expires.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List my tokens.
    List,
    /// Revoke one of my tokens.
    Revoke {
        /// The token's id.
        id: i64,
    },
}

/// `cairn project …` (client).
#[derive(Debug, Subcommand)]
pub enum ClientProjectCommand {
    /// Create a project (site admins).
    Create {
        /// The name.
        name: String,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
        /// Its first owner.
        #[arg(long)]
        owner: Option<String>,
    },
    /// List my projects.
    List,
    /// List a project's members.
    Members {
        /// The project.
        project: String,
    },
    /// Add a member or change their role (owners).
    SetMember {
        /// The project.
        project: String,
        /// The user.
        user: String,
        /// owner, contributor or viewer.
        #[arg(long, default_value = "contributor")]
        role: String,
    },
    /// Remove a member (owners).
    RemoveMember {
        /// The project.
        project: String,
        /// The user.
        user: String,
    },
}

/// `cairn admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Create the first admin and print its token (only while the site has no users).
    Bootstrap(BootstrapArgs),
    /// Users and service accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Projects and their members.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Teams of users.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Secrets at rest: re-seal every secret under a new key.
    #[command(subcommand)]
    Secrets(SecretsAdminCommand),
    /// Back up the database and the artifact store into a directory (`--out DIR`), or check a
    /// backup's digests (`verify DIR`).
    Backup(BackupArgs),
    /// Restore a backup into a new, empty database and artifact store (either engine).
    Restore(RestoreArgs),
}

/// Flags of `cairn admin backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// `verify DIR`: re-check a backup's digests without restoring it.
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    /// The directory to write (created; refused when it exists and is not empty).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `cairn admin backup …`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Check every table file and artifact of a backup against its manifest's SHA-256 digests
    /// (exit 1 when one does not match).
    Verify {
        /// The backup directory.
        dir: PathBuf,
    },
}

/// Flags of `cairn admin restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup directory (written by `cairn admin backup --out`).
    #[arg(long)]
    pub from: PathBuf,
    /// Backends to restore into: a database and an artifact store that are new and empty.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `cairn admin secrets …`.
// Parsed once per process; boxing the rotation's flags would buy nothing.
#[expect(clippy::large_enum_variant, reason = "parsed once per process")]
#[derive(Debug, Subcommand)]
pub enum SecretsAdminCommand {
    /// Re-seal every secret with a new key in one transaction; then restart the servers with
    /// the new key (`--secrets-key-file`).
    Rotate(RotateArgs),
    /// Print a new random key (base64), for a key file or CAIRN_SECRETS_KEY.
    GenerateKey,
}

/// Flags of `cairn admin secrets rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The file holding the new key (base64 of 32 bytes).
    #[arg(long)]
    pub new_key_file: PathBuf,
    /// The current key.
    #[command(flatten)]
    pub key: SecretsKeyArgs,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Where the secrets key comes from.
#[derive(Debug, Args)]
pub struct SecretsKeyArgs {
    /// A file holding the key that seals secrets (base64 of 32 bytes)
    /// [default: <data-dir>/secrets.key, created on first start].
    #[arg(long, env = "CAIRN_SECRETS_KEY_FILE")]
    pub secrets_key_file: Option<PathBuf>,
    /// The key itself (base64 of 32 bytes), instead of a file.
    #[arg(
        long,
        env = "CAIRN_SECRETS_KEY",
        hide_env_values = true,
        conflicts_with = "secrets_key_file"
    )]
    pub secrets_key: Option<String>,
}

/// `cairn admin project …`.
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project.
    Create(ProjectCreateArgs),
    /// List projects.
    List(BackendArgs),
    /// Add a member, or change their role (owner, contributor, viewer).
    SetMember(ProjectMemberArgs),
    /// Remove a member.
    RemoveMember(ProjectUserArgs),
    /// List a project's members.
    Members(ProjectNameArgs),
    /// Give a team a role in a project (`--role none` removes it).
    SetTeam(ProjectTeamArgs),
}

/// A project, a team and a role.
#[derive(Debug, Args)]
pub struct ProjectTeamArgs {
    /// The project.
    pub project: String,
    /// The team.
    pub team: String,
    /// owner, contributor, viewer or none.
    #[arg(long, default_value = "contributor")]
    pub role: String,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `cairn admin team …`.
#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team.
    Create(TeamArgs),
    /// Add a user to a team.
    AddUser(TeamUserArgs),
    /// Remove a user from a team.
    RemoveUser(TeamUserArgs),
    /// List teams with their members and project roles.
    List(BackendArgs),
}

/// A team name.
#[derive(Debug, Args)]
pub struct TeamArgs {
    /// The team.
    pub team: String,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// A team and a user.
#[derive(Debug, Args)]
pub struct TeamUserArgs {
    /// The team.
    pub team: String,
    /// The user.
    pub user: String,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of `cairn admin project create`.
#[derive(Debug, Args)]
pub struct ProjectCreateArgs {
    /// The project's name (used in tracking URIs: http://host/p/NAME).
    pub name: String,
    /// What it is for.
    #[arg(long)]
    pub description: Option<String>,
    /// A user who becomes its first owner.
    #[arg(long)]
    pub owner: Option<String>,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// A project, a user and a role.
#[derive(Debug, Args)]
pub struct ProjectMemberArgs {
    /// The project.
    pub project: String,
    /// The user.
    pub user: String,
    /// The role: owner, contributor or viewer.
    #[arg(long, default_value = "contributor")]
    pub role: String,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// A project and a user.
#[derive(Debug, Args)]
pub struct ProjectUserArgs {
    /// The project.
    pub project: String,
    /// The user.
    pub user: String,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// A project name.
#[derive(Debug, Args)]
pub struct ProjectNameArgs {
    /// The project.
    pub project: String,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of `cairn admin bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The first admin's user name.
    #[arg(long, default_value = "admin")]
    pub username: String,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `cairn admin user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; people get a password from standard input with `--password-stdin`.
    Create(UserCreateArgs),
    /// List users.
    List(BackendArgs),
    /// Deactivate a user: their tokens and password stop working, their work stays.
    Deactivate(UserDeactivateArgs),
    /// Reactivate a user.
    Activate(UserNameArgs),
    /// Set where the user's MLflow calls go without a /p/<project> prefix.
    SetDefaultProject(UserProjectArgs),
    /// Change a user's site role: admin, governance-reviewer or member.
    SetRole(UserRoleArgs),
}

/// A user and a site role.
#[derive(Debug, Args)]
pub struct UserRoleArgs {
    /// The user name.
    pub username: String,
    /// admin, governance-reviewer or member.
    pub role: String,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// A user and a project (or `--clear`).
#[derive(Debug, Args)]
pub struct UserProjectArgs {
    /// The user name.
    pub username: String,
    /// The project (omit with `--clear`).
    #[arg(required_unless_present = "clear")]
    pub project: Option<String>,
    /// Go back to the site's `default` project.
    #[arg(long)]
    pub clear: bool,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of `cairn admin user create`.
#[derive(Debug, Args)]
pub struct UserCreateArgs {
    /// The user name.
    pub username: String,
    /// Site role: admin, governance-reviewer or member.
    #[arg(long, default_value = "member")]
    pub role: String,
    /// A service account (tokens only, no password).
    #[arg(long)]
    pub service_account: bool,
    /// Read the password from standard input (one line).
    #[arg(long, conflicts_with = "service_account")]
    pub password_stdin: bool,
    /// Display name.
    #[arg(long)]
    pub display_name: Option<String>,
    /// E-mail address.
    #[arg(long)]
    pub email: Option<String>,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of `cairn admin user deactivate`.
#[derive(Debug, Args)]
pub struct UserDeactivateArgs {
    /// The user name.
    pub username: String,
    /// Who takes over the projects this user owns.
    #[arg(long)]
    pub transfer_to: Option<String>,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// A user name and the backends.
#[derive(Debug, Args)]
pub struct UserNameArgs {
    /// The user name.
    pub username: String,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `cairn admin token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for a user and print it (it is shown once).
    Create(TokenCreateArgs),
    /// List a user's tokens (never their secrets).
    List(UserNameArgs),
    /// Revoke a token by id.
    Revoke(TokenRevokeArgs),
}

/// Flags of `cairn admin token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The owner.
    #[arg(long)]
    pub user: String,
    /// A label for the token.
    #[arg(long, default_value = "cli")]
    pub name: String,
    /// Days until it expires (never, when absent).
    #[arg(long)]
    pub expires_in_days: Option<u32>,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of `cairn admin token revoke`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id (see `cairn admin token list`).
    pub id: i64,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `cairn admin audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; exit 1 and name the first broken record if it does not verify.
    Verify(BackendArgs),
    /// Write audit records as JSON lines or CSV.
    Export(AuditExportArgs),
}

/// Flags of `cairn admin audit export`.
#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// Only records at or after this time: epoch milliseconds, `YYYY-MM-DD` or
    /// `YYYY-MM-DDTHH:MM:SSZ` (UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// Output format.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
    pub format: String,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of `cairn serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CAIRN_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "CAIRN_PORT", default_value_t = 5000)]
    pub port: u16,
    /// Require every request to authenticate (`enabled`), or let anonymous callers in
    /// (`disabled`, for one person on a laptop only). With `enabled` and no users yet, the first
    /// admin is created and its token written to `<data-dir>/bootstrap-admin-token`.
    #[arg(long, env = "CAIRN_AUTH", default_value = "disabled", value_parser = ["enabled", "disabled"])]
    pub auth: String,
    /// The Python interpreter (with mlflow installed) that runs model workers for deployed
    /// versions that are not ONNX (scikit-learn, pyfunc).
    #[arg(long, env = "CAIRN_PYTHON", default_value = "python3")]
    pub python: PathBuf,
    /// Monitoring and alerts.
    #[command(flatten)]
    pub monitoring: MonitoringArgs,
    /// Jobs, executors and secrets.
    #[command(flatten)]
    pub compute: ComputeArgs,
    /// Backends.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of jobs, executors and secrets (`cairn serve`).
#[derive(Debug, Args)]
pub struct ComputeArgs {
    /// The executor of hardware tiers that name none: local or ray.
    #[arg(long, env = "CAIRN_EXECUTOR", default_value = "local", value_parser = ["local", "ray"])]
    pub executor: String,
    /// A Ray cluster's Jobs API (its dashboard address), e.g. http://head:8265; enables the
    /// ray executor.
    #[arg(long, env = "CAIRN_RAY_ADDRESS")]
    pub ray_address: Option<String>,
    /// Where local jobs keep their files and logs [default: <data-dir>/jobs].
    #[arg(long, env = "CAIRN_JOBS_DIR")]
    pub jobs_dir: Option<PathBuf>,
    /// Where built Python environments are cached [default: <data-dir>/envs].
    #[arg(long, env = "CAIRN_ENV_CACHE")]
    pub env_cache: Option<PathBuf>,
    /// The interpreter local environments are built from when they name no Python
    /// [default: --python].
    #[arg(long, env = "CAIRN_JOB_PYTHON")]
    pub job_python: Option<PathBuf>,
    /// How often the dispatcher looks for queued jobs and polls running ones, in ms.
    #[arg(long, env = "CAIRN_JOB_TICK_MS", default_value_t = 500)]
    pub job_tick_ms: u64,
    /// The URL jobs reach this server at (MLFLOW_TRACKING_URI) [default: the listening address].
    #[arg(long, env = "CAIRN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when a local job is stopped.
    #[arg(long, env = "CAIRN_JOB_KILL_GRACE_S", default_value_t = 10)]
    pub job_kill_grace_s: u64,
    /// The secrets key.
    #[command(flatten)]
    pub key: SecretsKeyArgs,
}

impl ComputeArgs {
    /// The compute settings these flags describe.
    pub fn settings(&self) -> crate::ComputeSettings {
        crate::ComputeSettings {
            default_executor: if self.executor == "ray" {
                cairn_domain::compute::ExecutorKind::Ray
            } else {
                cairn_domain::compute::ExecutorKind::Local
            },
            ray_address: self.ray_address.clone(),
            jobs_dir: self.jobs_dir.clone(),
            env_cache: self.env_cache.clone(),
            job_python: self.job_python.clone(),
            tick: std::time::Duration::from_millis(self.job_tick_ms.max(20)),
            public_url: self.public_url.clone(),
            kill_grace: std::time::Duration::from_secs(self.job_kill_grace_s),
            secrets_key_file: self.key.secrets_key_file.clone(),
            secrets_key: self.key.secrets_key.clone(),
        }
    }
}

/// Flags of the monitoring scheduler and alert notifications (`cairn serve`).
#[derive(Debug, Args)]
pub struct MonitoringArgs {
    /// How often this replica looks for due monitor checks and owed notifications, in ms.
    #[arg(long, env = "CAIRN_MONITOR_TICK_MS", default_value_t = 10_000)]
    pub monitor_tick_ms: u64,
    /// Sign webhook bodies with HMAC-SHA256 under this key (header X-Cairn-Signature:
    /// sha256=<hex>); unsigned when absent.
    #[arg(long, env = "CAIRN_ALERT_SIGNING_KEY", hide_env_values = true)]
    pub alert_signing_key: Option<String>,
    /// The SMTP relay for email alert routes (plain SMTP, no TLS).
    #[arg(long, env = "CAIRN_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// The SMTP relay's port.
    #[arg(long, env = "CAIRN_SMTP_PORT", default_value_t = 25)]
    pub smtp_port: u16,
    /// The sender of alert emails.
    #[arg(long, env = "CAIRN_SMTP_FROM", default_value = "cairn@localhost")]
    pub smtp_from: String,
    /// The first retry of a failed notification after this many ms; each retry doubles it
    /// (at most an hour).
    #[arg(long, env = "CAIRN_ALERT_RETRY_BASE_MS", default_value_t = 10_000)]
    pub alert_retry_base_ms: u64,
    /// Attempts before a notification is given up (and marked failed).
    #[arg(long, env = "CAIRN_ALERT_MAX_ATTEMPTS", default_value_t = 8)]
    pub alert_max_attempts: u32,
}

impl MonitoringArgs {
    /// The monitoring configuration these flags describe.
    pub fn config(&self) -> cairn_service::MonitorConfig {
        cairn_service::MonitorConfig {
            tick: std::time::Duration::from_millis(self.monitor_tick_ms.max(100)),
            notify: cairn_service::NotifyConfig {
                signing_key: self.alert_signing_key.clone().filter(|k| !k.is_empty()),
                smtp: self.smtp_host.as_ref().map(|host| cairn_service::SmtpConfig {
                    host: host.clone(),
                    port: self.smtp_port,
                    from: self.smtp_from.clone(),
                }),
                retry_base: std::time::Duration::from_millis(self.alert_retry_base_ms.max(1)),
                max_attempts: self.alert_max_attempts.max(1),
                ..cairn_service::NotifyConfig::default()
            },
        }
    }
}

/// Where metadata and artifacts live.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Directory for the embedded defaults: the SQLite file and the artifact directory.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    pub data_dir: PathBuf,
    /// Metadata database: sqlite://PATH or postgres://USER:PASS@HOST:PORT/DB
    /// [default: sqlite://<data-dir>/cairn.db]
    #[arg(long, env = "CAIRN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Most database connections per process.
    #[arg(long, env = "CAIRN_DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub db_max_connections: u32,
    /// How long a request waits for a database connection before answering 503 (the database
    /// is down, or every connection is busy), in milliseconds.
    #[arg(long, env = "CAIRN_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5000)]
    pub db_acquire_timeout_ms: u64,
    /// Artifact store: a directory, file:///DIR or s3://BUCKET/PREFIX
    /// [default: <data-dir>/artifacts]
    #[arg(long, env = "CAIRN_ARTIFACTS")]
    pub artifacts: Option<String>,
    /// S3 endpoint for S3-compatible servers (e.g. http://127.0.0.1:8333); AWS_ENDPOINT_URL also works.
    #[arg(long, env = "CAIRN_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region; AWS_REGION also works.
    #[arg(long, env = "CAIRN_S3_REGION")]
    pub s3_region: Option<String>,
    /// S3 access key id; AWS_ACCESS_KEY_ID also works.
    #[arg(long, env = "CAIRN_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key; AWS_SECRET_ACCESS_KEY also works.
    #[arg(long, env = "CAIRN_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Use virtual-hosted-style S3 URLs instead of path-style.
    #[arg(long, env = "CAIRN_S3_VIRTUAL_HOSTED_STYLE")]
    pub s3_virtual_hosted_style: bool,
}

impl BackendArgs {
    /// Turns the flags into a [`Config`].
    pub fn config(&self) -> Config {
        let allow_http = self.s3_endpoint.as_deref().is_some_and(|e| e.starts_with("http://"))
            || std::env::var("AWS_ENDPOINT_URL").is_ok_and(|e| e.starts_with("http://"));
        Config {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            artifacts: self.artifacts.clone(),
            s3: S3Options {
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                access_key_id: self.s3_access_key_id.clone(),
                secret_access_key: self.s3_secret_access_key.clone(),
                allow_http,
                virtual_hosted_style: self.s3_virtual_hosted_style,
            },
            db_max_connections: self.db_max_connections,
            db_acquire_timeout: std::time::Duration::from_millis(self.db_acquire_timeout_ms.max(1)),
            auth_required: false,
            python: PathBuf::from("python3"),
            monitoring: cairn_service::MonitorConfig::default(),
            compute: crate::ComputeSettings::default(),
        }
    }
}
