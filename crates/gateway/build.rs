//! Embeds every file under `assets/` into the binary, so the web UI ships
//! with it and needs no build step or files beside the executable.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut table = String::from("/// Embedded web assets: (path under assets/, bytes).\n");
    table.push_str("pub static EMBEDDED: &[(&str, &[u8])] = &[\n");
    for relative in &files {
        let _ = writeln!(
            table,
            "    ({relative:?}, include_bytes!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/assets/{relative}\"))),"
        );
    }
    table.push_str("];\n");
    let out = std::env::var("OUT_DIR").map(std::path::PathBuf::from);
    let Ok(out) = out else {
        panic!("cargo sets OUT_DIR for build scripts");
    };
    if let Err(err) = std::fs::write(out.join("assets.rs"), table) {
        panic!("writing the asset table: {err}");
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let relative = relative.to_string_lossy().replace('\\', "/");
            if !relative.split('/').any(|part| part.starts_with('.')) {
                files.push(relative);
            }
        }
    }
}
