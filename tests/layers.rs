//! The library's modules form layers, and no module uses one above it.
//!
//! ```text
//! 0  format/*, error, element, options, report   pure code and vocabulary
//! 1  storage/*                                   the one I/O interface
//! 2  files                                       sidecar names, locks, durable create/remove
//! 3  recovery/*                                  inspect and apply
//! 4  write/*                                     the writers
//! 5  read/*                                      the readers and the status
//! 6  dataset                                     shards of groups: writers and readers
//! 7  lib                                         the public re-exports
//! ```
//!
//! The test reads every file under `src/` (the command-line tool in
//! `src/bin/` is above the library and uses only its public API), finds
//! every `crate::<module>` path in code (comments and test modules aside)
//! and every `super::` path, and fails on a path to a higher layer, or to a
//! root re-export instead of the module that defines it (which would hide
//! the dependency). `docs/design.md` ("Layers") draws the same graph.

use std::path::{Path, PathBuf};

/// The layer of a top-level module, by its name.
fn layer(module: &str) -> Option<u32> {
    Some(match module {
        "format" | "error" | "element" | "options" | "report" => 0,
        "storage" => 1,
        "files" => 2,
        "recovery" => 3,
        "write" => 4,
        "read" => 5,
        "dataset" => 6,
        "lib" => 7,
        _ => return None,
    })
}

/// The top-level module a source file belongs to (`src/write/group.rs` ->
/// `write`, `src/lib.rs` -> `lib`).
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "bin") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of `text` without comments and without its `#[cfg(test)]`
/// module (tests may use anything).
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = match line.find("//") {
            // A `//` inside a string literal is rare in this crate; a `"`
            // before it keeps the whole line.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        out.push((i + 1, code.to_owned()));
    }
    out
}

/// The module names that follow `crate::` in `code`, including inside
/// `use crate::{a, b::c}` groups.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
        rest = after;
    }
    found
}

#[test]
fn no_module_uses_a_higher_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut violations = Vec::new();
    for file in &files {
        let module = module_of(&root, file);
        let own = layer(&module).unwrap_or_else(|| {
            panic!(
                "{}: module {module} has no layer; add it to this test and to docs/design.md",
                file.display()
            )
        });
        let text = std::fs::read_to_string(file).unwrap();
        for (line, code) in code_lines(&text) {
            for target in crate_paths(&code) {
                match layer(&target) {
                    Some(l) if l <= own => {}
                    Some(l) => violations.push(format!(
                        "{}:{line}: {module} (layer {own}) uses crate::{target} (layer {l})",
                        file.display()
                    )),
                    None => violations.push(format!(
                        "{}:{line}: {module} uses crate::{target}, a root re-export or an \
                         unknown module; name the module that defines it",
                        file.display()
                    )),
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "modules using higher layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_finds_an_upward_use() {
    let code = code_lines(
        "use crate::write::appender::Appender;\n// crate::dataset in a comment\n\
         use crate::{files, read::rows};\n#[cfg(test)]\nuse crate::lib;",
    );
    let paths: Vec<String> = code.iter().flat_map(|(_, c)| crate_paths(c)).collect();
    assert_eq!(paths, ["write", "files", "read"]);
    assert!(layer("write") > layer("recovery"));
}
