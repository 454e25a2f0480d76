//! Email normalisation: never panics; an accepted address is already canonical (normalising
//! it again changes nothing), short, and free of whitespace and control characters.
#![no_main]

use apexkit::auth::email::normalize;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(email) = normalize(raw) {
        assert!(email.len() <= 254);
        assert_eq!(email.matches('@').count(), 1);
        assert!(!email.chars().any(|c| c.is_whitespace() || c.is_control()));
        assert_eq!(normalize(&email).ok().as_deref(), Some(email.as_str()));
    }
});
