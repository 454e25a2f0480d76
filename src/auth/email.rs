//! Email addresses: trimmed, lower-cased, and checked against a conservative grammar
//! (no quoted local parts, no IP literals, no comments, nothing that could smuggle headers).

use crate::error::{Error, Result};

const MAX_LEN: usize = 254;
const MAX_LOCAL: usize = 64;

/// The canonical form of an address: `" Ada@Example.com "` → `"ada@example.com"`.
pub fn normalize(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() || email.len() > MAX_LEN {
        return Err(Error::InvalidEmail);
    }
    let (local, domain) = email.split_once('@').ok_or(Error::InvalidEmail)?;
    if !valid_local(local) || !valid_domain(domain) {
        return Err(Error::InvalidEmail);
    }
    Ok(email)
}

fn valid_local(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= MAX_LOCAL
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn canonical_form() {
        assert_eq!(normalize("  Ada@Example.COM ").unwrap(), "ada@example.com");
        assert_eq!(
            normalize("a.b+tag@sub.example.io").unwrap(),
            "a.b+tag@sub.example.io"
        );
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@example.com,eve@example.com",
            "ada@example.com\r\nBcc: eve@example.com",
            "ada smith@example.com",
            "\"ada\"@example.com",
            "ada@[127.0.0.1]",
            ".ada@example.com",
            "ada..b@example.com",
            "ada@-example.com",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert!(long.len() > 254);
        assert!(normalize(&long).is_err());
    }
}
