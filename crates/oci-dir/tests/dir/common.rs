//! Helpers shared by the modules of the `dir` test binary.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::{Digest, Error, Result, seed};
use oci_dir::{DirLayout, DirOptions, Durability};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The shared conformance corpus; a missing corpus is a failure, never a skip.
pub fn corpus() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    assert!(
        path.join("layouts").is_dir(),
        "the conformance corpus is missing at {}: the repository must be cloned beside shared/",
        path.display()
    );
    path
}

/// A corpus layout, by folder name (read only: copy it before writing).
pub fn corpus_layout(name: &str) -> PathBuf {
    let path = corpus().join("layouts").join(name);
    assert!(path.is_dir(), "corpus layout {} is missing", path.display());
    path
}

/// Copies a directory tree of regular files, making the copies writable by their owner.
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            assert!(
                kind.is_file(),
                "{} is not a regular file",
                entry.path().display()
            );
            fs::copy(entry.path(), &target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// A copy of a corpus layout in a fresh temporary directory, opened.
pub fn corpus_copy(name: &str) -> (TempDir, DirLayout) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(name);
    copy_tree(&corpus_layout(name), &root);
    let layout = DirLayout::open(&root).unwrap();
    (tmp, layout)
}

/// Relaxed options: for tests where durability is not what is checked.
pub fn relaxed() -> DirOptions {
    DirOptions {
        durability: Durability::Relaxed,
        ..DirOptions::default()
    }
}

/// A fresh layout at `<tmp>/layout`, created with `options`.
pub fn new_layout_with(options: DirOptions) -> (TempDir, DirLayout) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = DirLayout::create_with(
        tmp.path().join("layout"),
        options,
        &seed::InitOptions::default(),
    )
    .unwrap();
    (tmp, layout)
}

/// A fresh layout with the default (durable, verifying) options.
pub fn new_layout() -> (TempDir, DirLayout) {
    new_layout_with(DirOptions::default())
}

/// Every entry under `dir` that is not a directory (files, symlinks, FIFOs…), recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// What a file looks like from outside: type and permission bits (`st_mode`), size and
/// modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub mode: u32,
    pub size: u64,
    pub modified: SystemTime,
}

/// Every path under `root` (`root` itself and directories included, symlinks not followed)
/// with its [`FileState`]: two equal snapshots mean nothing was created, removed, renamed or
/// written (a directory's mtime moves when a name in it comes or goes, even a temp file's).
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, FileState> {
    fn walk(path: &Path, into: &mut BTreeMap<PathBuf, FileState>) {
        let metadata = fs::symlink_metadata(path).unwrap();
        into.insert(
            path.to_path_buf(),
            FileState {
                mode: metadata.mode(),
                size: metadata.len(),
                modified: metadata.modified().unwrap(),
            },
        );
        if metadata.is_dir() {
            for entry in fs::read_dir(path).unwrap() {
                walk(&entry.unwrap().path(), into);
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(root, &mut found);
    found
}

/// An error and its causes, joined with ": ", as the CLI prints them: `Display` of a store
/// error names where it happened, the cause is its `source`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

/// Entries of the layout root whose names start with the temp-file prefix.
pub fn temp_debris(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = files_under(root)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(oci_dir::TEMP_PREFIX))
        })
        .collect();
    found.sort();
    found
}

/// The process umask, from `/proc/self/status` (the modes the seed asks for are subject to it).
pub fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("/proc/self/status has a Umask line");
    u32::from_str_radix(line.trim(), 8).unwrap()
}

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Reads a stream to its end.
pub fn read_all(mut reader: impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The error of `result`, which must be one.
pub fn err<T: std::fmt::Debug>(result: Result<T>) -> Error {
    match result {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(e) => e,
    }
}

/// The digest of a descriptor, parsed strictly.
pub fn digest_of(descriptor: &Descriptor) -> Digest {
    Digest::try_from(descriptor.digest()).unwrap()
}

/// The ref names of the index entries, in order.
pub fn ref_names(layout: &DirLayout) -> Vec<Option<String>> {
    seed::read_index(layout)
        .unwrap()
        .manifests()
        .iter()
        .map(|d| oci_core::index::ref_name(d).map(str::to_owned))
        .collect()
}

/// An image written into a layout.
pub struct Image {
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl Image {
    /// Every blob of the image.
    pub fn digests(&self) -> BTreeSet<Digest> {
        std::iter::once(&self.manifest)
            .chain(std::iter::once(&self.config))
            .chain(&self.layers)
            .map(digest_of)
            .collect()
    }

    /// The total size of its blobs.
    pub fn bytes(&self) -> u64 {
        std::iter::once(&self.manifest)
            .chain(std::iter::once(&self.config))
            .chain(&self.layers)
            .map(Descriptor::size)
            .sum()
    }
}

/// Writes an OCI image: `config` as its config, `layers` as its layers, and its manifest.
pub fn write_image(layout: &DirLayout, config: &Value, layers: &[&[u8]]) -> Image {
    let config = seed::write_json_blob(layout, config, MediaType::ImageConfig).unwrap();
    let layers: Vec<Descriptor> = layers
        .iter()
        .map(|bytes| {
            let digest = seed::write_blob(layout, bytes).unwrap();
            Descriptor::new(MediaType::ImageLayerGzip, bytes.len() as u64, digest)
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config,
        "layers": layers,
    });
    let manifest = seed::write_json_blob(layout, &manifest, MediaType::ImageManifest).unwrap();
    Image {
        manifest,
        config,
        layers,
    }
}

/// A small linux/amd64 image.
pub fn small_image(layout: &DirLayout) -> Image {
    write_image(
        layout,
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
        &[b"layer one", b"layer two"],
    )
}
