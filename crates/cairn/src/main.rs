//! `cairn`: parses the command line, sets up logging and runs the chosen command.

use std::time::Instant;

use anyhow::Context;
use cairn::App;
use cairn::cli::{AdminCommand, AuditCommand, Cli, Command};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    match cli.command {
        Command::Serve(args) => {
            let started = Instant::now();
            let app = App::build(&args.backend.config()).await?;
            let address = format!("{}:{}", args.host, args.port);
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .with_context(|| format!("binding {address}"))?;
            let bound = listener.local_addr()?;
            tracing::warn!(
                "authentication is not enforced yet: anyone who can reach http://{bound} can read and write"
            );
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
