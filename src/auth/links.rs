//! Links in mail: built from the configured base URL only (never from request headers), pointing
//! to a caller-supplied target only when it is a plain relative path or on a trusted origin.

use super::origin::TrustedOrigins;
use crate::error::{Error, Result};

const MAX_TARGET_CHARS: usize = 2048;

/// Checks a `redirectTo` / `callbackURL` value; returns the absolute URL to link to.
/// Accepted: a path starting with a single `/` (resolved against the base URL), or an absolute
/// http(s) URL on a trusted origin. Refused: protocol-relative (`//host`), backslashes,
/// percent-encoded slashes or backslashes, whitespace and control characters, other schemes,
/// and untrusted or look-alike hosts.
pub fn redirect_target(
    value: &str,
    base_url: &str,
    trusted: &TrustedOrigins,
    field: &'static str,
) -> Result<String> {
    let refuse = || Error::BadUserInput {
        field,
        message: "must be a relative path or a URL on a trusted origin",
    };
    if value.is_empty()
        || value.chars().count() > MAX_TARGET_CHARS
        || value
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(refuse());
    }
    let lower = value.to_ascii_lowercase();
    // Encoded `/`, `\` and `%` itself: a decoding hop further down could turn them into `//`.
    if ["%2f", "%5c", "%25", "%09", "%0a", "%0d"]
        .iter()
        .any(|bad| lower.contains(bad))
    {
        return Err(refuse());
    }
    if let Some(rest) = value.strip_prefix('/') {
        if rest.starts_with('/') {
            return Err(refuse());
        }
        return Ok(format!("{}{value}", base_url.trim_end_matches('/')));
    }
    if (lower.starts_with("https://") || lower.starts_with("http://")) && trusted.allows(value) {
        return Ok(value.to_owned());
    }
    Err(refuse())
}

/// `target` with `token` added as a query parameter (before any fragment).
pub fn with_token(target: &str, token: &str) -> String {
    let (before, fragment) = match target.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (target, None),
    };
    let sep = if before.contains('?') { '&' } else { '?' };
    // Tokens are base64url: nothing to encode.
    let mut link = format!("{before}{sep}token={token}");
    if let Some(f) = fragment {
        link.push('#');
        link.push_str(f);
    }
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> TrustedOrigins {
        TrustedOrigins::new(
            "https://auth.example.com",
            &["https://app.example.com".into()],
        )
        .unwrap()
    }

    fn check(v: &str) -> Result<String> {
        redirect_target(v, "https://auth.example.com", &trusted(), "redirectTo")
    }

    #[test]
    fn accepts_relative_paths_and_trusted_origins() {
        assert_eq!(
            check("/welcome?x=1").unwrap(),
            "https://auth.example.com/welcome?x=1"
        );
        assert_eq!(
            check("https://app.example.com/reset").unwrap(),
            "https://app.example.com/reset"
        );
    }

    #[test]
    fn refuses_hostile_targets() {
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/%2F%2Fevil.com",
            "/%2f%2fevil.com",
            "/%5Cevil.com",
            "/%252F%252Fevil.com",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "https://evil.com/",
            "https://app.example.com.evil.com/",
            "https://app.example.com@evil.com/",
            "https://evil.com\\@app.example.com/",
            "http://app.example.com/",
            "evil.com",
            "/ok\r\nLocation: https://evil.com",
            "/\tevil",
            "",
        ] {
            let err = check(bad).expect_err(bad);
            assert!(
                matches!(
                    err,
                    Error::BadUserInput {
                        field: "redirectTo",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn token_goes_into_the_query() {
        assert_eq!(with_token("https://a.b/x", "T"), "https://a.b/x?token=T");
        assert_eq!(
            with_token("https://a.b/x?y=1", "T"),
            "https://a.b/x?y=1&token=T"
        );
        assert_eq!(
            with_token("https://a.b/x#f", "T"),
            "https://a.b/x?token=T#f"
        );
    }
}
