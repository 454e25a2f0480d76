//! `Cookie` headers and `X-Forwarded-For` hops: never panic; a found cookie value is a
//! substring of the input without `;`.
#![no_main]

use apexkit::http::{find_cookie, parse_hop};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let headers: Vec<&str> = raw.split('\n').collect();
    if let Some(value) = find_cookie(headers.iter().copied(), "apexkit.session_token") {
        assert!(!value.contains(';'));
        assert!(raw.contains(value));
    }
    for hop in raw.split(',') {
        if let Some(ip) = parse_hop(hop.trim()) {
            assert_eq!(ip, ip.to_canonical(), "hops are canonical");
        }
    }
});
