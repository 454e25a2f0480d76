//! Passwords: the argon2id cost, how many hashes run at once, and the password policy.

use crate::auth::password::{Cost, MAX_LENGTH, MIN_LENGTH, Policy};

#[derive(Debug, Clone, clap::Args)]
pub struct PasswordsConfig {
    /// Concurrent argon2 computations (each holds its memory cost); default: the number of cores.
    #[arg(long, env = "APEXKIT_HASH_CONCURRENCY", help_heading = "Passwords")]
    pub hash_concurrency: Option<usize>,

    /// argon2id memory cost in KiB (an OWASP row with APEXKIT_ARGON2_ITERATIONS: 7168 x 5,
    /// 9216 x 4, 12288 x 3, 19456 x 2, 47104 x 1). Changing it rehashes passwords at sign-in.
    #[arg(
        long,
        env = "APEXKIT_ARGON2_MEMORY_KIB",
        default_value_t = 7_168,
        help_heading = "Passwords"
    )]
    pub argon2_memory_kib: u32,

    /// argon2id passes (time cost); see APEXKIT_ARGON2_MEMORY_KIB.
    #[arg(
        long,
        env = "APEXKIT_ARGON2_ITERATIONS",
        default_value_t = 5,
        help_heading = "Passwords"
    )]
    pub argon2_iterations: u32,

    /// Shortest accepted new password in characters (at least 8).
    #[arg(
        id = "password_min_length",
        long = "password-min-length",
        value_name = "PASSWORD_MIN_LENGTH",
        env = "APEXKIT_PASSWORD_MIN_LENGTH",
        default_value_t = 8,
        help_heading = "Passwords"
    )]
    pub min_length: usize,
}

/// The password settings, validated.
pub struct Passwords {
    pub cost: Cost,
    /// Concurrent argon2 computations.
    pub concurrency: usize,
    pub policy: Policy,
}

impl PasswordsConfig {
    pub fn settings(&self) -> Result<Passwords, String> {
        let mut problems = Vec::new();
        let cost = self.cost().validate().unwrap_or_else(|e| {
            problems.push(e);
            self.cost()
        });
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&self.min_length) {
            problems.push(format!(
                "APEXKIT_PASSWORD_MIN_LENGTH must be between {MIN_LENGTH} and {MAX_LENGTH}"
            ));
        }
        super::problems(problems)?;
        Ok(Passwords {
            cost,
            concurrency: self.hash_concurrency.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
            }),
            policy: Policy {
                min_length: self.min_length,
            },
        })
    }

    /// The argon2id cost as configured (unchecked: `bench-hash` times what it is given).
    pub fn cost(&self) -> Cost {
        Cost {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
        }
    }
}
