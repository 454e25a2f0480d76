//! The document gate (`graphql::document`): never panics, never recurses without bound and never
//! works exponentially, whatever the text (the stack and libFuzzer's `-timeout` catch both); what
//! it lets through is within the limits it was given.
#![no_main]

use apexkit::graphql::document::{DocumentLimits, MAX_STRUCTURE, check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = DocumentLimits {
        max_depth: 10,
        max_complexity: 200,
        introspection: false,
    };
    if let Ok(cost) = check(text, &limits) {
        assert!(cost.complexity <= limits.max_complexity);
        assert!(cost.depth <= limits.max_depth);
        assert!(cost.structure <= MAX_STRUCTURE);
        assert!(!cost.introspects);
    }
});
