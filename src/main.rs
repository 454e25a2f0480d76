//! The `apexkit` binary: parse the command line, start logging, hand over to [`apexkit::App`].

use std::process::ExitCode;

use apexkit::config::{Cli, Command, Config, KeysCommand};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.is_production() {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::PrintSchema) = cli.command {
        print!("{}", apexkit::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    init_logging(&cli.config);
    let result = if let Some(Command::Keys {
        command: KeysCommand::Rotate,
    }) = cli.command
    {
        apexkit::app::rotate_keys(&cli.config).await.map(|key| {
            tracing::info!(kid = %key.kid, "signing key rotated");
            println!("{}", key.kid);
        })
    } else if cli.migrate_only {
        apexkit::app::migrate(&cli.config).await.map(|applied| {
            tracing::info!(applied = applied.len(), "migrations complete");
        })
    } else {
        match apexkit::App::build(cli.config).await {
            Ok(app) => app.run().await.map_err(anyhow::Error::from),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("apexkit: {e:#}");
            ExitCode::FAILURE
        }
    }
}
