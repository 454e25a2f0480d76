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

/// argon2 block buffers are megabytes each. glibc's dynamic mmap threshold grows to that size
/// after the first free, after which such blocks come from per-thread heaps that are never given
/// back (measured with per-hash buffers under 64 concurrent sign-ups: peak RSS 380 MiB). A fixed
/// 1 MiB threshold keeps every such block mmapped, so the buffers the hash threads release when
/// idle go back to the OS. glibc also keeps up to 8 arenas per core, each holding on to its own
/// high-water mark; one arena per core cut RSS after a 64-connection `session` run by 3 MiB
/// with no measurable throughput change.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_allocations_to_the_os() {
    let arenas = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets allocator tunables; it takes glibc's own locks and touches
    // no Rust-managed memory.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_allocations_to_the_os() {}

/// How long the runtime waits, once serving has ended, for work on its blocking threads (a
/// SQLite statement waiting on a lock, say) before the process exits without it.
const BLOCKING_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("apexkit: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run());
    // Dropping a runtime waits for its blocking threads without limit; the shutdown deadline
    // must hold whatever they are doing.
    runtime.shutdown_timeout(BLOCKING_GRACE);
    code
}

async fn run() -> ExitCode {
    return_large_allocations_to_the_os();
    let mut cli = Cli::parse();
    // APEXKIT_OAUTH_<ID>_*: names clap cannot know in advance.
    cli.config.social.read_env(std::env::vars());
    match &cli.command {
        Some(Command::PrintSchema) => {
            print!("{}", apexkit::graphql::sdl());
            return ExitCode::SUCCESS;
        }
        Some(Command::PrintConfigReference) => {
            print!("{}", apexkit::config::reference::markdown());
            return ExitCode::SUCCESS;
        }
        Some(Command::BenchHash {
            iterations,
            threads,
        }) => {
            return bench_hash(cli.config.passwords.cost(), *iterations, *threads);
        }
        _ => {}
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
            apexkit::tooling::new_migration(&config.database.migrations_dir, name).map(|folders| {
                for folder in folders {
                    println!("created {}", folder.display());
                }
                true
            })
        }
        MigrateCommand::Adopt { dry_run } => {
            apexkit::tooling::adopt(config, *dry_run, &mut std::io::stdout()).await
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

/// `apexkit bench-hash`: the median argon2 hash time and the sign-in ceiling it implies
/// (cores ÷ hash time), as `key=value` lines for `bench/run.sh`.
fn bench_hash(cost: apexkit::auth::password::Cost, iterations: u32, threads: usize) -> ExitCode {
    if threads > 0 {
        match apexkit::auth::password::parallel_hash_rate(cost, iterations, threads) {
            Ok(rate) => println!("parallel_threads={threads}\nparallel_per_s={rate:.1}"),
            Err(e) => {
                eprintln!("apexkit: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    match apexkit::auth::password::time_hashes(cost, iterations) {
        Ok(mut times) => {
            times.sort();
            let median = times[times.len() / 2].as_secs_f64();
            let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
            println!("memory_kib={}", cost.memory_kib);
            println!("iterations={}", cost.iterations);
            println!("hash_ms={:.2}", median * 1000.0);
            println!("cores={cores}");
            println!("sign_in_ceiling_per_s={:.1}", cores as f64 / median);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("apexkit: {e:#}");
            ExitCode::FAILURE
        }
    }
}
