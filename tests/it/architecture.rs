//! The layers, enforced: which top-level modules each module may name (`crate::…`), so that
//! dependencies point one way — down. ARCHITECTURE.md draws the same picture.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module → the modules it may import. Bottom first.
const ALLOWED: &[(&str, &[&str])] = &[
    ("clock", &[]),
    ("secret", &[]),
    ("db", &[]),
    ("error", &["db"]),
    ("observability", &["db"]),
    ("throttle", &["clock", "db", "error", "observability"]),
    ("mail", &["clock", "db", "error", "observability", "secret"]),
    (
        "auth",
        &[
            "clock",
            "db",
            "error",
            "mail",
            "observability",
            "secret",
            "throttle",
        ],
    ),
    (
        "graphql",
        &["auth", "clock", "db", "error", "observability", "throttle"],
    ),
    (
        "http",
        &[
            "auth",
            "clock",
            "db",
            "error",
            "graphql",
            "mail",
            "observability",
            "throttle",
        ],
    ),
    (
        "config",
        &[
            "auth", "clock", "db", "graphql", "http", "mail", "secret", "throttle",
        ],
    ),
    ("tooling", &["auth", "config", "db"]),
];

/// The top-level modules a file names through `crate::`, including `use crate::{a, b}`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn dependencies_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(may) = allowed.get(top.as_str()) else {
            // app.rs, lib.rs, main.rs: the top, free to assemble everything.
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for module in imports(&text) {
            if module != top && !may.contains(&module.as_str()) {
                violations.push(format!("{}: crate::{module}", rel.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layering (tests/it/architecture.rs, ARCHITECTURE.md):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_import_scanner_sees_grouped_and_nested_paths() {
    let found = imports("use crate::{db::Pool, auth};\nfn f() { crate::clock::now(); }");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["auth", "clock", "db"]
    );
}
