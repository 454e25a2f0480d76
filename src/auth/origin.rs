//! Web origins (`scheme://host[:port]`) and the set this deployment trusts: the base URL's
//! origin plus `APEXKIT_TRUSTED_ORIGINS`. Used for CSRF/CORS checks and redirect targets.
//! Parsing is strict on purpose: userinfo, percent-encoding, backslashes or control characters
//! in the authority make a value no origin at all.

/// The origin of an absolute http(s) URL, normalised: lower-case scheme and host, default port
/// dropped. `None` for anything else (`null`, relative paths, `javascript:`, `//host`, …).
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    if authority.is_empty()
        || authority
            .chars()
            .any(|c| c == '@' || c == '%' || c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let (host, port) = split_port(&authority)?;
    if !valid_host(host) {
        return None;
    }
    Some(match port {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, after) = authority.split_at(close + 1);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty()
            || p.len() > 5
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<u32>().ok()? > 65535)
    {
        return None;
    }
    Some((host, port))
}

fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The origins this deployment trusts.
#[derive(Debug, Clone)]
pub struct TrustedOrigins {
    base: String,
    all: Vec<String>,
}

impl TrustedOrigins {
    /// `base_url`'s origin is always trusted; every entry of `extra` must be a valid origin.
    pub fn new(base_url: &str, extra: &[String]) -> Result<Self, String> {
        let base = origin_of(base_url).ok_or_else(|| format!("invalid base URL {base_url:?}"))?;
        let mut all = vec![base.clone()];
        for raw in extra.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let origin = origin_of(raw).ok_or_else(|| {
                format!("APEXKIT_TRUSTED_ORIGINS: {raw:?} is not an http(s) origin")
            })?;
            if !all.contains(&origin) {
                all.push(origin);
            }
        }
        Ok(Self { base, all })
    }

    /// The base URL's origin.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether an `Origin` header value (or any absolute URL) belongs to a trusted origin.
    /// `null` and look-alikes (`https://app.example.com.evil.io`) do not.
    pub fn allows(&self, value: &str) -> bool {
        origin_of(value.trim()).is_some_and(|o| self.all.contains(&o))
    }

    pub fn all(&self) -> &[String] {
        &self.all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_origins() {
        assert_eq!(
            origin_of("HTTPS://App.Example.com:443/x?y").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("http://localhost:4000").as_deref(),
            Some("http://localhost:4000")
        );
        assert_eq!(
            origin_of("http://[::1]:8080/").as_deref(),
            Some("http://[::1]:8080")
        );
    }

    #[test]
    fn refuses_non_origins() {
        for bad in [
            "null",
            "",
            "/relative",
            "//evil.com",
            "javascript:alert(1)",
            "https://user@evil.com",
            "https://evil.com%2f@app.example.com",
            "https:///evil.com",
            "https://app.example.com:99999",
            "ftp://app.example.com",
            "https://exa mple.com",
        ] {
            assert!(origin_of(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn trusts_only_listed_origins() {
        let t = TrustedOrigins::new(
            "https://auth.example.com/",
            &["https://app.example.com".into()],
        )
        .unwrap();
        assert!(t.allows("https://auth.example.com"));
        assert!(t.allows("https://app.example.com"));
        assert!(!t.allows("https://app.example.com.evil.io"));
        assert!(!t.allows("http://app.example.com"));
        assert!(!t.allows("null"));
        assert!(TrustedOrigins::new("https://a.example.com", &["not an origin".into()]).is_err());
    }
}
