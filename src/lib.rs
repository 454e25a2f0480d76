//! Apexkit Auth: a self-hosted authentication service speaking GraphQL.
//!
//! Start reading at [`app`] (boot and run). Dependencies point inward:
//! [`http`] → [`graphql`] → [`auth`] (the domain) → [`db`]; [`config`] and [`error`] are shared.

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod graphql;
pub mod http;
pub mod mail;
pub mod observability;
pub mod secret;
pub mod throttle;
pub mod tooling;

pub use app::App;
pub use config::Config;
