//! Hostile archives, each read by TarArchive and unpacked into a fresh layout: refused or
//! skipped with a message, nothing written outside the target, no unverified blob left.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_core::prelude::*;
use oci_core::{BlobListing, Error};
use oci_dir::DirLayout;
use oci_tar::{ExpansionLimit, TarArchive, UnpackReport};
use tar::EntryType;

use crate::common::{Image, RawTar, has, new_layout, sha256, snapshot, verify_blob_files};

/// A tempdir holding the archive, a sentinel file, a directory `outside/` and the target
/// layout `target/`. Everything but `target/` must be left as it was.
struct Sandbox {
    dir: tempfile::TempDir,
    /// A name unique to this sandbox, for escape destinations above it.
    unique: String,
}

/// What happened to one hostile archive.
struct Outcome {
    open: Result<TarArchive, Error>,
    unpack: Result<UnpackReport, Error>,
    layout: DirLayout,
    /// The blobs found in the target after unpacking, all verified.
    target_blobs: Vec<Digest>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("sentinel.txt"), b"must not change").unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/keep"), b"outside content").unwrap();
        let unique = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        Sandbox { dir, unique }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn target(&self) -> PathBuf {
        self.path().join("target")
    }

    /// Paths above the sandbox that an escaping entry might create.
    fn escape_destinations(&self) -> Vec<PathBuf> {
        let parent = self.path().parent().unwrap();
        vec![
            parent.join(format!("{}-escaped", self.unique)),
            parent.join(format!("{}-abs", self.unique)),
        ]
    }

    fn outside_target(&self) -> BTreeMap<PathBuf, String> {
        snapshot(self.path())
            .into_iter()
            .filter(|(p, _)| !p.starts_with("target"))
            .collect()
    }

    /// Opens `bytes` with TarArchive (reading everything it lists) and unpacks them into a
    /// fresh layout, checking the invariants every hostile archive must keep.
    fn run(&self, bytes: &[u8]) -> Outcome {
        let archive_path = self.path().join("hostile.tar");
        fs::write(&archive_path, bytes).unwrap();
        let before = self.outside_target();

        let open = TarArchive::open(&archive_path);
        if let Ok(archive) = &open {
            for digest in archive.list_blobs().unwrap() {
                let _ = seed::read_blob(archive, digest);
            }
            let _ = archive.index();
        }
        let layout = new_layout(&self.target());
        let unpack = oci_tar::unpack(
            fs::File::open(&archive_path).unwrap(),
            std::path::Path::new("archive"),
            &layout,
            ExpansionLimit::default(),
        );

        assert_eq!(
            before,
            self.outside_target(),
            "something outside the target changed"
        );
        for path in self.escape_destinations() {
            assert!(
                fs::symlink_metadata(&path).is_err(),
                "{} was created",
                path.display()
            );
        }
        // The target holds a layout (and the cache unpack's index update leaves) and nothing
        // else: no links, no devices, no strays.
        for (path, kind) in snapshot(&self.target()) {
            let top = path.components().next().unwrap().as_os_str().to_owned();
            assert!(
                ["blobs", "index.json", "oci-layout", oci_core::CACHE_DIR]
                    .iter()
                    .any(|t| top == *t),
                "unexpected {} in the target",
                path.display()
            );
            assert!(
                !kind.starts_with("<") || kind == "<dir>",
                "{} is {kind}",
                path.display()
            );
        }
        let target_blobs = verify_blob_files(&self.target());
        Outcome {
            open,
            unpack,
            layout,
            target_blobs,
        }
    }
}

fn assert_all_mention(messages: &[String], needle: &str, count: usize, who: &str) {
    let matching = messages.iter().filter(|m| m.contains(needle)).count();
    assert_eq!(
        matching, count,
        "{who}: expected {count} messages mentioning {needle:?}, got {messages:#?}"
    );
}

/// The image's blobs and tag are intact in both readers (the hostile entries were skipped).
fn assert_image_intact(outcome: &Outcome, image: &Image) {
    let archive = outcome.open.as_ref().unwrap();
    for blob in image.blobs() {
        assert_eq!(seed::read_blob(archive, sha256(blob)).unwrap(), blob);
    }
    assert_eq!(
        archive.resolve("v1").unwrap().digest(),
        image.manifest_descriptor.digest()
    );
    assert_eq!(outcome.target_blobs, image.digests());
    assert_eq!(
        outcome.layout.resolve("v1").unwrap().digest(),
        image.manifest_descriptor.digest()
    );
}

fn skipped_by_both(outcome: &Outcome) -> (&[String], &[String]) {
    let open = outcome.open.as_ref().unwrap();
    let unpack = outcome.unpack.as_ref().unwrap();
    (open.skipped(), &unpack.skipped)
}

#[test]
fn dotdot_entries_are_skipped() {
    let sandbox = Sandbox::new();
    let image = Image::new("dotdot");
    let blob = b"escaping content".to_vec();
    let names: Vec<String> = vec![
        "../escaped".into(),
        "./../escaped-dot".into(),
        format!("../../{}-escaped", sandbox.unique),
        "blobs/../../escaped-blobs".into(),
        format!("blobs/sha256/../../../{}", sha256(&blob).encoded()),
        "blobs/sha256/..".into(),
        "../index.json".into(),
        "../outside/keep".into(),
    ];
    let mut tar = RawTar::new();
    image.append_to(&mut tar);
    for name in &names {
        tar.raw_file(name.as_bytes(), &blob);
    }
    let outcome = sandbox.run(&tar.finish());
    let (open, unpack) = skipped_by_both(&outcome);
    assert_all_mention(open, "leads outside the layout", names.len(), "TarArchive");
    assert_all_mention(unpack, "leads outside the layout", names.len(), "unpack");
    assert_image_intact(&outcome, &image);
}

#[test]
fn absolute_entries_are_skipped() {
    let sandbox = Sandbox::new();
    let image = Image::new("absolute");
    let blob = b"absolute content".to_vec();
    let inside = sandbox.path().join("abs-escaped");
    let above = sandbox
        .path()
        .parent()
        .unwrap()
        .join(format!("{}-abs", sandbox.unique));
    let names: Vec<String> = vec![
        inside.to_str().unwrap().to_owned(),
        above.to_str().unwrap().to_owned(),
        sandbox
            .path()
            .join("outside/keep")
            .to_str()
            .unwrap()
            .to_owned(),
        "/index.json".into(),
        format!("/blobs/sha256/{}", sha256(&blob).encoded()),
        "//oci-layout".into(),
    ];
    let mut tar = RawTar::new();
    image.append_to(&mut tar);
    for name in &names {
        tar.raw_file(name.as_bytes(), &blob);
    }
    let outcome = sandbox.run(&tar.finish());
    let (open, unpack) = skipped_by_both(&outcome);
    assert_all_mention(open, "leads outside the layout", names.len(), "TarArchive");
    assert_all_mention(unpack, "leads outside the layout", names.len(), "unpack");
    assert_image_intact(&outcome, &image);
    assert!(!has(&outcome.layout, sha256(&blob)));
}

#[test]
fn symlink_entries_are_skipped() {
    let sandbox = Sandbox::new();
    let image = Image::new("symlink");
    let passwd_digest = sha256(&fs::read("/etc/passwd").unwrap_or_default());
    let outside = sandbox.path().join("outside");
    let through_link = b"written through a symlinked directory".to_vec();
    let mut tar = RawTar::new();
    tar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    // A directory of the layout as a symlink to a directory outside, then a blob "in" it.
    tar.link(
        b"blobs/sha256",
        EntryType::Symlink,
        outside.to_str().unwrap(),
    );
    tar.link(
        b"blobs/sha256/",
        EntryType::Symlink,
        outside.to_str().unwrap(),
    );
    tar.link(b"blobs", EntryType::Symlink, outside.to_str().unwrap());
    tar.blob(&through_link);
    // Blobs named by digest that point at files outside.
    tar.link(
        passwd_digest.blob_entry_name().as_bytes(),
        EntryType::Symlink,
        "/etc/passwd",
    );
    tar.link(
        sha256(&image.config).blob_entry_name().as_bytes(),
        EntryType::Symlink,
        "../../../outside/keep",
    );
    tar.link(b"index.json", EntryType::Symlink, "/etc/passwd");
    tar.link(b"oci-layout", EntryType::Symlink, "/etc/hostname");
    tar.blob(&image.layer);
    tar.blob(&image.manifest);
    tar.file("index.json", &image.index);
    let outcome = sandbox.run(&tar.finish());
    let (open, unpack) = skipped_by_both(&outcome);
    for (who, skipped) in [("TarArchive", open), ("unpack", unpack)] {
        assert_all_mention(skipped, "is a Symlink, not a regular file", 7, who);
    }
    let archive = outcome.open.as_ref().unwrap();
    for missing in [passwd_digest, sha256(&image.config)] {
        assert!(!has(archive, missing));
        assert!(
            seed::read_blob(archive, missing)
                .unwrap_err()
                .is_not_found()
        );
        assert!(!has(&outcome.layout, missing));
    }
    assert_eq!(
        seed::read_blob(archive, sha256(&through_link)).unwrap(),
        through_link
    );
    // The blob went into a real blobs/sha256 of the target.
    let mut expected = vec![
        sha256(&through_link),
        sha256(&image.layer),
        sha256(&image.manifest),
    ];
    expected.sort();
    assert_eq!(outcome.target_blobs, expected);
    assert!(
        fs::symlink_metadata(sandbox.target().join("blobs/sha256"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(
        outcome.layout.resolve("v1").unwrap().digest(),
        image.manifest_descriptor.digest()
    );
}

#[test]
fn hard_link_entries_are_skipped() {
    let sandbox = Sandbox::new();
    let image = Image::new("hardlink");
    let passwd_digest = sha256(&fs::read("/etc/passwd").unwrap_or_default());
    let mut tar = RawTar::new();
    image.append_to(&mut tar);
    let extra = sha256(b"linked");
    tar.link(
        passwd_digest.blob_entry_name().as_bytes(),
        EntryType::Link,
        "/etc/passwd",
    );
    tar.link(
        extra.blob_entry_name().as_bytes(),
        EntryType::Link,
        "index.json",
    );
    tar.link(b"index.json", EntryType::Link, "../outside/keep");
    let outcome = sandbox.run(&tar.finish());
    let (open, unpack) = skipped_by_both(&outcome);
    for (who, skipped) in [("TarArchive", open), ("unpack", unpack)] {
        assert_all_mention(skipped, "is a Link, not a regular file", 3, who);
    }
    assert_image_intact(&outcome, &image);
    for missing in [passwd_digest, extra] {
        assert!(!has(outcome.open.as_ref().unwrap(), missing));
        assert!(!has(&outcome.layout, missing));
    }
}

#[test]
fn device_and_fifo_entries_are_skipped() {
    let sandbox = Sandbox::new();
    let image = Image::new("devices");
    let names = [sha256(b"char"), sha256(b"block"), sha256(b"fifo")];
    let mut tar = RawTar::new();
    image.append_to(&mut tar);
    tar.special(names[0].blob_entry_name().as_bytes(), EntryType::Char);
    tar.special(names[1].blob_entry_name().as_bytes(), EntryType::Block);
    tar.special(names[2].blob_entry_name().as_bytes(), EntryType::Fifo);
    tar.special(b"index.json", EntryType::Fifo);
    tar.special(b"dev-null", EntryType::Char);
    let outcome = sandbox.run(&tar.finish());
    let (open, unpack) = skipped_by_both(&outcome);
    for (who, skipped) in [("TarArchive", open), ("unpack", unpack)] {
        assert_all_mention(skipped, "is a Char, not a regular file", 1, who);
        assert_all_mention(skipped, "is a Block, not a regular file", 1, who);
        assert_all_mention(skipped, "is a Fifo, not a regular file", 2, who);
        assert_all_mention(skipped, "\"dev-null\" is not part of a layout", 1, who);
        assert_eq!(skipped.len(), 5, "{who}: {skipped:#?}");
    }
    assert_image_intact(&outcome, &image);
    for missing in names {
        assert!(!has(&outcome.layout, missing));
    }
}

#[test]
fn invalid_blob_names_are_skipped() {
    let sandbox = Sandbox::new();
    let image = Image::new("names");
    let data = b"misnamed".to_vec();
    let hex = sha256(&data).encoded();
    let names: Vec<String> = vec![
        "blobs/sha256/xyz".into(),
        format!("blobs/md5/{}", &hex[..32]),
        "blobs/md5/".into(),
        format!("blobs/sha256/{}", hex.to_uppercase()),
        format!("blobs/sha256/{}", &hex[..63]),
        format!("blobs/sha256/{hex}0"),
        format!("blobs/sha256/{hex}/nested"),
        format!("blobs/{hex}"),
        format!("blobs/sha512/{hex}"),
        "blobs/sha256/.tmp-upload".into(),
    ];
    let mut tar = RawTar::new();
    image.append_to(&mut tar);
    for name in &names {
        tar.raw_file(name.as_bytes(), &data);
    }
    let outcome = sandbox.run(&tar.finish());
    let (open, unpack) = skipped_by_both(&outcome);
    for (who, skipped) in [("TarArchive", open), ("unpack", unpack)] {
        assert_all_mention(skipped, "is not a valid blob path", names.len(), who);
        for name in &names {
            assert!(
                skipped.iter().any(|m| m.contains(&format!("{name:?}"))),
                "{who}: no message names {name:?}: {skipped:#?}"
            );
        }
    }
    assert_image_intact(&outcome, &image);

    // fsck of the archive names each one; the misnamed file under a known algorithm is an
    // error, the rest (unknown algorithms, temp names, nesting) too or warnings.
    let report = oci_core::fsck::fsck(outcome.open.as_ref().unwrap()).unwrap();
    assert!(!report.is_clean(), "{:#?}", report.findings);
    for name in &names {
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.subject.ends_with(name.as_str())),
            "fsck does not name {name:?}: {:#?}",
            report.findings
        );
    }
    assert!(
        report
            .errors()
            .any(|f| f.subject.ends_with("blobs/sha256/xyz")
                && f.problem.contains("not a valid digest")),
        "{:#?}",
        report.findings
    );
}

/// An image plus a 100 KiB blob before `index.json`; returns the archive, the big blob's
/// content offset and the offset of the `index.json` header.
fn archive_with_big_blob(image: &Image) -> (Vec<u8>, Vec<u8>, u64, u64) {
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let mut tar = RawTar::new();
    tar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for blob in image.blobs() {
        tar.blob(blob);
    }
    tar.blob(&big);
    tar.file("index.json", &image.index);
    let bytes = tar.finish();
    let mut reader = tar::Archive::new(&bytes[..]);
    let mut big_offset = 0;
    let mut index_header = 0;
    for entry in reader.entries().unwrap() {
        let entry = entry.unwrap();
        if entry.path_bytes().as_ref() == sha256(&big).blob_entry_name().as_bytes() {
            big_offset = entry.raw_file_position();
        }
        if entry.path_bytes().as_ref() == b"index.json" {
            index_header = entry.raw_header_position();
        }
    }
    assert!(big_offset > 0 && index_header > big_offset);
    (bytes, big, big_offset, index_header)
}

#[test]
fn truncated_archives_are_refused() {
    let image = Image::new("truncated");
    let (bytes, big, big_offset, index_header) = archive_with_big_blob(&image);
    // (what, where, whether the big blob is whole before the cut)
    let cuts = [
        ("mid-blob", big_offset + 50_007, false),
        ("mid-blob on a block boundary", big_offset + 512 * 50, false),
        ("inside the blob's header", big_offset - 300, false),
        ("inside the index header", index_header + 100, true),
    ];
    for (what, cut, big_is_whole) in cuts {
        let sandbox = Sandbox::new();
        let outcome = sandbox.run(&bytes[..cut as usize]);
        let err = outcome
            .open
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("{what}: TarArchive opened a truncated archive"));
        let message = err.to_string();
        assert!(
            message.contains("truncated"),
            "{what}: TarArchive error does not say truncated: {message}"
        );
        let err = outcome
            .unpack
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("{what}: unpack accepted a truncated archive"));
        let message = err.to_string();
        let big_digest = sha256(&big).to_string();
        if cut > big_offset && !big_is_whole {
            assert!(message.contains(&big_digest), "{what}: {message}");
        } else {
            assert!(message.contains("truncated"), "{what}: {message}");
        }
        assert_eq!(
            outcome.target_blobs.contains(&sha256(&big)),
            big_is_whole,
            "{what}: only a whole (verified) blob may be published"
        );
        assert!(
            outcome.layout.resolve("v1").is_err(),
            "{what}: the index of a truncated archive was merged"
        );
    }
    // The control: the whole archive is fine.
    let outcome = Sandbox::new().run(&bytes);
    assert!(outcome.open.is_ok() && outcome.unpack.is_ok());
    assert!(outcome.target_blobs.contains(&sha256(&big)));
}

#[test]
fn blob_not_matching_its_name_is_refused() {
    for (what, content) in [
        ("same size", b"the actual content!".to_vec()),
        ("other size", b"short".to_vec()),
    ] {
        let sandbox = Sandbox::new();
        let image = Image::new("mismatch");
        let claimed = sha256(b"the claimed content");
        let mut tar = RawTar::new();
        tar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        tar.blob(&image.layer);
        tar.file(&claimed.blob_entry_name(), &content);
        tar.blob(&image.config);
        tar.blob(&image.manifest);
        tar.file("index.json", &image.index);
        let outcome = sandbox.run(&tar.finish());

        let archive = outcome.open.as_ref().unwrap();
        assert!(has(archive, claimed), "{what}: listed by name");
        let err = seed::read_blob(archive, claimed).unwrap_err();
        assert!(
            matches!(err, Error::UnexpectedDigest { expected, .. } if expected == claimed),
            "{what}: {err}"
        );
        assert_eq!(
            seed::read_blob(archive, sha256(&image.layer)).unwrap(),
            image.layer
        );

        let err = outcome.unpack.as_ref().unwrap_err();
        assert!(
            err.to_string().contains(&claimed.to_string()),
            "{what}: the unpack error does not name the blob: {err}"
        );
        assert!(!outcome.target_blobs.contains(&claimed), "{what}");
        assert!(
            !outcome.target_blobs.contains(&sha256(&content)),
            "{what}: the content was published under its own name"
        );
    }
}
