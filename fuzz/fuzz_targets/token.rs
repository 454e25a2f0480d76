//! Session tokens from `Authorization`/cookies: parsing never panics, and whatever parses is
//! exactly a shape a session can have: the 43 base64url characters we issue, or the 32
//! alphanumeric characters of a session adopted from Better Auth.
#![no_main]

use apexkit::auth::SessionToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(token) = SessionToken::parse(raw) {
        let t = token.expose();
        let ours = t.len() == 43
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let better_auth = t.len() == 32 && t.bytes().all(|b| b.is_ascii_alphanumeric());
        assert!(ours || better_auth, "{t:?}");
        assert_eq!(t, raw);
        assert_eq!(token.hash().len(), 43);
    }
});
