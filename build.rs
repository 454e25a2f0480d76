//! `embed_migrations!` does not notice new migration folders on its own; and the binary keeps
//! each migration's SQL text (for checksums and `pushSchema` reports), generated here.
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut out = String::new();
    for backend in ["postgres", "sqlite"] {
        let mut dirs: Vec<_> = std::fs::read_dir(root.join(backend))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.join("up.sql").is_file())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        let _ = writeln!(
            out,
            "pub const {}: &[(&str, &str)] = &[",
            backend.to_uppercase()
        );
        for dir in dirs {
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            let up = dir.join("up.sql");
            let _ = writeln!(out, "    ({name:?}, include_str!({:?})),", up.display());
        }
        out.push_str("];\n");
    }
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("migration_sql.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}
