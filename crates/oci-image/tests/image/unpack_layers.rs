//! What an unpack makes of layers: whiteouts, opaque directories, hard links across layers,
//! replacements, metadata, devices as root and rootless, overlay whiteouts, compression,
//! verification, and the target rules.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::{Algorithm, MemoryStore, Store};
use oci_dir::DirLayout;
use oci_image::{
    Compression, Error, ImageBuilder, Layer, LayerOptions, UnpackOptions, Whiteouts, platform,
    resolve_image, unpack_image,
};

use super::unpack_support::*;

fn options() -> UnpackOptions {
    UnpackOptions {
        durable: false,
        ..UnpackOptions::default()
    }
}

fn unpack(
    layers: &[Vec<Entry>],
    options: &UnpackOptions,
) -> (tempfile::TempDir, oci_image::UnpackReport) {
    let store = MemoryStore::new();
    let layers: Vec<Vec<u8>> = layers.iter().map(|l| tar(l)).collect();
    let image = image_of(&store, &layers);
    let tmp = tempfile::tempdir().unwrap();
    let report = unpack_image(&store, &image, &tmp.path().join("dir"), options, None).unwrap();
    (tmp, report)
}

fn read(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join("dir").join(path)).unwrap()
}

fn exists(root: &Path, path: &str) -> bool {
    fs::symlink_metadata(root.join("dir").join(path)).is_ok()
}

fn ino(root: &Path, path: &str) -> u64 {
    fs::symlink_metadata(root.join("dir").join(path))
        .unwrap()
        .ino()
}

#[test]
fn whiteouts_opaque_directories_and_hard_links_across_layers() {
    let (tmp, report) = unpack(
        &[
            vec![
                dir("a", 0o755),
                file("a/f", "one", 0o644),
                link("a/h", "a/f"),
                file("a/g", "g", 0o644),
                file("a/g2", "g2", 0o644),
                dir("d", 0o755),
                file("d/old", "old", 0o644),
                dir("d/olddir", 0o755),
                file("d/olddir/x", "x", 0o644),
                file("x", "a file", 0o644),
                dir("y", 0o755),
                file("y/in", "in", 0o644),
            ],
            vec![
                // A file a lower hard link shares is replaced: the link keeps layer 1's.
                file("a/f", "two", 0o644),
                empty("a/.wh.g"),
                link("a/h2", "a/g2"),
                // A whiteout never removes what its own layer created, before or after it.
                file("a/same", "kept", 0o644),
                empty("a/.wh.same"),
                empty("d/.wh..wh..opq"),
                file("d/new", "new", 0o644),
                // A file becomes a directory, a directory a file.
                dir("x", 0o755),
                file("x/in", "inside x", 0o644),
                file("y", "a file now", 0o644),
            ],
            vec![file("x", "a file again", 0o644), empty(".wh.nothing-there")],
        ],
        &options(),
    );
    let root = tmp.path();
    assert_eq!(read(root, "a/f"), "two");
    assert_eq!(read(root, "a/h"), "one");
    assert_ne!(ino(root, "a/f"), ino(root, "a/h"));
    assert!(!exists(root, "a/g"));
    assert_eq!(ino(root, "a/h2"), ino(root, "a/g2"));
    assert_eq!(read(root, "a/same"), "kept");
    assert!(!exists(root, "d/old") && !exists(root, "d/olddir"));
    assert_eq!(read(root, "d/new"), "new");
    assert_eq!(read(root, "x"), "a file again");
    assert_eq!(read(root, "y"), "a file now");
    assert_eq!(report.layers, 3);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let names: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["dir"], "nothing but the target is left beside it");
}

#[test]
fn modes_owners_times_and_xattrs_are_the_images() {
    let (tmp, _) = unpack(
        &[
            vec![
                dir("ro", 0o555).with_mtime(1_000_000_000),
                file("setuid", "s", 0o4755).with_owner(1000, 1000),
                file("setgid", "s", 0o2711).with_owner(1000, 1001),
                dir("sticky", 0o1777),
                file("attr", "a", 0o600).with_pax("SCHILY.xattr.user.test", "value"),
                file("paxowner", "o", 0o640)
                    .with_owner(1, 1)
                    .with_pax("uid", "70000")
                    .with_pax("gid", "70001"),
                file("nanos", "n", 0o644).with_pax("mtime", "1234567890.5"),
                fifo("fifo", 0o620),
                symlink_entry("link", "setuid").with_owner(1000, 1000),
            ],
            // A later layer writes into the 0555 directory; its mtime is still the image's.
            vec![
                file("ro/child", "c", 0o644),
                dir("ro", 0o555).with_mtime(1_000_000_000),
            ],
        ],
        &options(),
    );
    let meta = |path: &str| fs::symlink_metadata(tmp.path().join("dir").join(path)).unwrap();
    assert_eq!(meta("setuid").mode() & 0o7777, 0o4755);
    assert_eq!((meta("setuid").uid(), meta("setuid").gid()), (1000, 1000));
    assert_eq!(meta("setgid").mode() & 0o7777, 0o2711);
    assert_eq!(meta("sticky").mode() & 0o7777, 0o1777);
    assert_eq!(meta("ro").mode() & 0o7777, 0o555);
    assert_eq!(meta("ro").mtime(), 1_000_000_000);
    assert_eq!(meta("setuid").mtime(), 1_600_000_000);
    assert_eq!(
        (meta("paxowner").uid(), meta("paxowner").gid()),
        (70000, 70001)
    );
    assert_eq!(
        (meta("nanos").mtime(), meta("nanos").mtime_nsec()),
        (1_234_567_890, 500_000_000)
    );
    assert!(meta("fifo").file_type().is_fifo());
    assert_eq!(meta("fifo").mode() & 0o7777, 0o620);
    assert_eq!((meta("link").uid(), meta("link").gid()), (1000, 1000));
    let mut value = vec![0; 16];
    let n = rustix::fs::getxattr(tmp.path().join("dir/attr"), "user.test", &mut value).unwrap();
    assert_eq!(&value[..n], b"value");
}

#[test]
fn devices_as_root_and_rootless() {
    let layers = [vec![char_device("null", 0o666, 1, 3), fifo("fifo", 0o600)]];
    let (tmp, report) = unpack(&layers, &options());
    let null = fs::symlink_metadata(tmp.path().join("dir/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    assert!(report.warnings.is_empty());

    let rootless = UnpackOptions {
        rootless: true,
        ..options()
    };
    let (tmp, report) = unpack(&layers, &rootless);
    let null = fs::symlink_metadata(tmp.path().join("dir/null")).unwrap();
    assert!(
        null.file_type().is_file() && null.len() == 0,
        "an empty file in its place"
    );
    assert_eq!(report.warnings.len(), 1);
    assert_eq!(report.warnings[0].path, Path::new("null"));
    assert!(
        report.warnings[0].reason.contains("1:3"),
        "{}",
        report.warnings[0].reason
    );
    assert!(
        fs::symlink_metadata(tmp.path().join("dir/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn overlay_whiteouts_are_kept() {
    let overlay = UnpackOptions {
        whiteouts: Whiteouts::Overlay,
        ..options()
    };
    let (tmp, _) = unpack(
        &[
            vec![
                dir("d", 0o755),
                file("d/old", "", 0o644),
                file("gone", "", 0o644),
            ],
            vec![
                empty(".wh.gone"),
                empty("d/.wh..wh..opq"),
                file("d/new", "", 0o644),
            ],
        ],
        &overlay,
    );
    let gone = fs::symlink_metadata(tmp.path().join("dir/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    let mut value = [0u8; 4];
    let n = rustix::fs::getxattr(
        tmp.path().join("dir/d"),
        "trusted.overlay.opaque",
        &mut value,
    )
    .unwrap();
    assert_eq!(&value[..n], b"y");
    assert!(!tmp.path().join("dir/d/old").exists());
    assert!(tmp.path().join("dir/d/new").exists());
}

/// A tar file of `entries`, stored as a layer compressed with `compression`.
fn compressed_image(
    layout: &DirLayout,
    tmp: &Path,
    compression: Compression,
) -> oci_image::ResolvedImage {
    let tar_file = tmp.join("layer.tar");
    fs::write(
        &tar_file,
        tar(&[dir("etc", 0o755), file("etc/hello", "hello", 0o644)]),
    )
    .unwrap();
    let mut builder = ImageBuilder::new(layout, &platform::parse("linux/amd64").unwrap());
    let layer_options = LayerOptions {
        compression,
        ..LayerOptions::default()
    };
    builder
        .add_tar_layer(&tar_file, &layer_options, None)
        .unwrap();
    let manifest = builder.write().unwrap();
    resolve_image(layout, manifest.digest().as_ref(), None).unwrap()
}

#[test]
fn gzip_zstd_and_uncompressed_layers() {
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let tmp = tempfile::tempdir().unwrap();
        let layout = DirLayout::create(tmp.path().join("layout")).unwrap();
        let image = compressed_image(&layout, tmp.path(), compression);
        let target = tmp.path().join("dir");
        unpack_image(&layout, &image, &target, &options(), None).unwrap();
        assert_eq!(
            fs::read_to_string(target.join("etc/hello")).unwrap(),
            "hello",
            "{compression:?}"
        );
    }
}

#[test]
fn a_corrupt_blob_is_refused_naming_the_layer_and_leaves_no_target() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = DirLayout::create(tmp.path().join("layout")).unwrap();
    let image = compressed_image(&layout, tmp.path(), Compression::Gzip);
    let layer = &image.manifest.layers()[0];
    let blob = tmp.path().join("layout").join(
        oci_core::Digest::try_from(layer.digest())
            .unwrap()
            .blob_path(),
    );
    let mut bytes = fs::read(&blob).unwrap();
    // The gzip header's MTIME, which gunzip ignores: the tar inside is intact, only the
    // digest can tell.
    bytes[4] ^= 0xff;
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&blob, &bytes).unwrap();
    let target = tmp.path().join("dir");
    let err = unpack_image(&layout, &image, &target, &options(), None).unwrap_err();
    let message = format!("{err}");
    let hex = layer.digest().as_ref().trim_start_matches("sha256:");
    assert!(
        message.contains(hex) && message.contains("layer 1 of 1"),
        "{message}"
    );
    let cause = std::error::Error::source(&err)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        cause.contains("digest"),
        "the cause says what did not match: {cause}"
    );
    assert!(!target.exists());
    let left: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "the layout and the tar only: {left:?}");
}

#[test]
fn a_wrong_diff_id_is_refused_and_an_empty_target_is_emptied_again() {
    let store = MemoryStore::new();
    let bytes = tar(&[file("f", "content", 0o644)]);
    let digest = store.write_blob(Algorithm::Sha256, &bytes).unwrap();
    let other = Algorithm::Sha256.digest(b"something else");
    let layer = Layer {
        descriptor: Descriptor::new(MediaType::ImageLayer, bytes.len() as u64, digest),
        diff_id: other,
        uncompressed_size: bytes.len() as u64,
        skipped: Vec::new(),
    };
    let mut builder = ImageBuilder::new(&store, &platform::parse("linux/amd64").unwrap());
    builder.add_layer(&layer, "test");
    let manifest = builder.write().unwrap();
    let image = resolve_image(&store, manifest.digest().as_ref(), None).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("dir");
    fs::create_dir(&target).unwrap();
    let before = fs::metadata(&target).unwrap().ino();
    let err = unpack_image(&store, &image, &target, &options(), None).unwrap_err();
    let message = format!("{err}");
    assert!(
        message.contains("diff_id") && message.contains(&other.to_string()),
        "{message}"
    );
    assert!(matches!(err, Error::Unpack { .. }));
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0, "emptied again");
    assert_eq!(fs::metadata(&target).unwrap().ino(), before);
}

#[test]
fn target_rules_missing_empty_and_not_empty() {
    let store = MemoryStore::new();
    let image = image_of(&store, &[tar(&[file("f", "x", 0o644)])]);
    let tmp = tempfile::tempdir().unwrap();

    let empty_dir = tmp.path().join("empty");
    fs::create_dir(&empty_dir).unwrap();
    rustix::fs::chown(
        &empty_dir,
        Some(rustix::fs::Uid::from_raw(1234)),
        Some(rustix::fs::Gid::from_raw(4321)),
    )
    .unwrap();
    fs::set_permissions(&empty_dir, fs::Permissions::from_mode(0o710)).unwrap();
    let before = fs::metadata(&empty_dir).unwrap();
    unpack_image(&store, &image, &empty_dir, &options(), None).unwrap();
    let after = fs::metadata(&empty_dir).unwrap();
    assert_eq!(
        (after.ino(), after.uid(), after.gid(), after.mode()),
        (before.ino(), 1234, 4321, before.mode())
    );
    assert_eq!(fs::read_to_string(empty_dir.join("f")).unwrap(), "x");

    let full = tmp.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("mine"), "mine").unwrap();
    let err = unpack_image(&store, &image, &full, &options(), None).unwrap_err();
    assert!(format!("{err}").contains("not empty"), "{err}");
    let names: Vec<_> = fs::read_dir(&full)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["mine"]);

    let missing = tmp.path().join("missing");
    unpack_image(&store, &image, &missing, &options(), None).unwrap();
    assert_eq!(fs::read_to_string(missing.join("f")).unwrap(), "x");
    let mut names: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["empty", "full", "missing"],
        "no temporary directory left"
    );
}

#[test]
fn foreign_layers_are_refused_before_anything_is_written() {
    let store = MemoryStore::new();
    let bytes = tar(&[file("f", "x", 0o644)]);
    let digest = store.write_blob(Algorithm::Sha256, &bytes).unwrap();
    let layer = Layer {
        descriptor: Descriptor::new(
            MediaType::Other("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".into()),
            bytes.len() as u64,
            digest,
        ),
        diff_id: digest,
        uncompressed_size: bytes.len() as u64,
        skipped: Vec::new(),
    };
    let mut builder = ImageBuilder::new(&store, &platform::parse("linux/amd64").unwrap());
    builder.add_layer(&layer, "test");
    let manifest = builder.write().unwrap();
    let image = resolve_image(&store, manifest.digest().as_ref(), None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let err = unpack_image(&store, &image, &tmp.path().join("dir"), &options(), None).unwrap_err();
    assert!(format!("{err}").contains("non-distributable"), "{err}");
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}
