//! The house's rule, checked on every `cargo test` (so CI fails when it breaks): imports only
//! point down the layers of docs/architecture.md. A module may name modules of its own layer
//! or below, never above; `tui` takes from `cli` only its entry point's argument type, and
//! nothing but the binary names `tui` or `commands`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

/// The layers, bottom first (as docs/architecture.md lists them).
const LAYERS: &[&[&str]] = &[
    &["paths", "format", "json", "jobs", "colormap"],
    &["agent"],
    &["target"],
    &["model"],
    &["pipeline"],
    &["ablation"],
    &["stats"],
    &["study"],
    &["cli"],
    &["commands"],
    &["tui"],
];

/// Functions of the crate root every layer may use.
const ROOT_ITEMS: &[&str] = &["error_text", "error_text_of"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// `crate::<module>` names in a file's code (comments skipped).
fn crate_refs(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let path: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || "_:".contains(*c)).collect();
            rest = &after[name.len()..];
            out.push((n + 1, name, path));
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn imports_only_point_down_the_layers() {
    let src = common::root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut broken = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        if module == "main" || module == "lib" {
            continue;
        }
        let own = layer_of(&module).unwrap_or_else(|| panic!("src/{rel}: module `{module}` is in no layer"));
        *seen.entry(module.clone()).or_default() += 1;
        let text = std::fs::read_to_string(file).unwrap();
        for (line, target, path) in crate_refs(&text) {
            if ROOT_ITEMS.contains(&target.as_str()) || target == module {
                continue;
            }
            let Some(theirs) = layer_of(&target) else {
                broken.push(format!("src/{rel}:{line}: crate::{target} is in no layer"));
                continue;
            };
            if theirs > own {
                broken.push(format!("src/{rel}:{line}: {module} (layer {own}) imports {path} (layer {theirs})"));
            }
            if module == "tui" && target == "cli" && (path != "cli::ExploreArgs" || rel != "tui/mod.rs") {
                broken.push(format!("src/{rel}:{line}: tui takes only cli::ExploreArgs, in its entry point"));
            }
        }
    }
    assert!(broken.is_empty(), "imports that run up the layers:\n{}", broken.join("\n"));
    // Every layer's modules exist (the table stays true as modules come and go).
    for layer in LAYERS {
        for m in *layer {
            assert!(seen.contains_key(*m), "the layer table names `{m}`, which src/ lacks");
        }
    }
}

#[test]
fn the_check_sees_an_upward_import() {
    // A bottom-layer file naming the explorer, in code and in a path expression.
    let refs = crate_refs("use crate::tui::view;\nlet x = crate::commands::run(); // crate::cli in a comment");
    let names: Vec<&str> = refs.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names, ["tui", "commands"]);
    assert!(layer_of("tui") > layer_of("json"));
}
