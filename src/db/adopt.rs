//! Adopting a database that Better Auth created (`APEXKIT_ADOPT=better-auth`): recognise its
//! tables in either naming (Better Auth's own camelCase schema, or the Apexkit app's Drizzle
//! schema in snake_case), then bring them to the layout of Apexkit's first two migrations,
//! additively and one transaction per step, keeping every row and id; finally record those two
//! migrations as applied (the baseline), so the ordinary migrations run from there.
//!
//! Steps are recorded in `apexkit_adoption` as they commit, so a process killed mid-way resumes
//! at the next step. Each step's SQL is planned from a model of the tables read from the
//! database (and advanced by the steps before it), so a dry run prints all of it and a step that
//! already ran plans nothing. PostgreSQL changes the tables in place under the migration's
//! advisory lock; SQLite, which cannot change a column's constraints, rebuilds each table into
//! Apexkit's layout (foreign keys off while it does, checked before each commit), each step in
//! a `BEGIN IMMEDIATE` transaction that first checks the step is still to do.
//!
//! Session tokens: Better Auth stores them in plain text (`session.token`); Apexkit stores only
//! `token_hash`, base64url(SHA-256(token)) as `auth::token::SessionToken::hash` computes it. The
//! hashes are filled in one step, and the plaintext column is dropped in a later one only after
//! every row's hash has been recomputed and compared.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sha2::{Digest as _, Sha256};

use super::{DatabaseUrl, SqliteConn, connect_postgres, connect_sqlite};

/// The PostgreSQL advisory lock migrations hold (see `migrations.rs`).
const ADVISORY_LOCK_KEY: i64 = 0x61_70_65_78_6b_69_74;
const SQLITE_BUSY_MS: u128 = 30_000;
/// The Apexkit migrations whose result an adopted database has once adopted.
pub const BASELINE_VERSIONS: [&str; 2] = ["20261125000001", "20261125000002"];
/// The setting that allows adoption, as operators write it.
pub const SETTING: &str = "APEXKIT_ADOPT=better-auth";
/// Test hook: after the named step commits, the process stops there (logs and sleeps) until it
/// is killed, so the tests can kill it between two steps.
const PAUSE_HOOK: &str = "APEXKIT_TEST_ADOPT_PAUSE_AFTER";

/// Better Auth's core tables.
const CORE: [&str; 4] = ["user", "session", "account", "verification"];

/// Better Auth plugin tables whose names Apexkit's own migrations use (its `twoFactor` and
/// `passkey` plugins, in the snake_case naming or its only one): kept, with every row, under a
/// name of their own so Apexkit's tables can be created beside them.
const SET_ASIDE: [(&str, &str); 2] = [
    ("two_factor", "better_auth_two_factor"),
    ("passkey", "better_auth_passkey"),
];

/// The name a table has after adoption (its own, or the one it was set aside under).
pub fn adopted_name(table: &str) -> &str {
    SET_ASIDE
        .iter()
        .find(|(from, _)| *from == table)
        .map_or(table, |(_, to)| to)
}

/// What a database holds, as far as adoption is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No table at all: Apexkit's migrations create everything.
    Empty,
    /// Apexkit's own (migrations recorded): nothing to adopt.
    Apexkit,
    /// Better Auth's tables; `resuming` when an adoption already began.
    BetterAuth { naming: Naming, resuming: bool },
    /// Tables that are neither: never touched.
    Unrelated(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// Better Auth's default schema (`emailVerified`, `userId`, …).
    CamelCase,
    /// The Apexkit app's Drizzle schema (`email_verified`, `user_id`, …).
    SnakeCase,
}

impl Naming {
    fn as_str(self) -> &'static str {
        match self {
            Self::CamelCase => "camelCase",
            Self::SnakeCase => "snake_case",
        }
    }
}

/// What [`adopt`] found and did (or, in a dry run, would do).
#[derive(Debug)]
pub struct Outcome {
    pub found: Found,
    /// Every step with its SQL (comments for work done row by row), in order; empty when there
    /// is nothing to adopt.
    pub plan: Vec<(String, Vec<String>)>,
    /// The steps this call ran (none in a dry run, or when every step was done before).
    pub applied: Vec<String>,
}

/// Recognises the database at `url` and, when it holds Better Auth's tables and `allowed`,
/// adopts it (or, with `dry_run`, only plans). Refuses Better Auth's tables without `allowed`
/// (naming the setting) and any other non-empty database that is not Apexkit's, changing
/// nothing. Under the migration lock on PostgreSQL.
pub async fn adopt(url: &DatabaseUrl, allowed: bool, dry_run: bool) -> anyhow::Result<Outcome> {
    let mut db = Db::open(url).await?;
    db.lock().await?;
    let result = run(&mut db, allowed, dry_run).await;
    db.unlock().await;
    result
}

async fn run(db: &mut Db, allowed: bool, dry_run: bool) -> anyhow::Result<Outcome> {
    let found = detect(db).await?;
    let naming = match &found {
        Found::Empty | Found::Apexkit => {
            return Ok(Outcome {
                found,
                plan: Vec::new(),
                applied: Vec::new(),
            });
        }
        Found::Unrelated(tables) => bail!(
            "the database is not empty and holds neither Apexkit's nor Better Auth's tables \
             (found: {}); refusing to touch it. Point DATABASE_URL at an empty database, or at \
             a Better Auth database with {SETTING}",
            tables.join(", ")
        ),
        Found::BetterAuth { resuming, .. } if !allowed => {
            if *resuming {
                bail!(
                    "an adoption of this Better Auth database began and did not finish; set \
                     {SETTING} to finish it"
                );
            }
            bail!(
                "the database holds Better Auth's tables (user, session, account, \
                 verification); Apexkit adopts them only when told to: set {SETTING} (see the \
                 guide \"Migrating from Better Auth\"). Nothing was changed"
            );
        }
        Found::BetterAuth { naming, .. } => *naming,
    };
    let mut model = db.model().await?;
    let done = db.done_steps().await?;
    let backend = db.backend();
    let mut plan = Vec::new();
    let mut applied = Vec::new();
    let pause_after = std::env::var(PAUSE_HOOK).ok();
    for step in STEPS {
        let sql = (step.plan)(&mut model, backend, naming);
        plan.push((step.name.to_owned(), sql.iter().map(Work::text).collect()));
        if dry_run || done.contains(&step.name.to_owned()) {
            continue;
        }
        if db.run_step(step.name, &sql).await? {
            tracing::info!(step = step.name, "Better Auth adoption: step done");
            applied.push(step.name.to_owned());
        }
        if pause_after.as_deref() == Some(step.name) {
            tracing::warn!(
                step = step.name,
                "Better Auth adoption paused after this step ({PAUSE_HOOK}, a test hook)"
            );
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
        }
    }
    Ok(Outcome {
        found,
        plan,
        applied,
    })
}

/// What the database holds (see [`Found`]).
async fn detect(db: &mut Db) -> anyhow::Result<Found> {
    let tables = db.tables().await?;
    let has = |t: &str| tables.iter().any(|x| x == t);
    if has("__diesel_schema_migrations") {
        return Ok(Found::Apexkit);
    }
    if tables.is_empty() {
        return Ok(Found::Empty);
    }
    let resuming = has("apexkit_adoption");
    if resuming || (has("user") && has("session") && has("account")) {
        let user = db.columns("user").await?;
        let naming = if resuming {
            db.baseline_naming().await?.unwrap_or(Naming::SnakeCase)
        } else if user.iter().any(|c| c.name == "emailVerified") {
            Naming::CamelCase
        } else if user.iter().any(|c| c.name == "email_verified") {
            Naming::SnakeCase
        } else {
            return Ok(Found::Unrelated(tables));
        };
        return Ok(Found::BetterAuth { naming, resuming });
    }
    Ok(Found::Unrelated(tables))
}

// ---------------------------------------------------------------------------------------------
// The target: Apexkit's tables after its migrations 000001 and 000002.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Text,
    Bool,
    Timestamp,
}

struct Target {
    name: &'static str,
    ty: Ty,
    not_null: bool,
    /// SQL default, the same on both backends (`now()` is written per backend).
    default: Option<&'static str>,
}

const fn col(name: &'static str, ty: Ty, not_null: bool, default: Option<&'static str>) -> Target {
    Target {
        name,
        ty,
        not_null,
        default,
    }
}

const NOW: Option<&str> = Some("now()");

fn target(table: &str) -> &'static [Target] {
    use Ty::*;
    const USER: &[Target] = &[
        col("id", Text, true, None),
        col("name", Text, true, None),
        col("email", Text, true, None),
        col("email_verified", Bool, false, Some("false")),
        col("image", Text, false, None),
        col("created_at", Timestamp, true, NOW),
        col("updated_at", Timestamp, true, NOW),
        col("role", Text, true, Some("'user'")),
        col("banned", Bool, true, Some("false")),
        col("ban_reason", Text, false, None),
        col("ban_expires", Timestamp, false, None),
    ];
    const SESSION: &[Target] = &[
        col("id", Text, true, None),
        col("expires_at", Timestamp, true, None),
        col("token_hash", Text, true, None),
        col("created_at", Timestamp, true, NOW),
        col("updated_at", Timestamp, true, NOW),
        col("ip_address", Text, false, None),
        col("user_agent", Text, false, None),
        col("user_id", Text, true, None),
    ];
    const ACCOUNT: &[Target] = &[
        col("id", Text, true, None),
        col("account_id", Text, true, None),
        col("provider_id", Text, true, None),
        col("user_id", Text, true, None),
        col("access_token", Text, false, None),
        col("refresh_token", Text, false, None),
        col("id_token", Text, false, None),
        col("access_token_expires_at", Timestamp, false, None),
        col("refresh_token_expires_at", Timestamp, false, None),
        col("scope", Text, false, None),
        col("password", Text, false, None),
        col("created_at", Timestamp, true, NOW),
        col("updated_at", Timestamp, true, NOW),
    ];
    const VERIFICATION: &[Target] = &[
        col("id", Text, true, None),
        col("identifier", Text, true, None),
        col("value", Text, true, None),
        col("expires_at", Timestamp, true, None),
        col("created_at", Timestamp, true, NOW),
        col("updated_at", Timestamp, true, NOW),
    ];
    match table {
        "user" => USER,
        "session" => SESSION,
        "account" => ACCOUNT,
        _ => VERIFICATION,
    }
}

/// Table constraints and indexes of the target (names as Apexkit's migrations give them).
fn constraints(table: &str) -> &'static [&'static str] {
    match table {
        "user" => &["UNIQUE (email)"],
        "session" => &[
            "UNIQUE (token_hash)",
            "FOREIGN KEY (user_id) REFERENCES \"user\" (id) ON DELETE CASCADE",
        ],
        "account" => &[
            "FOREIGN KEY (user_id) REFERENCES \"user\" (id) ON DELETE CASCADE",
            "UNIQUE (provider_id, account_id)",
        ],
        _ => &[],
    }
}

fn indexes(table: &str) -> &'static [&'static str] {
    match table {
        "session" => &["CREATE INDEX IF NOT EXISTS session_user_id_idx ON session (user_id)"],
        "account" => &[
            "CREATE INDEX IF NOT EXISTS account_user_id_idx ON account (user_id)",
            "CREATE UNIQUE INDEX IF NOT EXISTS account_provider_id_account_id_key \
             ON account (provider_id, account_id)",
        ],
        "verification" => {
            &["CREATE INDEX IF NOT EXISTS verification_identifier_idx ON verification (identifier)"]
        }
        _ => &[],
    }
}

/// `emailVerified` → `email_verified`.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

// ---------------------------------------------------------------------------------------------
// The model of the tables, and the steps that plan SQL on it.

#[derive(Debug, Clone)]
struct Column {
    name: String,
    /// As the database reports it (information_schema `data_type`, SQLite's declared type).
    ty: String,
    not_null: bool,
    has_default: bool,
}

type Model = BTreeMap<String, Vec<Column>>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Postgres,
    Sqlite,
}

/// Work of a step: SQL, or the row-by-row token work done in Rust.
#[derive(Debug, Clone)]
enum Work {
    Sql(String),
    /// Fill `session.token_hash` from `session.token` where it is missing.
    FillTokenHashes,
    /// Recompute every row's hash from its token and compare; refuse if any differs.
    VerifyTokenHashes,
    /// Compare each table's row count with the baseline's.
    VerifyCounts,
}

impl Work {
    fn text(&self) -> String {
        match self {
            Self::Sql(sql) => format!("{sql};"),
            Self::FillTokenHashes => "-- for each session row without one (computed by apexkit): \
                 UPDATE session SET token_hash = base64url(sha256(token)) WHERE id = …;"
                .to_owned(),
            Self::VerifyTokenHashes => "-- check: every session row has token_hash = \
                 base64url(sha256(token)), or the step fails and changes nothing"
                .to_owned(),
            Self::VerifyCounts => {
                "-- check: every table holds as many rows as at the baseline".to_owned()
            }
        }
    }
}

struct Step {
    name: &'static str,
    plan: fn(&mut Model, Backend, Naming) -> Vec<Work>,
}

const STEPS: &[Step] = &[
    Step {
        name: "record_baseline",
        plan: plan_baseline,
    },
    Step {
        name: "rename_columns",
        plan: plan_renames,
    },
    Step {
        name: "set_aside_plugin_tables",
        plan: plan_set_aside,
    },
    Step {
        name: "align_tables",
        plan: plan_align,
    },
    Step {
        name: "add_token_hash",
        plan: plan_add_token_hash,
    },
    Step {
        name: "fill_token_hash",
        plan: |_, _, _| vec![Work::FillTokenHashes],
    },
    Step {
        name: "drop_plaintext_token",
        plan: plan_drop_token,
    },
    Step {
        name: "record_migrations",
        plan: plan_versions,
    },
];

fn plan_baseline(model: &mut Model, _: Backend, naming: Naming) -> Vec<Work> {
    let mut work = Vec::new();
    if !model.contains_key("apexkit_adoption") {
        work.push(Work::Sql(
            "CREATE TABLE apexkit_adoption (step text PRIMARY KEY, detail text, \
             done_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)"
                .to_owned(),
        ));
        model.insert("apexkit_adoption".to_owned(), Vec::new());
    }
    // The baseline row itself (naming and row counts) is written with the step's record.
    work.push(Work::Sql(format!(
        "-- baseline: naming {}, the row count of every table",
        naming.as_str()
    )));
    work
}

fn plan_renames(model: &mut Model, _: Backend, _: Naming) -> Vec<Work> {
    let mut work = Vec::new();
    for table in CORE {
        let targets = target(table);
        let Some(cols) = model.get_mut(table) else {
            continue;
        };
        for c in cols.iter_mut() {
            let to = snake(&c.name);
            if to != c.name && (targets.iter().any(|t| t.name == to) || to == "token") {
                work.push(Work::Sql(format!(
                    "ALTER TABLE {} RENAME COLUMN {} TO {}",
                    quote(table),
                    quote(&c.name),
                    to
                )));
                c.name = to;
            }
        }
    }
    work
}

fn plan_set_aside(model: &mut Model, _: Backend, _: Naming) -> Vec<Work> {
    let mut work = Vec::new();
    for (from, to) in SET_ASIDE {
        if model.contains_key(to) {
            continue;
        }
        if let Some(cols) = model.remove(from) {
            work.push(Work::Sql(format!(
                "ALTER TABLE {} RENAME TO {to}",
                quote(from)
            )));
            model.insert(to.to_owned(), cols);
        }
    }
    work
}

fn pg_type(ty: Ty) -> &'static str {
    match ty {
        Ty::Text => "text",
        Ty::Bool => "boolean",
        Ty::Timestamp => "timestamp",
    }
}

fn pg_type_matches(ty: Ty, found: &str) -> bool {
    match ty {
        Ty::Text => found == "text",
        Ty::Bool => found == "boolean",
        Ty::Timestamp => found == "timestamp without time zone",
    }
}

fn default_sql(default: &str, backend: Backend) -> &str {
    match (default, backend) {
        ("now()", Backend::Sqlite) => "CURRENT_TIMESTAMP",
        (d, _) => d,
    }
}

/// SQLite: a stored date (ISO 8601 text with `T`/`Z`, or milliseconds since the epoch, as
/// Better Auth writes them) as Apexkit's `YYYY-MM-DD HH:MM:SS.SSS` in UTC.
fn sqlite_timestamp(expr: &str) -> String {
    format!(
        "CASE WHEN {expr} IS NULL THEN NULL \
         WHEN typeof({expr}) IN ('integer', 'real') \
         THEN strftime('%Y-%m-%d %H:%M:%f', {expr} / 1000.0, 'unixepoch') \
         ELSE strftime('%Y-%m-%d %H:%M:%f', {expr}) END"
    )
}

/// PostgreSQL: columns altered in place to Apexkit's types, defaults and nullability (NULLs
/// filled with the default first); columns Apexkit does not know stay, made nullable when they
/// would refuse its inserts. SQLite: `user`, `account` and `verification` rebuilt in Apexkit's
/// layout (`session` is rebuilt when its plaintext token goes).
fn plan_align(model: &mut Model, backend: Backend, _: Naming) -> Vec<Work> {
    let mut work = Vec::new();
    // Emails as Apexkit stores them (Better Auth lower-cases them too; a collision fails the
    // step on the unique index and changes nothing).
    let email_fix =
        "UPDATE \"user\" SET email = lower(trim(email)) WHERE email <> lower(trim(email))";
    match backend {
        Backend::Postgres => {
            for table in ["user", "account", "verification", "session"] {
                let Some(cols) = model.get_mut(table) else {
                    continue;
                };
                let t = quote(table);
                for target in target(table) {
                    if table == "session" && target.name == "token_hash" {
                        continue;
                    }
                    let Some(c) = cols.iter_mut().find(|c| c.name == target.name) else {
                        let mut sql = format!(
                            "ALTER TABLE {t} ADD COLUMN {} {}",
                            target.name,
                            pg_type(target.ty)
                        );
                        if let Some(d) = target.default {
                            sql.push_str(&format!(" DEFAULT {d}"));
                        }
                        if target.not_null {
                            sql.push_str(" NOT NULL");
                        }
                        work.push(Work::Sql(sql));
                        cols.push(Column {
                            name: target.name.to_owned(),
                            ty: pg_type(target.ty).to_owned(),
                            not_null: target.not_null,
                            has_default: target.default.is_some(),
                        });
                        continue;
                    };
                    let name = target.name;
                    if !pg_type_matches(target.ty, &c.ty) {
                        let using = match (target.ty, c.ty.as_str()) {
                            (Ty::Timestamp, "timestamp with time zone") => {
                                format!(" USING {name} AT TIME ZONE 'UTC'")
                            }
                            (ty, _) => format!(" USING {name}::{}", pg_type(ty)),
                        };
                        work.push(Work::Sql(format!(
                            "ALTER TABLE {t} ALTER COLUMN {name} TYPE {}{using}",
                            pg_type(target.ty)
                        )));
                        c.ty = if target.ty == Ty::Timestamp {
                            "timestamp without time zone".to_owned()
                        } else {
                            pg_type(target.ty).to_owned()
                        };
                    }
                    if let Some(d) = target.default
                        && !c.has_default
                    {
                        work.push(Work::Sql(format!(
                            "ALTER TABLE {t} ALTER COLUMN {name} SET DEFAULT {d}"
                        )));
                        c.has_default = true;
                    }
                    if target.not_null && !c.not_null {
                        if let Some(d) = target.default {
                            work.push(Work::Sql(format!(
                                "UPDATE {t} SET {name} = {d} WHERE {name} IS NULL"
                            )));
                        }
                        work.push(Work::Sql(format!(
                            "ALTER TABLE {t} ALTER COLUMN {name} SET NOT NULL"
                        )));
                        c.not_null = true;
                    } else if !target.not_null && c.not_null {
                        work.push(Work::Sql(format!(
                            "ALTER TABLE {t} ALTER COLUMN {name} DROP NOT NULL"
                        )));
                        c.not_null = false;
                    }
                }
                // Columns of plugins or custom fields: kept, but never in the way of an insert.
                for c in cols.iter_mut() {
                    let known = target(table).iter().any(|t| t.name == c.name)
                        || (table == "session" && c.name == "token");
                    if !known && c.not_null && !c.has_default {
                        work.push(Work::Sql(format!(
                            "ALTER TABLE {t} ALTER COLUMN {} DROP NOT NULL",
                            quote(&c.name)
                        )));
                        c.not_null = false;
                    }
                }
                for index in indexes(table) {
                    work.push(Work::Sql((*index).to_owned()));
                }
            }
            work.push(Work::Sql(email_fix.to_owned()));
        }
        Backend::Sqlite => {
            work.push(Work::Sql(email_fix.to_owned()));
            for table in ["user", "account", "verification"] {
                if let Some(rebuild) = sqlite_rebuild(model, table, None) {
                    work.extend(rebuild);
                }
            }
        }
    }
    work
}

/// SQLite: `table` rebuilt in Apexkit's layout, its rows copied (dates normalised, NULLs of
/// columns with a default filled), columns Apexkit does not know kept as they were (without
/// constraints), `skip` left behind. `None` when it is in that layout already.
fn sqlite_rebuild(model: &mut Model, table: &str, skip: Option<&str>) -> Option<Vec<Work>> {
    let cols = model.get(table)?;
    let targets = target(table);
    let aligned = targets.iter().all(|t| {
        cols.iter()
            .any(|c| c.name == t.name && c.not_null == t.not_null && sqlite_type_ok(t, c))
    }) && skip.is_none_or(|s| !cols.iter().any(|c| c.name == s));
    if aligned {
        return None;
    }
    let extras: Vec<Column> = cols
        .iter()
        .filter(|c| !targets.iter().any(|t| t.name == c.name) && Some(c.name.as_str()) != skip)
        .cloned()
        .collect();
    let new = format!("{table}__apexkit_new");
    let mut defs: Vec<String> = targets
        .iter()
        .map(|t| {
            let mut d = format!("{} {}", t.name, sqlite_decl(t.ty));
            if t.name == "id" {
                d.push_str(" PRIMARY KEY");
            }
            if let Some(def) = t.default {
                d.push_str(&format!(" DEFAULT {}", default_sql(def, Backend::Sqlite)));
            }
            if t.not_null {
                d.push_str(" NOT NULL");
            }
            d
        })
        .collect();
    defs.extend(
        extras
            .iter()
            .map(|c| format!("{} {}", quote(&c.name), c.ty)),
    );
    defs.extend(constraints(table).iter().map(|c| (*c).to_owned()));
    let mut into: Vec<String> = targets.iter().map(|t| t.name.to_owned()).collect();
    let mut select: Vec<String> = targets
        .iter()
        .map(|t| {
            let source = if cols.iter().any(|c| c.name == t.name) {
                quote(t.name)
            } else {
                "NULL".to_owned()
            };
            let value = if t.ty == Ty::Timestamp {
                sqlite_timestamp(&source)
            } else {
                source
            };
            match t.default {
                Some(d) if t.not_null => {
                    format!("COALESCE({value}, {})", default_sql(d, Backend::Sqlite))
                }
                _ => value,
            }
        })
        .collect();
    into.extend(extras.iter().map(|c| quote(&c.name)));
    select.extend(extras.iter().map(|c| quote(&c.name)));
    let mut work = vec![
        Work::Sql(format!(
            "CREATE TABLE {} ({})",
            quote(&new),
            defs.join(", ")
        )),
        Work::Sql(format!(
            "INSERT INTO {} ({}) SELECT {} FROM {}",
            quote(&new),
            into.join(", "),
            select.join(", "),
            quote(table)
        )),
        Work::Sql(format!("DROP TABLE {}", quote(table))),
        Work::Sql(format!(
            "ALTER TABLE {} RENAME TO {}",
            quote(&new),
            quote(table)
        )),
    ];
    work.extend(indexes(table).iter().map(|i| Work::Sql((*i).to_owned())));
    let mut rebuilt: Vec<Column> = targets
        .iter()
        .map(|t| Column {
            name: t.name.to_owned(),
            ty: sqlite_decl(t.ty).to_owned(),
            not_null: t.not_null,
            has_default: t.default.is_some(),
        })
        .collect();
    rebuilt.extend(extras.into_iter().map(|c| Column {
        not_null: false,
        ..c
    }));
    model.insert(table.to_owned(), rebuilt);
    Some(work)
}

fn sqlite_decl(ty: Ty) -> &'static str {
    match ty {
        Ty::Text => "text",
        Ty::Bool => "boolean",
        Ty::Timestamp => "timestamp",
    }
}

fn sqlite_type_ok(t: &Target, c: &Column) -> bool {
    c.ty.eq_ignore_ascii_case(sqlite_decl(t.ty))
}

fn plan_add_token_hash(model: &mut Model, _: Backend, _: Naming) -> Vec<Work> {
    let Some(cols) = model.get_mut("session") else {
        return Vec::new();
    };
    if cols.iter().any(|c| c.name == "token_hash") {
        return Vec::new();
    }
    cols.push(Column {
        name: "token_hash".to_owned(),
        ty: "text".to_owned(),
        not_null: false,
        has_default: false,
    });
    vec![Work::Sql(
        "ALTER TABLE session ADD COLUMN token_hash text".to_owned(),
    )]
}

fn plan_drop_token(model: &mut Model, backend: Backend, _: Naming) -> Vec<Work> {
    let Some(cols) = model.get_mut("session") else {
        return Vec::new();
    };
    let has_token = cols.iter().any(|c| c.name == "token");
    let mut work = Vec::new();
    if has_token {
        work.push(Work::VerifyTokenHashes);
    }
    match backend {
        Backend::Postgres => {
            if let Some(c) = cols.iter_mut().find(|c| c.name == "token_hash")
                && !c.not_null
            {
                work.push(Work::Sql(
                    "ALTER TABLE session ALTER COLUMN token_hash SET NOT NULL".to_owned(),
                ));
                work.push(Work::Sql(
                    "CREATE UNIQUE INDEX IF NOT EXISTS session_token_hash_key \
                     ON session (token_hash)"
                        .to_owned(),
                ));
                c.not_null = true;
            }
            if has_token {
                work.push(Work::Sql(
                    "ALTER TABLE session DROP COLUMN token".to_owned(),
                ));
                cols.retain(|c| c.name != "token");
            }
        }
        Backend::Sqlite => {
            if let Some(rebuild) = sqlite_rebuild(model, "session", Some("token")) {
                work.extend(rebuild);
            }
        }
    }
    work
}

fn plan_versions(_: &mut Model, backend: Backend, _: Naming) -> Vec<Work> {
    let mut work = vec![
        Work::VerifyCounts,
        Work::Sql(
            "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) \
             PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
                .to_owned(),
        ),
    ];
    let _ = backend;
    let conflict = " ON CONFLICT DO NOTHING";
    for version in BASELINE_VERSIONS {
        work.push(Work::Sql(format!(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('{version}'){conflict}"
        )));
    }
    work
}

// ---------------------------------------------------------------------------------------------
// The connection.

#[expect(
    clippy::large_enum_variant,
    reason = "one value per adoption run, never moved around"
)]
enum Db {
    Pg(AsyncPgConnection),
    Lite(SqliteConn),
}

#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    ty: String,
    #[diesel(sql_type = BigInt)]
    not_null: i64,
    #[diesel(sql_type = BigInt)]
    has_default: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct TokenRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    token: String,
    #[diesel(sql_type = Nullable<Text>)]
    token_hash: Option<String>,
}

#[derive(QueryableByName)]
struct DetailRow {
    #[diesel(sql_type = Nullable<Text>)]
    detail: Option<String>,
}

/// Runs `$body` with `$c` bound to the connection of either backend.
macro_rules! on {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            Db::Pg($c) => $body,
            Db::Lite($c) => $body,
        }
    };
}

/// base64url(SHA-256(token)), as `auth::token::SessionToken::hash`.
fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

impl Db {
    async fn open(url: &DatabaseUrl) -> anyhow::Result<Self> {
        Ok(match url {
            DatabaseUrl::Postgres(url) => Self::Pg(
                connect_postgres(url, 0)
                    .await
                    .context("cannot connect to PostgreSQL")?,
            ),
            DatabaseUrl::Sqlite(path) => Self::Lite(
                connect_sqlite(path, SQLITE_BUSY_MS)
                    .await
                    .with_context(|| format!("cannot open SQLite database {path}"))?,
            ),
        })
    }

    fn backend(&self) -> Backend {
        match self {
            Self::Pg(_) => Backend::Postgres,
            Self::Lite(_) => Backend::Sqlite,
        }
    }

    async fn exec(&mut self, sql: &str) -> anyhow::Result<()> {
        on!(self, |c| c.batch_execute(sql).await)
            .with_context(|| format!("adoption SQL failed: {sql}"))
    }

    /// PostgreSQL: the migrations' advisory lock, for the whole adoption. SQLite: each step
    /// takes the write lock (`BEGIN IMMEDIATE`); foreign keys are off while tables are rebuilt.
    async fn lock(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Pg(c) => {
                diesel::sql_query("SELECT pg_advisory_lock($1)")
                    .bind::<BigInt, _>(ADVISORY_LOCK_KEY)
                    .execute(c)
                    .await
                    .context("cannot take the migration lock")?;
            }
            Self::Lite(c) => c.batch_execute("PRAGMA foreign_keys = OFF").await?,
        }
        Ok(())
    }

    async fn unlock(&mut self) {
        if let Self::Pg(c) = self {
            let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<BigInt, _>(ADVISORY_LOCK_KEY)
                .execute(c)
                .await;
        }
    }

    async fn tables(&mut self) -> anyhow::Result<Vec<String>> {
        let rows: Vec<NameRow> = match self {
            Self::Pg(c) => {
                diesel::sql_query(
                    "SELECT table_name::text AS name FROM information_schema.tables \
                     WHERE table_schema = current_schema() ORDER BY 1",
                )
                .load(c)
                .await?
            }
            Self::Lite(c) => {
                diesel::sql_query(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') \
                     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1",
                )
                .load(c)
                .await?
            }
        };
        Ok(rows.into_iter().map(|r| r.name).collect())
    }

    async fn columns(&mut self, table: &str) -> anyhow::Result<Vec<Column>> {
        let rows: Vec<ColumnRow> = match self {
            Self::Pg(c) => {
                diesel::sql_query(
                    "SELECT column_name::text AS name, data_type::text AS ty, \
                     (CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END)::bigint AS not_null, \
                     (CASE WHEN column_default IS NULL THEN 0 ELSE 1 END)::bigint AS has_default \
                     FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 \
                     ORDER BY ordinal_position",
                )
                .bind::<Text, _>(table)
                .load(c)
                .await?
            }
            Self::Lite(c) => {
                diesel::sql_query(
                    "SELECT name, type AS ty, \"notnull\" AS not_null, \
                     (dflt_value IS NOT NULL) AS has_default \
                     FROM pragma_table_info(?) ORDER BY cid",
                )
                .bind::<Text, _>(table)
                .load(c)
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|r| Column {
                name: r.name,
                ty: r.ty.to_lowercase(),
                not_null: r.not_null != 0,
                has_default: r.has_default != 0,
            })
            .collect())
    }

    async fn model(&mut self) -> anyhow::Result<Model> {
        let mut model = Model::new();
        for table in self.tables().await? {
            let cols = self.columns(&table).await?;
            model.insert(table, cols);
        }
        Ok(model)
    }

    async fn done_steps(&mut self) -> anyhow::Result<Vec<String>> {
        if !self.tables().await?.iter().any(|t| t == "apexkit_adoption") {
            return Ok(Vec::new());
        }
        let rows: Vec<NameRow> = on!(self, |c| {
            diesel::sql_query("SELECT step AS name FROM apexkit_adoption")
                .load(c)
                .await
        })?;
        Ok(rows.into_iter().map(|r| r.name).collect())
    }

    async fn baseline(&mut self) -> anyhow::Result<Option<serde_json::Value>> {
        let rows: Vec<DetailRow> = on!(self, |c| {
            diesel::sql_query("SELECT detail FROM apexkit_adoption WHERE step = 'record_baseline'")
                .load(c)
                .await
        })?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.detail)
            .and_then(|d| serde_json::from_str(&d).ok()))
    }

    async fn baseline_naming(&mut self) -> anyhow::Result<Option<Naming>> {
        Ok(self
            .baseline()
            .await?
            .and_then(|b| match b.get("naming").and_then(|n| n.as_str()) {
                Some("camelCase") => Some(Naming::CamelCase),
                Some("snake_case") => Some(Naming::SnakeCase),
                _ => None,
            }))
    }

    async fn count(&mut self, table: &str) -> anyhow::Result<i64> {
        let sql = format!("SELECT COUNT(*) AS n FROM {}", quote(table));
        let rows: Vec<CountRow> = on!(self, |c| diesel::sql_query(&sql).load(c).await)?;
        Ok(rows.iter().map(|r| r.n).next().unwrap_or_default())
    }

    /// Row counts of every table but the adoption's own bookkeeping.
    async fn counts(&mut self) -> anyhow::Result<BTreeMap<String, i64>> {
        let mut counts = BTreeMap::new();
        for table in self.tables().await? {
            if table == "apexkit_adoption" || table == "__diesel_schema_migrations" {
                continue;
            }
            let n = self.count(&table).await?;
            counts.insert(table, n);
        }
        Ok(counts)
    }

    /// Runs one step in a transaction of its own, unless it is recorded as done (checked inside
    /// the transaction); records it. Returns whether it ran.
    async fn run_step(&mut self, name: &str, work: &[Work]) -> anyhow::Result<bool> {
        let begin = match self {
            Self::Pg(_) => "BEGIN",
            Self::Lite(_) => "BEGIN IMMEDIATE",
        };
        self.exec(begin).await?;
        let result = self.step_body(name, work).await;
        match result {
            Ok(ran) => {
                self.exec("COMMIT").await?;
                Ok(ran)
            }
            Err(e) => {
                let _ = self.exec("ROLLBACK").await;
                Err(e.context(format!(
                    "Better Auth adoption: step {name} failed (rolled back)"
                )))
            }
        }
    }

    async fn step_body(&mut self, name: &str, work: &[Work]) -> anyhow::Result<bool> {
        if name != "record_baseline" && self.done_steps().await?.iter().any(|s| s == name) {
            return Ok(false);
        }
        let mut detail = None;
        if name == "record_baseline" {
            if self.done_steps().await?.iter().any(|s| s == name) {
                return Ok(false);
            }
            let naming = match detect_naming(&self.columns("user").await?) {
                Some(n) => n,
                None => bail!("the user table has neither emailVerified nor email_verified"),
            };
            detail = Some(
                serde_json::json!({ "naming": naming.as_str(), "counts": self.counts().await? })
                    .to_string(),
            );
        }
        for item in work {
            match item {
                Work::Sql(sql) if sql.starts_with("--") => {}
                Work::Sql(sql) => self.exec(sql).await?,
                Work::FillTokenHashes => self.fill_token_hashes().await?,
                Work::VerifyTokenHashes => self.verify_token_hashes().await?,
                Work::VerifyCounts => self.verify_counts().await?,
            }
        }
        if let Self::Lite(c) = self {
            let broken: Vec<CountRow> =
                diesel::sql_query("SELECT COUNT(*) AS n FROM pragma_foreign_key_check")
                    .load(c)
                    .await?;
            if broken.iter().any(|r| r.n > 0) {
                bail!("foreign key check failed after the step");
            }
        }
        on!(self, |c| {
            diesel::sql_query("INSERT INTO apexkit_adoption (step, detail) VALUES ($1, $2)")
                .bind::<Text, _>(name)
                .bind::<Nullable<Text>, _>(detail.as_deref())
                .execute(c)
                .await
        })?;
        Ok(true)
    }

    async fn tokens(&mut self) -> anyhow::Result<Vec<TokenRow>> {
        Ok(on!(self, |c| {
            diesel::sql_query("SELECT id, token, token_hash FROM session")
                .load(c)
                .await
        })?)
    }

    async fn fill_token_hashes(&mut self) -> anyhow::Result<()> {
        if !self
            .columns("session")
            .await?
            .iter()
            .any(|c| c.name == "token")
        {
            return Ok(());
        }
        for row in self.tokens().await? {
            if row.token_hash.is_some() {
                continue;
            }
            let hash = token_hash(&row.token);
            on!(self, |c| {
                diesel::sql_query("UPDATE session SET token_hash = $1 WHERE id = $2")
                    .bind::<Text, _>(&hash)
                    .bind::<Text, _>(&row.id)
                    .execute(c)
                    .await
            })?;
        }
        Ok(())
    }

    async fn verify_token_hashes(&mut self) -> anyhow::Result<()> {
        let rows = self.tokens().await?;
        let bad = rows
            .iter()
            .filter(|r| r.token_hash.as_deref() != Some(token_hash(&r.token).as_str()))
            .count();
        if bad > 0 {
            bail!("{bad} session row(s) lack the right token_hash; the plaintext token stays");
        }
        Ok(())
    }

    async fn verify_counts(&mut self) -> anyhow::Result<()> {
        let Some(baseline) = self.baseline().await? else {
            bail!("no baseline recorded");
        };
        let now = self.counts().await?;
        let mut lost = Vec::new();
        if let Some(counts) = baseline.get("counts").and_then(|c| c.as_object()) {
            for (table, n) in counts {
                let before = n.as_i64().unwrap_or_default();
                let after = now.get(adopted_name(table)).copied().unwrap_or_default();
                if before != after {
                    lost.push(format!("{table}: {before} → {after}"));
                }
            }
        }
        if !lost.is_empty() {
            bail!("row counts differ from the baseline: {}", lost.join(", "));
        }
        Ok(())
    }
}

fn detect_naming(user: &[Column]) -> Option<Naming> {
    if user.iter().any(|c| c.name == "emailVerified") {
        Some(Naming::CamelCase)
    } else if user.iter().any(|c| c.name == "email_verified") {
        Some(Naming::SnakeCase)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hashes() {
        assert_eq!(snake("emailVerified"), "email_verified");
        assert_eq!(snake("accessTokenExpiresAt"), "access_token_expires_at");
        assert_eq!(snake("id"), "id");
        // The hash Apexkit stores for a session token (auth::token::SessionToken::hash).
        assert_eq!(
            token_hash("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }
}
