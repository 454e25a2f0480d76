//! GraphQL limits: request and document size, depth, complexity, batches, introspection.

use crate::graphql::Limits;

use super::Toggle;

#[derive(Debug, Clone, clap::Args)]
pub struct GraphqlConfig {
    /// Largest accepted request body in bytes (413 beyond).
    #[arg(long, env = "APEXKIT_MAX_BODY_BYTES", default_value_t = 64 * 1024, help_heading = "GraphQL limits")]
    pub max_body_bytes: usize,

    /// Maximum GraphQL query depth.
    #[arg(
        long,
        env = "APEXKIT_MAX_DEPTH",
        default_value_t = 10,
        help_heading = "GraphQL limits"
    )]
    pub max_depth: usize,

    /// Maximum GraphQL query complexity (every selected field counts, aliases included).
    #[arg(
        long,
        env = "APEXKIT_MAX_COMPLEXITY",
        default_value_t = 200,
        help_heading = "GraphQL limits"
    )]
    pub max_complexity: usize,

    /// Maximum directives in one document.
    #[arg(
        long,
        env = "APEXKIT_MAX_DIRECTIVES",
        default_value_t = 20,
        help_heading = "GraphQL limits"
    )]
    pub max_directives: usize,

    /// Maximum operations in one batched (JSON array) request.
    #[arg(
        long,
        env = "APEXKIT_MAX_BATCH",
        default_value_t = 5,
        help_heading = "GraphQL limits"
    )]
    pub max_batch: usize,

    /// Longest accepted GraphQL query text in bytes.
    #[arg(long, env = "APEXKIT_MAX_QUERY_BYTES", default_value_t = 8 * 1024, help_heading = "GraphQL limits")]
    pub max_query_bytes: usize,

    /// GraphQL introspection: on or off. Default: off in production, on in development.
    #[arg(
        long,
        env = "APEXKIT_INTROSPECTION",
        value_enum,
        help_heading = "GraphQL limits"
    )]
    pub introspection: Option<Toggle>,
}

/// The GraphQL settings, validated.
pub struct Graphql {
    /// The schema's limits; the rate limiter is added at boot (it needs the pool).
    pub limits: Limits,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub max_query_bytes: usize,
}

impl GraphqlConfig {
    pub fn settings(&self, production: bool) -> Result<Graphql, String> {
        if self.max_query_bytes == 0 {
            return Err("APEXKIT_MAX_QUERY_BYTES must be positive".to_owned());
        }
        Ok(Graphql {
            limits: Limits {
                max_depth: self.max_depth,
                max_complexity: self.max_complexity,
                max_directives: self.max_directives,
                introspection: self.introspection.map_or(!production, |t| t == Toggle::On),
                suggestions: !production,
                rate_limiter: None,
                dev_tools: !production,
            },
            max_body_bytes: self.max_body_bytes,
            max_batch: self.max_batch,
            max_query_bytes: self.max_query_bytes,
        })
    }
}
