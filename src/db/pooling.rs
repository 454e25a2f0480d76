//! Detects, at boot, a PostgreSQL URL that goes through a transaction-pooling proxy (PgBouncer
//! `pool_mode = transaction`), so that a deployment missing `APEXKIT_DB_PREPARED_STATEMENTS=false`
//! or `APEXKIT_MIGRATION_DATABASE_URL` fails at once with what to set, instead of with
//! "prepared statement … does not exist" mid-traffic.
//!
//! The proxy cannot be asked (`SHOW POOLS` is on its admin console, not through the pooled
//! database), so the probe watches what transaction pooling does: a client's session does not
//! stay on one server connection. Two client connections, A and B, over the simple query
//! protocol (nothing prepared): A sets a session-level custom setting; B opens a transaction and
//! reads it; A reads it again while B's transaction is open. On a direct connection (or behind
//! session pooling) B never sees A's setting and A always does. Behind transaction pooling A's
//! setting stayed on the server connection A used: the proxy hands its most recently released
//! server to the next client (PgBouncer's default, `server_round_robin = 0`), so B sees the
//! setting, and A, its server taken, reads from another one and does not. Either is proof; the
//! round is repeated a few times.

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Rounds of the probe (one is usually enough; the others cover a proxy that happened to hand
/// B another server).
const ROUNDS: usize = 3;
const SETTING: &str = "apexkit.pooling_probe";

/// Whether `url` is served by a transaction- (or statement-) pooling proxy.
pub async fn transaction_pooled(url: &str) -> anyhow::Result<bool> {
    let a = connect(url).await?;
    let b = connect(url).await?;
    let mut pooled = false;
    for round in 0..ROUNDS {
        let marker = format!("on-{round}");
        a.batch_execute(&format!("SET {SETTING} = '{marker}'"))
            .await?;
        let seen_by_b = read(
            &b,
            &format!("BEGIN; SELECT current_setting('{SETTING}', true)"),
        )
        .await;
        let seen_by_a = read(&a, &format!("SELECT current_setting('{SETTING}', true)")).await;
        b.batch_execute("ROLLBACK").await?;
        if seen_by_b?.as_deref() == Some(marker.as_str())
            || seen_by_a?.as_deref() != Some(marker.as_str())
        {
            pooled = true;
            break;
        }
    }
    // The setting may sit on a server connection another client gets next: leave it empty.
    let _ = a.batch_execute(&format!("RESET {SETTING}")).await;
    Ok(pooled)
}

/// `SHOW statement_timeout` as a client of `url` sees it (`"0"`: none).
pub async fn statement_timeout(url: &str) -> anyhow::Result<String> {
    let client = connect(url).await?;
    Ok(read(&client, "SHOW statement_timeout")
        .await?
        .unwrap_or_default())
}

async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "pooling probe connection ended");
        }
    });
    Ok(client)
}

/// The first column of the last row `sql` returns (simple query protocol).
async fn read(client: &Client, sql: &str) -> anyhow::Result<Option<String>> {
    let mut value = None;
    for message in client.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(row) = message {
            value = row.get(0).map(str::to_owned);
        }
    }
    Ok(value)
}
