//! `cargo xtask tidy`: the boundaries `docs/architecture.md` states, checked.
//!
//! Each rule is a function returning the violations it finds, one line each, naming the rule
//! and what breaks it; `cargo xtask tidy` (and so `cargo xtask ci`) fails on any. The same
//! checks run as `#[test]`s, so a plain `cargo test --workspace` agrees with CI.
//!
//! Dependency rules look at normal and build dependencies between workspace crates, as
//! `cargo metadata` reports them; dev-dependencies are free (a backend's tests may use
//! another backend to make their fixtures).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::workspace_root;

/// The layers, bottom up. A crate may depend only on crates of lower layers.
const LAYERS: &[(&str, &[&str])] = &[
    // Dev-only (never a normal dependency of a library: dev-dependencies are not read here).
    ("test support", &["oci-test-registry"]),
    ("digests", &["oci-digest"]),
    // The reference grammar, below the backends that parse names (oci-registry, oci-tar).
    ("image references", &["oci-reference"]),
    ("the core", &["oci-core"]),
    (
        "stores and images",
        &["oci-dir", "oci-tar", "oci-registry", "oci-image"],
    ),
    ("transports", &["oci-transport"]),
    ("the CLI", &["oci-cli"]),
];

/// Backends: stores of one kind each, which never know of each other.
const BACKENDS: &[&str] = &["oci-dir", "oci-tar", "oci-registry"];

/// Names of stores as users write them: parsed in oci-transport, never in the CLI.
const TRANSPORT_PREFIXES: &[&str] = &[
    "\"oci:",
    "\"oci-archive:",
    "\"docker://",
    "\"docker-archive:",
];

/// Runs every check; fails listing every violation.
pub fn run() -> Result<()> {
    let violations = check_all(&workspace_root())?;
    if violations.is_empty() {
        eprintln!("tidy: all boundaries hold");
        return Ok(());
    }
    for violation in &violations {
        eprintln!("tidy: {violation}");
    }
    bail!("{} tidy violation(s)", violations.len())
}

fn check_all(root: &Path) -> Result<Vec<String>> {
    let crates = workspace_crates(root)?;
    let mut violations = dependency_violations(&crates);
    violations.extend(no_std_fs_in_core(root)?);
    violations.extend(one_test_binary_per_crate(&crates)?);
    violations.extend(crates_named_in_architecture(root, &crates)?);
    violations.extend(no_transport_parsing_in_cli(root)?);
    Ok(violations)
}

/// A workspace crate: its directory and the workspace crates it depends on (not for tests).
struct Crate {
    dir: PathBuf,
    depends_on: Vec<String>,
}

fn workspace_crates(root: &Path) -> Result<BTreeMap<String, Crate>> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value = serde_json::from_slice(&output.stdout).context("cargo metadata")?;
    parse_metadata(&metadata)
}

fn parse_metadata(metadata: &Value) -> Result<BTreeMap<String, Crate>> {
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata without packages")?;
    let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut crates = BTreeMap::new();
    for package in packages {
        let name = package["name"]
            .as_str()
            .context("a package without a name")?;
        let manifest = package["manifest_path"]
            .as_str()
            .context("a package without a manifest path")?;
        let depends_on = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"].as_str() != Some("dev"))
            .filter_map(|d| d["name"].as_str())
            .filter(|d| names.contains(d))
            .map(str::to_owned)
            .collect();
        crates.insert(
            name.to_owned(),
            Crate {
                dir: Path::new(manifest)
                    .parent()
                    .context("a manifest path without a directory")?
                    .to_path_buf(),
                depends_on,
            },
        );
    }
    Ok(crates)
}

fn layer_of(name: &str) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (_, members))| members.contains(&name))
        .map(|(i, (layer, _))| (i, *layer))
}

/// Dependencies point down the layers; backends never depend on each other; oci-image on no
/// backend; nothing on the CLI.
fn dependency_violations(crates: &BTreeMap<String, Crate>) -> Vec<String> {
    let mut violations = Vec::new();
    for (name, krate) in crates {
        if name == "xtask" {
            continue;
        }
        let Some((layer, _)) = layer_of(name) else {
            violations.push(format!(
                "every crate has a layer in xtask's tidy.rs: {name} has none"
            ));
            continue;
        };
        for dependency in &krate.depends_on {
            let Some((dependency_layer, layer_name)) = layer_of(dependency) else {
                continue;
            };
            if dependency == "oci-cli" {
                violations.push(format!(
                    "no crate depends on the CLI: {name} depends on oci-cli"
                ));
            } else if BACKENDS.contains(&name.as_str()) && BACKENDS.contains(&dependency.as_str()) {
                violations.push(format!(
                    "backends never depend on each other: {name} depends on {dependency}"
                ));
            } else if name == "oci-image" && BACKENDS.contains(&dependency.as_str()) {
                violations.push(format!(
                    "oci-image works over any store and depends on no backend: {name} depends on {dependency}"
                ));
            } else if dependency_layer >= layer {
                violations.push(format!(
                    "dependencies point down ({layer_name} is not below {name}): {name} depends on {dependency}"
                ));
            }
        }
    }
    violations
}

/// oci-core knows nothing of the filesystem: every byte goes through a store.
fn no_std_fs_in_core(root: &Path) -> Result<Vec<String>> {
    let mut violations = Vec::new();
    for file in rust_files(&root.join("crates/oci-core/src"))? {
        let text = fs::read_to_string(&file).with_context(|| file.display().to_string())?;
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if code.contains("std::fs") || code.contains("File::open") {
                violations.push(format!(
                    "oci-core never touches the filesystem: {}:{} uses std::fs",
                    relative(root, &file),
                    number + 1
                ));
            }
        }
    }
    Ok(violations)
}

/// Each crate links its integration tests into one binary (`tests/<name>/main.rs` or one
/// `tests/<name>.rs`): every further binary is another link of the whole dependency tree.
fn one_test_binary_per_crate(crates: &BTreeMap<String, Crate>) -> Result<Vec<String>> {
    let mut violations = Vec::new();
    for (name, krate) in crates {
        let tests = krate.dir.join("tests");
        let Ok(entries) = fs::read_dir(&tests) else {
            continue;
        };
        let mut binaries = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let is_binary = if path.is_dir() {
                path.join("main.rs").is_file()
            } else {
                path.extension().is_some_and(|e| e == "rs")
            };
            if is_binary && let Some(file_name) = path.file_name() {
                binaries.push(file_name.to_string_lossy().into_owned());
            }
        }
        binaries.sort();
        if binaries.len() > 1 {
            violations.push(format!(
                "one integration-test binary per crate: {name} has {}",
                binaries.join(", ")
            ));
        }
    }
    Ok(violations)
}

/// docs/architecture.md says where things live: every crate has its place there.
fn crates_named_in_architecture(
    root: &Path,
    crates: &BTreeMap<String, Crate>,
) -> Result<Vec<String>> {
    let path = root.join("docs/architecture.md");
    let text = fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(crates
        .iter()
        .filter(|(name, krate)| {
            let dir = relative(root, &krate.dir);
            ![format!("`{dir}`"), format!("`{dir}/`"), format!("`{name}`")]
                .iter()
                .any(|needle| text.contains(needle.as_str()))
        })
        .map(|(name, _)| format!("every crate is named in docs/architecture.md: {name} is not"))
        .collect())
}

/// Turning `oci:`, `oci-archive:`, `docker://` names into stores is library code.
fn no_transport_parsing_in_cli(root: &Path) -> Result<Vec<String>> {
    let mut violations = Vec::new();
    for file in rust_files(&root.join("crates/oci-cli/src"))? {
        let text = fs::read_to_string(&file).with_context(|| file.display().to_string())?;
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if let Some(prefix) = TRANSPORT_PREFIXES.iter().find(|p| code.contains(**p)) {
                violations.push(format!(
                    "store names are parsed in oci-transport, not the CLI: {}:{} has {prefix}",
                    relative(root, &file),
                    number + 1
                ));
            }
        }
    }
    Ok(violations)
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package(name: &str, dependencies: &[(&str, &str)]) -> Value {
        json!({
            "name": name,
            "manifest_path": format!("/w/crates/{name}/Cargo.toml"),
            "dependencies": dependencies
                .iter()
                .map(|(dep, kind)| json!({"name": dep, "kind": if kind.is_empty() { Value::Null } else { json!(kind) }}))
                .collect::<Vec<_>>(),
        })
    }

    fn violations_of(packages: &[Value]) -> Vec<String> {
        let crates = parse_metadata(&json!({ "packages": packages })).expect("valid metadata");
        dependency_violations(&crates)
    }

    fn workspace_as_designed(extra: Option<(&str, &str, &str)>) -> Vec<Value> {
        let mut deps: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("oci-digest", vec![]),
            ("oci-reference", vec![("oci-digest", "")]),
            ("oci-core", vec![("oci-digest", "")]),
            ("oci-dir", vec![("oci-core", "")]),
            (
                "oci-tar",
                vec![("oci-core", ""), ("oci-reference", ""), ("oci-dir", "dev")],
            ),
            (
                "oci-registry",
                vec![("oci-core", ""), ("oci-reference", ""), ("oci-dir", "dev")],
            ),
            ("oci-image", vec![("oci-core", ""), ("oci-dir", "dev")]),
            ("oci-transport", vec![("oci-dir", ""), ("oci-tar", "")]),
            (
                "oci-cli",
                vec![("oci-transport", ""), ("oci-image", ""), ("oci-core", "")],
            ),
        ];
        if let Some((from, to, kind)) = extra {
            deps.iter_mut()
                .find(|(name, _)| *name == from)
                .expect("a crate of the list")
                .1
                .push((to, kind));
        }
        deps.iter().map(|(name, d)| package(name, d)).collect()
    }

    #[test]
    fn the_designed_dependency_graph_passes() {
        assert_eq!(
            violations_of(&workspace_as_designed(None)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_backend_depending_on_another_is_named_with_both_crates_on_one_line() {
        let found = violations_of(&workspace_as_designed(Some(("oci-tar", "oci-dir", ""))));
        assert_eq!(
            found,
            vec!["backends never depend on each other: oci-tar depends on oci-dir".to_owned()]
        );
    }

    #[test]
    fn upward_and_cli_dependencies_are_refused() {
        let found = violations_of(&workspace_as_designed(Some(("oci-core", "oci-dir", ""))));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("oci-core depends on oci-dir"),
            "{found:?}"
        );
        let found = violations_of(&workspace_as_designed(Some(("oci-image", "oci-tar", ""))));
        assert!(
            found[0].contains("depends on no backend: oci-image depends on oci-tar"),
            "{found:?}"
        );
        let found = violations_of(&workspace_as_designed(Some(("oci-dir", "oci-cli", ""))));
        assert!(
            found[0].contains("no crate depends on the CLI: oci-dir depends on oci-cli"),
            "{found:?}"
        );
    }

    /// The real workspace, as it is: every rule holds.
    #[test]
    fn the_workspace_is_tidy() {
        let violations = check_all(&workspace_root()).expect("the checks run");
        assert!(violations.is_empty(), "{}", violations.join("\n"));
    }
}
