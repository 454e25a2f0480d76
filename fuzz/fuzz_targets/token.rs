//! Session tokens from `Authorization`/cookies: parsing never panics, and whatever parses is
//! exactly the shape we issue (43 base64url characters).
#![no_main]

use apexkit::auth::SessionToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(token) = SessionToken::parse(raw) {
        assert_eq!(token.expose().len(), 43);
        assert!(
            token
                .expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(token.hash().len(), 43);
    }
});
