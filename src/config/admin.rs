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
    /// The admin emails, each checked to be an address.
    pub fn settings(&self) -> Result<Vec<String>, String> {
        let problems = self
            .emails
            .iter()
            .filter(|e| !e.trim().is_empty())
            .filter(|e| crate::auth::email::normalize(e).is_err())
            .map(|email| format!("APEXKIT_ADMIN_EMAILS: {email:?} is not an email address"))
            .collect();
        super::problems(problems)?;
        Ok(self.emails.clone())
    }
}
