//! Better Auth's signed session cookie, for sessions adopted from a Better Auth database (see
//! `db::adopt`): `better-auth.session_token` holds `token.signature`, the signature being
//! HMAC-SHA256 of the token under Better Auth's secret, in base64 (URL-encoded in the cookie, as
//! better-call serialises it). The bearer plugin hands out the same value (`set-auth-token`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SessionToken;
pub use crate::secret::Secret;

/// The cookie's names (the second over https, as Better Auth names it there).
pub const COOKIE_NAMES: [&str; 2] = [
    "better-auth.session_token",
    "__Secure-better-auth.session_token",
];

/// Longest signed value looked at (a token of 32 characters, a dot, 44 of base64, encoded).
const MAX_SIGNED_CHARS: usize = 256;

/// The session token inside a signed value, when its signature is Better Auth's under
/// `secret` (checked in constant time); `None` for anything else.
pub fn unsign(value: &str, secret: &Secret) -> Option<SessionToken> {
    if value.len() > MAX_SIGNED_CHARS {
        return None;
    }
    let decoded = percent_decode(value)?;
    let (token, signature) = decoded.rsplit_once('.')?;
    let signature = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(signature).ok())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).ok()?;
    mac.update(token.as_bytes());
    mac.verify_slice(&signature).ok()?;
    SessionToken::parse(token)
}

/// `%XX` decoded (what `encodeURIComponent` produced); `None` when malformed.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn better_auth_signatures_verify() {
        // Made by better-auth 1.7.25 with this secret (tests/better-auth/seed.mjs).
        let secret = Secret::new("better-auth-test-secret-0123456789abcdef");
        let cookie =
            "ArKgPo6h9TmBlIGi0CczC3htfIQHJLW0.eQgW6PeVXXMzJ5VJV0Qr%2F0M6SAsu%2FRsmcvrc%2FRScMY4%3D";
        let token = unsign(cookie, &secret).expect("verifies");
        assert_eq!(token.expose(), "ArKgPo6h9TmBlIGi0CczC3htfIQHJLW0");
        // The bearer plugin's form (not URL-encoded) too.
        let bearer =
            "ArKgPo6h9TmBlIGi0CczC3htfIQHJLW0.eQgW6PeVXXMzJ5VJV0Qr/0M6SAsu/Rsmcvrc/RScMY4=";
        assert!(unsign(bearer, &secret).is_some());
        assert!(unsign(bearer, &Secret::new("another secret")).is_none());
        let forged =
            "ArKgPo6h9TmBlIGi0CczC3htfIQHJLW1.eQgW6PeVXXMzJ5VJV0Qr/0M6SAsu/Rsmcvrc/RScMY4=";
        assert!(unsign(forged, &secret).is_none());
        assert!(unsign("no-dot", &secret).is_none());
        assert!(unsign("%zz.abc", &secret).is_none());
    }
}
