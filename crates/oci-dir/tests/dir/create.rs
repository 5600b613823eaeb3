//! `DirLayout::create`: a new layout built beside its root and renamed there, stale staging
//! directories swept, and the cases created in place.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use oci_core::{Error, seed};
use oci_dir::{DirLayout, STAGING_MARKER};

/// The names in `dir` that are staging directories of `name`.
fn staging_dirs(dir: &Path, name: &str) -> Vec<String> {
    let prefix = format!(".{name}{STAGING_MARKER}");
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    names.sort();
    names
}

fn is_layout(root: &Path) {
    assert!(root.join("blobs").is_dir(), "{}", root.display());
    assert!(root.join("oci-layout").is_file(), "{}", root.display());
    let opened = DirLayout::open(root).unwrap();
    assert!(seed::read_index(&opened).unwrap().manifests().is_empty());
    seed::read_image_layout(&opened).unwrap();
}

#[test]
fn create_into_a_missing_path() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a/b/layout");
    let layout = DirLayout::create(&root).unwrap();
    assert_eq!(layout.root(), fs::canonicalize(&root).unwrap());
    is_layout(&root);
    assert!(staging_dirs(&tmp.path().join("a/b"), "layout").is_empty());
}

#[test]
fn create_replaces_an_empty_directory_and_keeps_its_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("empty");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o750)).unwrap();
    let before = fs::metadata(&root).unwrap();
    DirLayout::create(&root).unwrap();
    is_layout(&root);
    let after = fs::metadata(&root).unwrap();
    assert_eq!(after.permissions().mode() & 0o7777, 0o750);
    // Replaced by the staging directory, not filled in place.
    use std::os::unix::fs::MetadataExt;
    assert_ne!(after.ino(), before.ino());
    assert!(staging_dirs(tmp.path(), "empty").is_empty());
}

#[test]
fn create_in_a_non_empty_directory_is_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("full");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("README"), b"kept").unwrap();
    let before = fs::metadata(&root).unwrap();
    DirLayout::create(&root).unwrap();
    is_layout(&root);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&root).unwrap().ino(), before.ino());
    assert_eq!(fs::read(root.join("README")).unwrap(), b"kept");
    assert!(staging_dirs(tmp.path(), "full").is_empty());
}

#[test]
fn create_refuses_an_existing_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("layout");
    DirLayout::create(&root).unwrap();
    let index = fs::read(root.join("index.json")).unwrap();
    let error = DirLayout::create(&root).unwrap_err();
    assert!(matches!(error, Error::InvalidLayout { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&*root.to_string_lossy()),
        "{error}"
    );
    assert_eq!(fs::read(root.join("index.json")).unwrap(), index);
    assert!(staging_dirs(tmp.path(), "layout").is_empty());
}

#[test]
fn stale_staging_directories_are_swept_and_live_ones_kept() {
    let tmp = tempfile::tempdir().unwrap();
    // Left by a create that died: unlocked, half built.
    let stale = tmp.path().join(format!(".layout{STAGING_MARKER}dead"));
    fs::create_dir_all(stale.join("blobs/sha256")).unwrap();
    fs::write(stale.join("oci-layout"), b"{}").unwrap();
    // Being built by a live create: locked.
    let live = tmp.path().join(format!(".layout{STAGING_MARKER}live"));
    fs::create_dir(&live).unwrap();
    let held = File::open(&live).unwrap();
    held.lock().unwrap();
    // Another root's staging directory is not this create's business.
    let other = tmp.path().join(format!(".other{STAGING_MARKER}dead"));
    fs::create_dir(&other).unwrap();

    DirLayout::create(tmp.path().join("layout")).unwrap();
    is_layout(&tmp.path().join("layout"));
    assert!(!stale.exists(), "a stale staging directory was not swept");
    assert!(live.is_dir(), "a live staging directory was swept");
    assert!(other.is_dir());

    // Once its owner is gone, the next create sweeps it.
    drop(held);
    DirLayout::create(tmp.path().join("layout2")).unwrap();
    assert!(
        live.is_dir(),
        "only `.layout2` staging directories are swept for layout2"
    );
    fs::remove_dir_all(tmp.path().join("layout")).unwrap();
    DirLayout::create(tmp.path().join("layout")).unwrap();
    assert!(!live.exists());
}
