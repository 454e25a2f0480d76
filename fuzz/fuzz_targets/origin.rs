//! Origins (CSRF/CORS and redirect checks): never panics; an accepted origin is a fixed point
//! and carries no userinfo, path or whitespace.
#![no_main]

use apexkit::auth::origin::origin_of;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(origin) = origin_of(raw) {
        assert_eq!(origin_of(&origin).as_deref(), Some(origin.as_str()));
        assert!(!origin.contains('@') && !origin.chars().any(char::is_whitespace));
        let rest = origin.split_once("://").map_or("", |(_, r)| r);
        assert!(!rest.contains('/'));
    }
});
