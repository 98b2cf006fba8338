//! `cairn`: parses the command line, sets up logging and runs the chosen command.

use std::time::Instant;

use anyhow::Context;
use cairn::App;
use cairn::cli::{AdminCommand, AuditCommand, Cli, Command, SecretsAdminCommand};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}

/// With authentication on and no users yet, creates the first admin and writes its token to a
/// file only the server's user can read (never to the log).
async fn bootstrap_on_first_start(app: &App, config: &cairn::Config) -> anyhow::Result<()> {
    let context = cairn_domain::audit::RequestContext::system();
    let Some((user, token)) = app.services.identity.bootstrap(&context, "admin").await? else {
        return Ok(());
    };
    std::fs::create_dir_all(&config.data_dir)?;
    let path = config.data_dir.join("bootstrap-admin-token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes())?;
    tracing::warn!(
        user = %user.username,
        token_file = %path.display(),
        "created the first admin; its token is in the token file (readable by this user only): use it, then delete the file"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let started = Instant::now();
            let mut config = args.backend.config();
            config.auth_required = args.auth == "enabled";
            config.python = args.python.clone();
            config.monitoring = args.monitoring.config();
            config.compute = args.compute.settings();
            let app = App::build(&config).await?;
            if config.auth_required {
                bootstrap_on_first_start(&app, &config).await?;
            }
            let address = format!("{}:{}", args.host, args.port);
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .with_context(|| format!("binding {address}"))?;
            let bound = listener.local_addr()?;
            if !config.auth_required {
                tracing::warn!(
                    "authentication is DISABLED (--auth disabled): anyone who can reach http://{bound} can read and write; use --auth enabled on any shared machine"
                );
            }
            tracing::info!(
                address = %bound,
                startup_ms = started.elapsed().as_millis() as u64,
                "cairn is listening; set MLFLOW_TRACKING_URI=http://{bound}"
            );
            app.serve(listener, shutdown_signal()).await
        }
        Command::Migrate(args) => {
            let store = cairn::connect_store(&args.config()).await?;
            store.close().await;
            tracing::info!("migrations are up to date");
            Ok(())
        }
        Command::Login(args) => cairn::client::login(&args).await,
        Command::Token(command) => cairn::client::token(&command).await,
        Command::Project(command) => cairn::client::project(&command).await,
        Command::Model(command) => cairn::governance_cli::model(&command).await,
        Command::Approvals(command) => cairn::governance_cli::approvals(&command).await,
        Command::Policy(command) => cairn::governance_cli::policy(&command).await,
        Command::Deploy(command) => cairn::deploy_cli::deploy(&command).await,
        Command::Drift(args) => cairn::drift_cli::drift(&args).await,
        Command::Monitor(command) => cairn::monitor_cli::monitor(&command).await,
        Command::Push(args) => cairn::compute_cli::push(&args).await,
        Command::Pull(args) => cairn::compute_cli::pull(&args).await,
        Command::Snapshot(command) => cairn::compute_cli::snapshot(&command).await,
        Command::Dataset(command) => cairn::compute_cli::dataset(&command).await,
        Command::Env(command) => cairn::compute_cli::env(&command).await,
        Command::Tier(command) => cairn::compute_cli::tier(&command).await,
        Command::Quota(command) => cairn::compute_cli::quota(&command).await,
        Command::Job(command) => cairn::compute_cli::job(&command).await,
        Command::Run(command) => cairn::compute_cli::run(&command).await,
        Command::Schedule(command) => cairn::compute_cli::schedule(&command).await,
        Command::Secret(command) => cairn::compute_cli::secret(&command).await,
        Command::Workspace(command) => cairn::workspace_cli::workspace(&command).await,
        Command::Comment(command) => cairn::comment_cli::comment(&command).await,
        Command::Search(args) => cairn::comment_cli::search(&args).await,
        Command::Admin(AdminCommand::Secrets(SecretsAdminCommand::GenerateKey)) => {
            println!("{}", cairn_service::compute::SecretKey::generate_base64());
            Ok(())
        }
        Command::Admin(AdminCommand::Secrets(SecretsAdminCommand::Rotate(args))) => {
            let config = args.backend.config();
            let settings = cairn::ComputeSettings {
                secrets_key_file: args.key.secrets_key_file.clone(),
                secrets_key: args.key.secrets_key.clone(),
                ..cairn::ComputeSettings::default()
            };
            let old = cairn::load_secrets_key(&config.data_dir, &settings)?;
            let text = std::fs::read_to_string(&args.new_key_file)
                .with_context(|| format!("reading {}", args.new_key_file.display()))?;
            let new = cairn_service::compute::SecretKey::from_base64(&text)
                .map_err(|error| anyhow::anyhow!(error.message))?;
            let store = cairn::connect_store(&config).await?;
            let context = cairn_domain::audit::RequestContext::system();
            let count = cairn_service::compute::rotate_secrets(&store, &context, &old, &new)
                .await
                .map_err(|error| anyhow::anyhow!(error.message))?;
            store.close().await;
            println!(
                "re-sealed {count} secrets with key {}; restart the servers with the new key",
                new.id()
            );
            Ok(())
        }
        Command::Admin(AdminCommand::Bootstrap(args)) => {
            cairn::identity_cli::bootstrap(&args).await
        }
        Command::Admin(AdminCommand::User(command)) => cairn::identity_cli::user(&command).await,
        Command::Admin(AdminCommand::Token(command)) => cairn::identity_cli::token(&command).await,
        Command::Admin(AdminCommand::Project(command)) => {
            cairn::identity_cli::project(&command).await
        }
        Command::Admin(AdminCommand::Team(command)) => cairn::identity_cli::team(&command).await,
        Command::Admin(AdminCommand::Backup(args)) => cairn::backup::run_backup(&args).await,
        Command::Admin(AdminCommand::Restore(args)) => cairn::backup::run_restore(&args).await,
        Command::Admin(AdminCommand::Audit(AuditCommand::Verify(args))) => {
            let store = cairn::connect_store(&args.config()).await?;
            let intact = cairn::admin::verify(&store).await?;
            store.close().await;
            if !intact {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Admin(AdminCommand::Audit(AuditCommand::Export(args))) => {
            let since = args
                .since
                .as_deref()
                .map(cairn::admin::parse_since)
                .transpose()?
                .unwrap_or(i64::MIN);
            let store = cairn::connect_store(&args.backend.config()).await?;
            let mut out: Box<dyn std::io::Write> = match &args.output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let written = cairn::admin::export(&store, since, &args.format, &mut out).await?;
            store.close().await;
            tracing::info!(records = written, "audit records exported");
            Ok(())
        }
    }
}
