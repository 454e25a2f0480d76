//! The messages: a subject that says what the mail is for, a plain-text part and an HTML part.
//! Everything that comes from a user (names, addresses) is escaped in the HTML part; links are
//! built by the caller from the base URL or a vetted redirect target.

use super::Outgoing;

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A name fit for a greeting line: no control characters (no header or line smuggling).
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

struct Draft<'a> {
    to: &'a str,
    subject: &'static str,
    greeting_name: &'a str,
    /// Paragraphs of plain text (user data already cleaned; escaped for HTML here).
    paragraphs: Vec<String>,
    action: Option<(&'static str, &'a str)>,
    footer: String,
}

impl Draft<'_> {
    fn finish(self) -> Outgoing {
        let name = clean(self.greeting_name);
        let mut text = format!("Hello {name},\n\n");
        let mut html = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\"><p>Hello {},</p>",
            escape_html(&name)
        );
        for p in &self.paragraphs {
            text.push_str(p);
            text.push_str("\n\n");
            html.push_str(&format!("<p>{}</p>", escape_html(p)));
        }
        if let Some((label, link)) = self.action {
            text.push_str(&format!("{label}:\n{link}\n\n"));
            let link = escape_html(link);
            html.push_str(&format!(
                "<p><a href=\"{link}\">{label}</a></p><p>Or paste this link into your browser:<br>{link}</p>"
            ));
        }
        text.push_str(&self.footer);
        text.push('\n');
        html.push_str(&format!(
            "<p style=\"color:#666\">{}</p></body></html>",
            escape_html(&self.footer)
        ));
        Outgoing {
            to: self.to.to_owned(),
            subject: self.subject.to_owned(),
            text,
            html,
        }
    }
}

const NOT_YOU: &str = "If you did not ask for this, you can ignore this message.";

fn hours(lifetime_secs: u64) -> String {
    match lifetime_secs {
        s if s % 3600 == 0 && s >= 3600 => format!("{} hour(s)", s / 3600),
        s => format!("{} minute(s)", s.div_ceil(60)),
    }
}

pub fn reset_password(to: &str, name: &str, link: &str, lifetime_secs: u64) -> Outgoing {
    Draft {
        to,
        subject: "Reset your password",
        greeting_name: name,
        paragraphs: vec![format!(
            "Someone asked to reset the password of your account. The link below works once and expires in {}. Using it signs you out everywhere.",
            hours(lifetime_secs)
        )],
        action: Some(("Choose a new password", link)),
        footer: NOT_YOU.to_owned(),
    }
    .finish()
}

/// Sent instead of a reset link when no account uses the address, so that asking reveals
/// nothing to the asker and the address owner still learns what happened.
pub fn reset_without_account(to: &str) -> Outgoing {
    Draft {
        to,
        subject: "Password reset request",
        greeting_name: "there",
        paragraphs: vec![
            "Someone asked to reset the password of an account with this email address, but no account uses it.".to_owned(),
        ],
        action: None,
        footer: NOT_YOU.to_owned(),
    }
    .finish()
}

pub fn verify_email(to: &str, name: &str, link: &str, lifetime_secs: u64) -> Outgoing {
    Draft {
        to,
        subject: "Verify your email address",
        greeting_name: name,
        paragraphs: vec![format!(
            "Please confirm that this is your email address. The link below works once and expires in {}.",
            hours(lifetime_secs)
        )],
        action: Some(("Verify my email address", link)),
        footer: NOT_YOU.to_owned(),
    }
    .finish()
}

/// Sent when someone signs up with an address that already has an account (when verification
/// is required, that sign-up answers like a fresh one).
pub fn already_registered(to: &str, name: &str) -> Outgoing {
    Draft {
        to,
        subject: "Sign-up attempt with your email address",
        greeting_name: name,
        paragraphs: vec![
            "Someone tried to create an account with this email address, but you already have one. Sign in, or reset your password if you forgot it.".to_owned(),
        ],
        action: None,
        footer: NOT_YOU.to_owned(),
    }
    .finish()
}

pub fn confirm_new_email(to: &str, name: &str, link: &str, lifetime_secs: u64) -> Outgoing {
    Draft {
        to,
        subject: "Confirm your new email address",
        greeting_name: name,
        paragraphs: vec![format!(
            "Please confirm this address to make it the new email address of your account. The link below works once and expires in {}.",
            hours(lifetime_secs)
        )],
        action: Some(("Confirm my new email address", link)),
        footer: NOT_YOU.to_owned(),
    }
    .finish()
}

/// Tells the current address that a change to another one was requested.
pub fn email_change_requested(to: &str, name: &str, new_email: &str) -> Outgoing {
    Draft {
        to,
        subject: "Email address change requested",
        greeting_name: name,
        paragraphs: vec![format!(
            "Someone signed in to your account asked to change its email address to {}. The change happens only once the new address is confirmed.",
            clean(new_email)
        )],
        action: None,
        footer: "If this was not you, change your password now and sign out your other sessions."
            .to_owned(),
    }
    .finish()
}

/// A magic sign-in link (`signInMagicLink`); to a new address it also creates the account.
pub fn magic_link(to: &str, name: &str, link: &str, lifetime_secs: u64) -> Outgoing {
    Draft {
        to,
        subject: "Your sign-in link",
        greeting_name: name,
        paragraphs: vec![format!(
            "Use the link below to sign in. It works once and expires in {}.",
            hours(lifetime_secs)
        )],
        action: Some(("Sign in", link)),
        footer: NOT_YOU.to_owned(),
    }
    .finish()
}

/// A 6-digit sign-in code (`sendSignInOtp`).
pub fn sign_in_code(to: &str, name: &str, code: &str, lifetime_secs: u64) -> Outgoing {
    Draft {
        to,
        subject: "Your sign-in code",
        greeting_name: name,
        paragraphs: vec![
            format!("Your sign-in code is: {code}"),
            format!(
                "It works once and expires in {}. Never share it with anyone.",
                hours(lifetime_secs)
            ),
        ],
        action: None,
        footer: NOT_YOU.to_owned(),
    }
    .finish()
}

/// Sent instead of a link or code when no account uses the address and sign-up by mail is
/// off, so that asking reveals nothing to the asker.
pub fn sign_in_without_account(to: &str) -> Outgoing {
    Draft {
        to,
        subject: "Sign-in request",
        greeting_name: "there",
        paragraphs: vec![
            "Someone asked to sign in with this email address, but no account uses it.".to_owned(),
        ],
        action: None,
        footer: NOT_YOU.to_owned(),
    }
    .finish()
}

/// The mailed second-factor code (`sendTwoFactorOtp`).
pub fn two_factor_code(to: &str, name: &str, code: &str, lifetime_secs: u64) -> Outgoing {
    Draft {
        to,
        subject: "Your two-factor verification code",
        greeting_name: name,
        paragraphs: vec![
            format!("Your verification code is: {code}"),
            format!(
                "It finishes a sign-in that already gave your password. It works once and expires in {}.",
                hours(lifetime_secs)
            ),
        ],
        action: None,
        footer: "If you did not just sign in, change your password now.".to_owned(),
    }
    .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_escaped_in_html() {
        let m = verify_email(
            "a@example.com",
            "<script>alert(1)</script>",
            "https://auth.example.com/verify-email?token=x&y=\"z\"",
            86400,
        );
        assert!(!m.html.contains("<script>"));
        assert!(m.html.contains("&lt;script&gt;"));
        assert!(m.html.contains("token=x&amp;y=&quot;z&quot;"));
        assert!(
            m.text
                .contains("https://auth.example.com/verify-email?token=x&y=\"z\"")
        );
        assert!(m.text.contains("24 hour(s)"));
        assert_eq!(m.subject, "Verify your email address");
    }
}
