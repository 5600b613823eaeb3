//! Replays every committed fuzz input as an ordinary test: the seed corpus
//! (`corpus/<target>/`) and the minimised crashes (`regressions/<target>/`), through the same
//! function the fuzz target calls. A target whose corpus is missing or empty fails.

use std::fs;
use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        // Hidden files (editor debris, `.gitkeep`) are not inputs.
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = oci_layout_fuzz::TARGETS
        .into_iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = inputs(&root.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "no seed corpus in fuzz/corpus/{target}: the replay would test nothing"
    );
    let regressions = inputs(&root.join("regressions").join(target));
    for input in corpus.iter().chain(&regressions) {
        let data = fs::read(input).expect("reading a corpus file");
        eprintln!("replaying {}", input.display());
        run(&data);
    }
    eprintln!(
        "{target}: {} seed inputs, {} regressions replayed",
        corpus.len(),
        regressions.len()
    );
}

#[test]
fn digest_parse() {
    replay("digest_parse");
}

#[test]
fn index_ops() {
    replay("index_ops");
}

#[test]
fn manifest_walk() {
    replay("manifest_walk");
}

#[test]
fn tar_reader() {
    replay("tar_reader");
}

#[test]
fn compressed_reader() {
    replay("compressed_reader");
}

#[test]
fn image_reference() {
    replay("image_reference");
}

#[test]
fn www_authenticate() {
    replay("www_authenticate");
}
