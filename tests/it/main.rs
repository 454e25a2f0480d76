//! Integration tests: the real app on 127.0.0.1:0, spoken to over HTTP like a client, on SQLite
//! and on PostgreSQL, each test with a fresh database. One test binary, a module per capability.

mod support;

mod abuse;
mod account;
mod admin;
mod adopt;
mod architecture;
mod auth;
mod browser;
mod docs;
mod edge;
mod faults;
mod hardening;
mod http;
mod migrations;
mod operations;
mod passkeys;
mod passwordless;
mod process;
mod redis;
mod scale;
mod schema;
mod schema_workflow;
mod sessions;
mod shutdown;
mod social;
mod tokens;
mod two_factor;
