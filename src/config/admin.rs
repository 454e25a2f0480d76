//! Administration: who is an admin.

#[derive(Debug, Clone, clap::Args)]
pub struct AdminConfig {
    /// Comma-separated emails that get role `admin` once their owner has verified the address:
    /// at verification, and at every boot for verified users (never at sign-up).
    #[arg(
        id = "admin_emails",
        long = "admin-emails",
        value_name = "ADMIN_EMAILS",
        env = "APEXKIT_ADMIN_EMAILS",
        value_delimiter = ',',
        help_heading = "Administration"
    )]
    pub emails: Vec<String>,
}

impl AdminConfig {
    /// The admin emails, normalised as users' emails are stored (blank entries skipped); an
    /// entry that is not an address is an error (a typo must not go unnoticed).
    pub fn settings(&self) -> Result<Vec<String>, String> {
        let mut problems = Vec::new();
        let mut emails = Vec::new();
        for email in self.emails.iter().filter(|e| !e.trim().is_empty()) {
            match crate::auth::email::normalize(email) {
                Ok(normalized) => emails.push(normalized),
                Err(_) => problems.push(format!(
                    "APEXKIT_ADMIN_EMAILS: {email:?} is not an email address"
                )),
            }
        }
        super::problems(problems)?;
        Ok(emails)
    }
}
