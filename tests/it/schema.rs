//! `schema.graphql` and the configuration reference are generated from the code.

#[test]
fn checked_in_schema_matches_the_code() {
    let checked_in = include_str!("../../schema.graphql");
    let generated = apexkit::graphql::sdl();
    assert!(
        checked_in == generated,
        "schema.graphql is out of date: regenerate it with `cargo run -- print-schema > schema.graphql`"
    );
}

#[test]
fn checked_in_configuration_reference_matches_the_code() {
    let checked_in = include_str!("../../docs/src/configuration.md");
    let generated = apexkit::config::reference::markdown();
    assert!(
        checked_in == generated,
        "docs/src/configuration.md is out of date: regenerate it with \
         `cargo run -- print-config-reference > docs/src/configuration.md`"
    );
}
