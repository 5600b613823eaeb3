//! The commands that create a layout (`init`, `image create`, `unpack`): what they do with the
//! directory they are given (missing, empty, someone else's, an unfinished layout), what a
//! failed or killed `unpack` leaves, and what an `unpack` merge says it replaced.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

const MARKER: &str = ".oci-layout-init";

/// A small tree for `image create --from-dir`.
fn source_tree(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir_all(src.join("etc")).unwrap();
    fs::write(src.join("etc/hello"), b"hello\n").unwrap();
    src
}

/// A packed layout with one tagged image, `v1`; returns the archive and the image's digest.
fn archive(dir: &Path, label: &str) -> (PathBuf, String) {
    let source = Layout::new();
    let image = source.image("amd64", "linux", label);
    source.tag(&image.digest, "v1");
    let archive = dir.join(format!("{label}.tar"));
    run(args!["pack", source.dir, archive]).success();
    (archive, image.digest)
}

/// The three ways of making a layout at `dir`.
fn creators(dir: &Path, scratch: &Path) -> Vec<Vec<OsString>> {
    let (archive, _) = archive(scratch, "creators");
    vec![
        args![
            "image",
            "create",
            dir,
            "--tag",
            "y",
            "--from-dir",
            source_tree(scratch)
        ],
        args!["unpack", archive, dir],
        args!["init", dir],
    ]
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

/// Issue #12, item 4: a directory holding someone else's `index.json` is not a layout; no
/// command writes into it, and its file is left byte for byte.
#[test]
fn a_directory_holding_an_unrelated_index_json_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    fs::create_dir(&dir).unwrap();
    let theirs = br#"{"my":"app"}"#;
    fs::write(dir.join("index.json"), theirs).unwrap();
    for command in creators(&dir, tmp.path()) {
        run(command).failure_naming(&[dir.to_str().unwrap(), "oci-layout"]);
        assert_eq!(fs::read(dir.join("index.json")).unwrap(), theirs);
        assert_eq!(names_in(&dir), ["index.json"], "something was written");
    }
}

/// Issue #12, item 5: an existing empty directory is filled in place: its inode, owner, group,
/// mode and extended attributes stay.
#[test]
fn init_image_create_and_unpack_fill_an_existing_directory_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let is_root = fs::metadata(tmp.path()).unwrap().uid() == 0;
    let scratch = tmp.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    for (i, command) in creators(&tmp.path().join("target"), &scratch)
        .into_iter()
        .enumerate()
    {
        let dir = tmp.path().join("target");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        if is_root {
            // nobody:nogroup, as a build container might hand a directory over.
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        }
        rustix::fs::setxattr(&dir, "user.kept", b"yes", rustix::fs::XattrFlags::CREATE)
            .expect("the temporary directory's filesystem takes user xattrs");
        let before = fs::metadata(&dir).unwrap();
        // A process working in the directory (a shell, a build step).
        let mut inside = std::process::Command::new("sleep")
            .arg("60")
            .current_dir(&dir)
            .spawn()
            .unwrap();

        let done = run(command);
        let cwd = fs::read_link(format!("/proc/{}/cwd", inside.id()));
        inside.kill().unwrap();
        inside.wait().unwrap();
        assert_eq!(done.code, 0, "command {i}: {}", done.stderr);
        assert_eq!(
            cwd.unwrap(),
            dir,
            "command {i} left a process in a removed directory"
        );
        let after = fs::metadata(&dir).unwrap();
        assert_eq!(
            after.ino(),
            before.ino(),
            "command {i} replaced the directory"
        );
        assert_eq!(after.permissions().mode() & 0o7777, 0o700, "command {i}");
        assert_eq!(
            (after.uid(), after.gid()),
            (before.uid(), before.gid()),
            "command {i}"
        );
        let mut value = [0u8; 8];
        let len = rustix::fs::getxattr(&dir, "user.kept", &mut value).unwrap();
        assert_eq!(&value[..len], b"yes", "command {i}");
        let (code, report) = crate::integrity::fsck_json(&dir);
        assert_eq!(code, 0, "command {i}: {report:#}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// Issue #12, item 9: an unpack that fails into a directory it created removes it; into an
/// empty directory, it empties it again; into a layout, it changes no tag.
#[test]
fn a_failed_unpack_leaves_the_directory_as_it_found_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, _) = archive(tmp.path(), "truncated");
    let bytes = fs::read(&archive).unwrap();
    // Cut in the middle: the first blobs are written by then.
    let truncated = tmp.path().join("truncated-cut.tar");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();

    let missing = tmp.path().join("a/new");
    run(args!["unpack", truncated, missing]).failure();
    assert!(
        !tmp.path().join("a").exists(),
        "the failed unpack left {missing:?}"
    );

    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let ino = inode(&empty);
    run(args!["unpack", truncated, empty]).failure();
    assert_eq!(names_in(&empty), Vec::<String>::new());
    assert_eq!(inode(&empty), ino);

    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "kept");
    layout.tag(&image.digest, "v1");
    let before = layout.index_bytes();
    run(args!["unpack", truncated, layout.dir]).failure();
    assert_eq!(layout.index_bytes(), before);
}

/// A SIGKILL in the middle of an unpack into a new directory leaves an unfinished layout that
/// no command opens, and the next unpack (or init) there makes a layout of it.
#[test]
fn a_killed_unpack_leaves_an_unfinished_layout_that_is_never_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, digest) = archive(tmp.path(), "killed");
    let bytes = fs::read(&archive).unwrap();
    let dir = tmp.path().join("new");
    let unpacking = args!["unpack", "-", dir];
    let mut child = command(&unpacking)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Half the archive, then nothing: it waits for the rest, mid-unpack.
    stdin.write_all(&bytes[..bytes.len() / 2]).unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !dir.join("blobs").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the unpack never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);

    assert!(dir.join(MARKER).is_file(), "{:?}", names_in(&dir));
    for reader in [
        args!["ls", dir],
        args!["fsck", dir],
        args!["inspect", dir, "v1"],
        args!["blob", "ls", dir],
        args!["tag", dir, digest, "v2"],
        args!["gc", dir],
    ] {
        run(reader).failure_naming(&[dir.to_str().unwrap(), "unfinished"]);
    }
    run(args!["unpack", archive, dir]).success();
    assert!(!dir.join(MARKER).exists());
    let (code, report) = crate::integrity::fsck_json(&dir);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
    let listed = run(args!["ls", dir, "--json"]).success().json();
    assert_eq!(listed[0]["digest"], serde_json::json!(digest));
}

/// Issue #12, item 14: a merge that moves a tag to another manifest says so, one line each.
#[test]
fn unpack_reports_each_tag_it_replaces() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, incoming) = archive(tmp.path(), "incoming");
    let layout = Layout::new();
    let old = layout.image("amd64", "linux", "old");
    layout.tag(&old.digest, "v1");

    let merged = run(args!["unpack", archive, layout.dir]);
    assert_eq!(merged.code, 0, "{}", merged.stderr);
    assert_eq!(
        merged.stderr,
        format!("replaced tag v1: {} -> {incoming}\n", old.digest)
    );
    assert_eq!(layout.entries_named("v1").len(), 1);
    // The same merge again replaces nothing: it says nothing.
    run(args!["unpack", archive, layout.dir]).success();

    let help = run(args!["unpack", "--help"]);
    assert!(
        help.stdout_str().contains("replaced tag"),
        "{}",
        help.stdout_str()
    );
}
