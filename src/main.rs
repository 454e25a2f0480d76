//! The `apexkit` binary: parse the command line, start logging, hand over to [`apexkit::App`].

use std::process::ExitCode;

use apexkit::config::{Cli, Command, Config, KeysCommand, MigrateCommand};
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
    if let Some(Command::Migrate { action }) = &cli.command {
        return migrate_command(action, &cli.config).await;
    }
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

async fn migrate_command(action: &MigrateCommand, config: &Config) -> ExitCode {
    let result = match action {
        MigrateCommand::Status => apexkit::tooling::status(config, &mut std::io::stdout()).await,
        MigrateCommand::New { name } => {
            apexkit::tooling::new_migration(&config.migrations_dir, name).map(|folders| {
                for folder in folders {
                    println!("created {}", folder.display());
                }
                true
            })
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("apexkit: {e:#}");
            ExitCode::from(2)
        }
    }
}
