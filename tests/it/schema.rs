//! `schema.graphql` is generated from the code.

#[test]
fn checked_in_schema_matches_the_code() {
    let checked_in = include_str!("../../schema.graphql");
    let generated = apexkit::graphql::sdl();
    assert!(
        checked_in == generated,
        "schema.graphql is out of date: regenerate it with `cargo run -- print-schema > schema.graphql`"
    );
}
