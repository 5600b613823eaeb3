//! oci-image against a directory layout: layers from trees and tar files, round-tripped
//! through a tar reader; diff_ids; reproducibility; base images; platforms through the
//! shared corpus' indexes; inspect. `source_walk`: the walk of a changing source tree;
//! `memory_store`: an image built in memory and copied into a layout; `bundle`: a runtime
//! bundle's config.json from an image config, against umoci's; `diff_layer`: a layer of
//! what a tree changes relative to its base image, with whiteouts.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use oci_core::oci_spec::image::MediaType;
use oci_core::{Algorithm, ContentKind, Digest, Store, seed};
use oci_dir::DirLayout;
use oci_image::inspect::Content;
use oci_image::{
    Compression, Error, ImageBuilder, ImageConfig, Layer, LayerOptions, Mtime, Ownership,
    RuntimeOverrides, platform, resolve_image, write_dir_layer, write_tar_layer,
};
use tempfile::TempDir;

const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

/// The shared conformance corpus; a missing corpus is a failure, never a skip.
fn corpus_layout(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/layouts")
        .join(name);
    assert!(
        path.join("index.json").is_file(),
        "the conformance corpus is missing at {}: the repository must be cloned beside shared/",
        path.display()
    );
    path
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
            // The corpus is read-only in CI; the copies must be writable.
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// Whether `tool` is on `PATH`. When it is not, says so where a plain `cargo test` shows it
/// (or fails, when `OCI_LAYOUT_REQUIRE_INTEROP` is set).
fn have_tool(tool: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    });
    if !found {
        let message = format!("SKIPPED {test}: {tool} not on PATH (install it to run the test)");
        assert!(
            std::env::var_os("OCI_LAYOUT_REQUIRE_INTEROP").is_none(),
            "{message}, and OCI_LAYOUT_REQUIRE_INTEROP is set"
        );
        // libtest captures the output of passing tests, but not the raw handle.
        let _ = writeln!(std::io::stderr().lock(), "{message}");
    }
    found
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A tree with every kind of entry a layer must keep.
fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc/empty.d")).unwrap();
    fs::create_dir_all(root.join("usr/share/doc")).unwrap();
    fs::write(root.join("bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
    fs::set_permissions(root.join("bin/hello"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("bin/suid"), "setuid\n").unwrap();
    fs::set_permissions(root.join("bin/suid"), fs::Permissions::from_mode(0o4750)).unwrap();
    fs::write(root.join("etc/secret"), "private\n").unwrap();
    fs::set_permissions(root.join("etc/secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("etc/motd"), "welcome\n").unwrap();
    fs::set_permissions(root.join("etc/empty.d"), fs::Permissions::from_mode(0o700)).unwrap();
    // Content over one gzip chunk (1 MiB) and not a multiple of 512.
    let big: Vec<u8> = (0..3_000_001u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(root.join("usr/share/doc/big.bin"), big).unwrap();
    fs::write(root.join("usr/share/doc/empty"), "").unwrap();
    // Hard links: three names, one inode.
    fs::write(root.join("bin/busybox"), "multi-call\n").unwrap();
    fs::hard_link(root.join("bin/busybox"), root.join("bin/ls")).unwrap();
    fs::hard_link(root.join("bin/busybox"), root.join("usr/cat")).unwrap();
    // Symlinks: relative, absolute, dangling, to a directory.
    symlink("hello", root.join("bin/hi")).unwrap();
    symlink("/etc/motd", root.join("etc/motd.link")).unwrap();
    symlink("../nowhere", root.join("etc/dangling")).unwrap();
    symlink("usr/share", root.join("share")).unwrap();
    // A name that is not UTF-8, a long name, a long symlink target.
    fs::write(root.join(OsStr::from_bytes(b"caf\xe9.txt")), "latin-1\n").unwrap();
    let long_dir = root.join("a".repeat(60)).join("b".repeat(60));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("c".repeat(80)), "deep\n").unwrap();
    symlink("t".repeat(150), root.join("long-target")).unwrap();
    // A FIFO.
    let fifo = root.join("etc/fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
}

/// What a tar entry or a file is, for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(Vec<u8>),
    HardLink(Vec<u8>),
    Fifo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

/// Every entry of a plain tar, by name (bytes).
fn tar_entries(tar_bytes: &[u8]) -> Vec<(Vec<u8>, Entry)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let name = entry.path_bytes().into_owned();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular => {
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                Kind::File(content)
            }
            tar::EntryType::Symlink => Kind::Symlink(entry.link_name_bytes().unwrap().into_owned()),
            tar::EntryType::Link => Kind::HardLink(entry.link_name_bytes().unwrap().into_owned()),
            tar::EntryType::Fifo => Kind::Fifo,
            other => panic!("unexpected entry type {other:?}"),
        };
        out.push((
            name,
            Entry {
                kind,
                mode: header.mode().unwrap(),
                uid: header.uid().unwrap(),
                gid: header.gid().unwrap(),
                mtime: header.mtime().unwrap(),
            },
        ));
    }
    out
}

/// What a layer of `root` must hold, from the filesystem itself (hard links: the first name
/// in walk order holds the content).
fn expected_entries(
    root: &Path,
    mtime: Option<u64>,
    ownership: Ownership,
) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    let mut first_names: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut order = Vec::new();
    walk_sorted(root, Path::new(""), &mut order);
    for relative in order {
        let full = root.join(&relative);
        let meta = fs::symlink_metadata(&full).unwrap();
        let mut name = relative.as_os_str().as_bytes().to_vec();
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            name.push(b'/');
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink(
                fs::read_link(&full)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if std::os::unix::fs::FileTypeExt::is_fifo(&ft) {
            Kind::Fifo
        } else if meta.nlink() > 1 && first_names.contains_key(&meta.ino()) {
            Kind::HardLink(first_names[&meta.ino()].clone())
        } else {
            if meta.nlink() > 1 {
                first_names.insert(meta.ino(), name.clone());
            }
            Kind::File(fs::read(&full).unwrap())
        };
        let (uid, gid) = match ownership {
            Ownership::Keep => (u64::from(meta.uid()), u64::from(meta.gid())),
            Ownership::Root => (0, 0),
        };
        out.insert(
            name,
            Entry {
                kind,
                mode: meta.mode() & 0o7777,
                uid,
                gid,
                mtime: mtime.unwrap_or(meta.mtime() as u64),
            },
        );
    }
    out
}

fn walk_sorted(root: &Path, relative: &Path, out: &mut Vec<PathBuf>) {
    let mut names: Vec<_> = fs::read_dir(root.join(relative))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let path = relative.join(name);
        out.push(path.clone());
        if fs::symlink_metadata(root.join(&path)).unwrap().is_dir() {
            walk_sorted(root, &path, out);
        }
    }
}

fn decompress(bytes: &[u8], media_type: &MediaType) -> Vec<u8> {
    let mut out = Vec::new();
    match media_type {
        MediaType::ImageLayer => out.extend_from_slice(bytes),
        // A single-member reader: the parallel gzip writer must produce one member.
        MediaType::ImageLayerGzip => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap();
        }
        MediaType::ImageLayerZstd => {
            zstd::stream::read::Decoder::new(bytes)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
        }
        other => panic!("not a layer media type: {other}"),
    }
    out
}

fn blob(layout: &DirLayout, layer: &Layer) -> Vec<u8> {
    let digest = Digest::try_from(layer.descriptor.digest()).unwrap();
    seed::read_blob(layout, digest).unwrap()
}

pub(crate) struct Fixture {
    _tmp: TempDir,
    pub(crate) root: PathBuf,
    pub(crate) layout: DirLayout,
    scratch: PathBuf,
}

pub(crate) fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    sample_tree(&root);
    let layout = DirLayout::create(tmp.path().join("layout")).unwrap();
    let scratch = tmp.path().join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    Fixture {
        root,
        layout,
        scratch,
        _tmp: tmp,
    }
}

fn options(compression: Compression) -> LayerOptions {
    LayerOptions {
        compression,
        ..LayerOptions::default()
    }
}

#[test]
fn layer_from_dir_holds_every_entry_as_the_filesystem_has_it() {
    let f = fixture();
    for compression in ALL {
        for (mtime, ownership) in [
            (Mtime::Keep, Ownership::Keep),
            (Mtime::Fixed(1_700_000_000), Ownership::Root),
        ] {
            let options = LayerOptions {
                mtime,
                ownership,
                ..options(compression)
            };
            let layer = write_dir_layer(&f.layout, &f.root, &options, None).unwrap();
            assert_eq!(
                layer.descriptor.media_type(),
                &compression.layer_media_type()
            );
            let tar_bytes = decompress(&blob(&f.layout, &layer), layer.descriptor.media_type());
            let entries = tar_entries(&tar_bytes);
            let names: Vec<&Vec<u8>> = entries.iter().map(|(n, _)| n).collect();
            let mut sorted_walk = Vec::new();
            walk_sorted(&f.root, Path::new(""), &mut sorted_walk);
            assert_eq!(
                names.len(),
                sorted_walk.len(),
                "one entry per file, no root entry"
            );
            let fixed = match mtime {
                Mtime::Fixed(t) => Some(t),
                Mtime::Keep => None,
            };
            let expected = expected_entries(&f.root, fixed, ownership);
            let actual: BTreeMap<Vec<u8>, Entry> = entries.into_iter().collect();
            for (name, entry) in &expected {
                assert_eq!(
                    actual.get(name),
                    Some(entry),
                    "{compression}: entry {:?}",
                    String::from_utf8_lossy(name)
                );
            }
            assert_eq!(actual.len(), expected.len());
            assert!(layer.skipped.is_empty());
        }
    }
}

#[test]
fn layer_from_dir_unpacks_to_the_same_tree() {
    let f = fixture();
    let layer = write_dir_layer(&f.layout, &f.root, &options(Compression::Gzip), None).unwrap();
    let tar_bytes = decompress(&blob(&f.layout, &layer), layer.descriptor.media_type());
    let out = f.scratch.join("unpacked");
    fs::create_dir_all(&out).unwrap();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        // The tar crate does not make FIFOs; the header test above covers them.
        if entry.header().entry_type() != tar::EntryType::Fifo {
            entry.unpack_in(&out).unwrap();
        }
    }
    let mut original = Vec::new();
    walk_sorted(&f.root, Path::new(""), &mut original);
    let mut inodes: BTreeMap<u64, u64> = BTreeMap::new();
    for relative in original {
        let a = fs::symlink_metadata(f.root.join(&relative)).unwrap();
        if a.file_type().is_fifo_like() {
            continue;
        }
        let b = fs::symlink_metadata(out.join(&relative))
            .unwrap_or_else(|e| panic!("{}: {e}", relative.display()));
        assert_eq!(a.file_type(), b.file_type(), "{}", relative.display());
        if a.is_symlink() {
            assert_eq!(
                fs::read_link(f.root.join(&relative)).unwrap(),
                fs::read_link(out.join(&relative)).unwrap()
            );
            continue;
        }
        assert_eq!(
            a.mode() & 0o7777,
            b.mode() & 0o7777,
            "{}",
            relative.display()
        );
        if a.is_file() {
            assert_eq!(
                fs::read(f.root.join(&relative)).unwrap(),
                fs::read(out.join(&relative)).unwrap(),
                "{}",
                relative.display()
            );
            if a.nlink() > 1 {
                let first = *inodes.entry(a.ino()).or_insert(b.ino());
                assert_eq!(
                    first,
                    b.ino(),
                    "{} is a hard link again",
                    relative.display()
                );
            }
        }
    }
    assert_eq!(inodes.len(), 1, "one hard-linked inode");
    assert!(out.join(OsStr::from_bytes(b"caf\xe9.txt")).is_file());
    assert_eq!(fs::read_dir(out.join("etc/empty.d")).unwrap().count(), 0);
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}

impl FifoLike for fs::FileType {
    fn is_fifo_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_fifo(self)
    }
}

#[test]
fn diff_id_is_the_digest_of_the_decompressed_blob() {
    let f = fixture();
    for algorithm in [Algorithm::Sha256, Algorithm::Blake3] {
        for compression in ALL {
            let options = LayerOptions {
                algorithm,
                ..options(compression)
            };
            let layer = write_dir_layer(&f.layout, &f.root, &options, None).unwrap();
            let bytes = blob(&f.layout, &layer);
            assert_eq!(layer.descriptor.size(), bytes.len() as u64);
            let digest = Digest::try_from(layer.descriptor.digest()).unwrap();
            assert_eq!(digest, algorithm.digest(&bytes));
            let tar_bytes = decompress(&bytes, layer.descriptor.media_type());
            assert_eq!(layer.diff_id, algorithm.digest(&tar_bytes), "{compression}");
            assert_eq!(layer.uncompressed_size, tar_bytes.len() as u64);
            if compression != Compression::None {
                assert!(
                    bytes.len() < tar_bytes.len() / 2,
                    "{compression} compresses"
                );
            }
        }
    }
}

#[test]
fn compressed_layers_do_not_depend_on_the_number_of_threads_or_the_level_default() {
    let f = fixture();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let digests: Vec<_> = [1, 2, 3]
            .into_iter()
            .map(|threads| {
                let options = LayerOptions {
                    threads,
                    mtime: Mtime::Fixed(0),
                    ..options(compression)
                };
                write_dir_layer(&f.layout, &f.root, &options, None)
                    .unwrap()
                    .descriptor
                    .digest()
                    .clone()
            })
            .collect();
        assert!(
            digests.windows(2).all(|w| w[0] == w[1]),
            "{compression}: {digests:?}"
        );
        let explicit = LayerOptions {
            level: Some(oci_image::compression::default_level(compression)),
            mtime: Mtime::Fixed(0),
            ..options(compression)
        };
        let layer = write_dir_layer(&f.layout, &f.root, &explicit, None).unwrap();
        assert_eq!(layer.descriptor.digest(), &digests[0]);
    }
}

#[test]
fn levels_are_checked() {
    let f = fixture();
    for (compression, level) in [
        (Compression::Gzip, 10),
        (Compression::Gzip, -1),
        (Compression::Zstd, 23),
        (Compression::Zstd, 0),
        (Compression::Zstd, -5),
    ] {
        let options = LayerOptions {
            level: Some(level),
            ..options(compression)
        };
        let err = write_dir_layer(&f.layout, &f.root, &options, None).unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
        assert!(err.to_string().contains(&level.to_string()), "{err}");
    }
    // Level 0 (stored blocks), 1 and 9 gzip, 19 zstd: valid, and they decompress.
    for (compression, level) in [
        (Compression::Gzip, 0),
        (Compression::Gzip, 1),
        (Compression::Gzip, 9),
        (Compression::Zstd, 19),
    ] {
        let options = LayerOptions {
            level: Some(level),
            ..options(compression)
        };
        let layer = write_dir_layer(&f.layout, &f.root, &options, None).unwrap();
        let tar_bytes = decompress(&blob(&f.layout, &layer), layer.descriptor.media_type());
        assert_eq!(layer.diff_id, Algorithm::Sha256.digest(&tar_bytes));
    }
}

#[test]
fn ownership_is_kept_or_zeroed() {
    let f = fixture();
    if is_root() {
        std::os::unix::fs::lchown(f.root.join("etc/motd"), Some(1234), Some(5678)).unwrap();
    }
    let find = |ownership| {
        let options = LayerOptions {
            ownership,
            compression: Compression::None,
            ..LayerOptions::default()
        };
        let layer = write_dir_layer(&f.layout, &f.root, &options, None).unwrap();
        let entries = tar_entries(&blob(&f.layout, &layer));
        entries
            .into_iter()
            .find(|(n, _)| n == b"etc/motd")
            .unwrap()
            .1
    };
    let kept = find(Ownership::Keep);
    let meta = fs::metadata(f.root.join("etc/motd")).unwrap();
    assert_eq!(
        (kept.uid, kept.gid),
        (u64::from(meta.uid()), u64::from(meta.gid()))
    );
    if is_root() {
        assert_eq!((kept.uid, kept.gid), (1234, 5678));
    }
    let zeroed = find(Ownership::Root);
    assert_eq!((zeroed.uid, zeroed.gid), (0, 0));
}

/// Builds an image of `root` with every setting fixed, as `SOURCE_DATE_EPOCH` makes the CLI do.
fn reproducible_image(layout: &DirLayout, root: &Path, compression: Compression) -> Digest {
    let mut image = ImageBuilder::new(layout, &platform::parse("linux/amd64").unwrap());
    let options = LayerOptions {
        mtime: Mtime::Fixed(1_600_000_000),
        ..options(compression)
    };
    image.add_dir_layer(root, &options, None).unwrap();
    image.created_at(1_600_000_000);
    image
        .apply(&RuntimeOverrides {
            cmd: Some(vec!["/bin/hello".into()]),
            ..RuntimeOverrides::default()
        })
        .unwrap();
    Digest::try_from(image.write().unwrap().digest()).unwrap()
}

#[test]
fn the_same_tree_with_a_fixed_time_gives_the_same_manifest() {
    let f = fixture();
    for compression in ALL {
        let first = reproducible_image(&f.layout, &f.root, compression);
        let other = DirLayout::create(f.scratch.join(format!("other-{compression}"))).unwrap();
        assert_eq!(
            first,
            reproducible_image(&other, &f.root, compression),
            "{compression}"
        );
        // A copy of the tree made now (new mtimes, new inodes) gives the same image too.
        let copy = f.scratch.join(format!("copy-{compression}"));
        assert!(
            std::process::Command::new("cp")
                .arg("-a")
                .arg(&f.root)
                .arg(&copy)
                .status()
                .unwrap()
                .success()
        );
        fs::set_permissions(&copy, fs::metadata(&f.root).unwrap().permissions()).unwrap();
        let touched = std::process::Command::new("find")
            .arg(&copy)
            .args(["-exec", "touch", "-h", "-d", "2001-01-01", "{}", "+"])
            .status()
            .unwrap();
        assert!(touched.success());
        assert_eq!(
            first,
            reproducible_image(&other, &copy, compression),
            "{compression} copy"
        );
    }
}

/// A store that, when told to, removes one blob as an index update starts: what a gc or a
/// `blob rm` racing the build would do just before the tag.
struct RemovedBeforeTag<'a> {
    inner: &'a DirLayout,
    victim: std::sync::Mutex<Option<Digest>>,
}

impl Store for RemovedBeforeTag<'_> {
    fn location(&self) -> &oci_core::Location {
        self.inner.location()
    }
    fn stat(&self, kind: ContentKind, digest: Digest) -> oci_core::Result<Option<u64>> {
        self.inner.stat(kind, digest)
    }
    fn fetch(
        &self,
        kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> oci_core::Result<Box<dyn Read + Send + '_>> {
        self.inner.fetch(kind, digest, size)
    }
    fn push(
        &self,
        descriptor: &oci_core::oci_spec::image::Descriptor,
        content: &mut dyn Read,
    ) -> oci_core::Result<()> {
        self.inner.push(descriptor, content)
    }
    fn begin_blob(
        &self,
        algorithm: Algorithm,
    ) -> oci_core::Result<Box<dyn oci_core::BlobWriter + '_>> {
        self.inner.begin_blob(algorithm)
    }
    fn index(&self) -> oci_core::Result<oci_core::oci_spec::image::ImageIndex> {
        self.inner.index()
    }
    fn put_entries(
        &self,
        entries: &[oci_core::oci_spec::image::Descriptor],
        required: &[Digest],
    ) -> oci_core::Result<oci_core::index::PutOutcome> {
        if let Some(victim) = self.victim.lock().unwrap().take() {
            seed::delete_blob(self.inner, victim)?;
        }
        self.inner.put_entries(entries, required)
    }
    fn remove_ref(&self, name: &str) -> oci_core::Result<bool> {
        self.inner.remove_ref(name)
    }
}

/// Issue #12, item 3: `write_and_tag` tags only a whole image: a layer gone by the time of
/// the tag fails it, naming the layer, and no tag is written.
#[test]
fn write_and_tag_refuses_to_tag_an_image_whose_layer_went() {
    let f = fixture();
    let store = RemovedBeforeTag {
        inner: &f.layout,
        victim: std::sync::Mutex::new(None),
    };
    let mut image = ImageBuilder::new(&store, &platform::parse("linux/amd64").unwrap());
    let layer = image
        .add_dir_layer(&f.root, &options(Compression::Gzip), None)
        .unwrap();
    let layer_digest = Digest::try_from(layer.descriptor.digest()).unwrap();
    *store.victim.lock().unwrap() = Some(layer_digest);
    let error = image.write_and_tag("v1").unwrap_err();
    assert!(
        error.to_string().contains(&layer_digest.to_string()),
        "{error}"
    );
    assert!(f.layout.index().unwrap().manifests().is_empty());

    // Whole, it is tagged, and the tag names what `write` would have written.
    let mut image = ImageBuilder::new(&store, &platform::parse("linux/amd64").unwrap());
    image
        .add_dir_layer(&f.root, &options(Compression::Gzip), None)
        .unwrap();
    let manifest = image.write_and_tag("v1").unwrap();
    assert_eq!(f.layout.resolve("v1").unwrap().digest(), manifest.digest());
    assert_eq!(
        manifest.platform().as_ref().unwrap().os().to_string(),
        "linux"
    );
}

#[test]
fn an_image_from_scratch_has_config_and_manifest_as_the_spec_says() {
    let f = fixture();
    let mut image = ImageBuilder::new(&f.layout, &platform::parse("linux/arm64/v8").unwrap());
    let layer = image
        .add_dir_layer(&f.root, &options(Compression::Zstd), None)
        .unwrap();
    image.created_at(86_400 * 365);
    image
        .apply(&RuntimeOverrides {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: Some(vec!["echo hi".into()]),
            env: vec!["PATH=/bin".into(), "A=1".into()],
            labels: BTreeMap::from([("org.example".to_owned(), "yes".to_owned())]),
            working_dir: Some("/work".into()),
            user: Some("1000:1000".into()),
            exposed_ports: vec!["8080".into(), "53/udp".into()],
        })
        .unwrap();
    let descriptor = image.write().unwrap();
    assert_eq!(descriptor.media_type(), &MediaType::ImageManifest);
    assert_eq!(
        platform::to_string(descriptor.platform().as_ref().unwrap()),
        "linux/arm64/v8"
    );
    f.layout.tag(&descriptor, "scratch").unwrap();

    let digest = Digest::try_from(descriptor.digest()).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&seed::read_blob(&f.layout, digest).unwrap()).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(
        manifest["layers"][0]["digest"],
        layer.descriptor.digest().to_string()
    );
    assert!(manifest.get("annotations").is_none());
    let config_digest = Digest::parse(manifest["config"]["digest"].as_str().unwrap()).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&seed::read_blob(&f.layout, config_digest).unwrap()).unwrap();
    assert_eq!(
        config,
        serde_json::json!({
            "architecture": "arm64",
            "os": "linux",
            "variant": "v8",
            "created": "1971-01-01T00:00:00Z",
            "config": {
                "Entrypoint": ["/bin/sh", "-c"],
                "Cmd": ["echo hi"],
                "Env": ["PATH=/bin", "A=1"],
                "Labels": {"org.example": "yes"},
                "WorkingDir": "/work",
                "User": "1000:1000",
                "ExposedPorts": {"53/udp": {}, "8080/tcp": {}}
            },
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
            "history": [{"created": "1971-01-01T00:00:00Z", "created_by": "oci-layout image create --from-dir"}]
        })
    );
    // The bytes are canonical: keys sorted, compact.
    let bytes = seed::read_blob(&f.layout, config_digest).unwrap();
    assert_eq!(bytes, oci_core::index::to_canonical_json(&config).unwrap());
}

#[test]
fn runtime_settings_are_checked() {
    let mut config = ImageConfig::new(&platform::host());
    for overrides in [
        RuntimeOverrides {
            env: vec!["NOVALUE".into()],
            ..RuntimeOverrides::default()
        },
        RuntimeOverrides {
            env: vec!["=x".into()],
            ..RuntimeOverrides::default()
        },
        RuntimeOverrides {
            exposed_ports: vec!["http".into()],
            ..RuntimeOverrides::default()
        },
        RuntimeOverrides {
            exposed_ports: vec!["80/icmp".into()],
            ..RuntimeOverrides::default()
        },
        RuntimeOverrides {
            exposed_ports: vec!["0".into()],
            ..RuntimeOverrides::default()
        },
    ] {
        let err = config.apply(&overrides).unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
    }
}

#[test]
fn a_base_image_keeps_its_layers_and_config_and_gets_the_new_layer_on_top() {
    let f = fixture();
    // The base: one layer, settings, and fields oci-spec does not model.
    let base_root = f.scratch.join("base");
    fs::create_dir_all(base_root.join("etc")).unwrap();
    fs::write(base_root.join("etc/os-release"), "ID=base\n").unwrap();
    let mut base = ImageBuilder::new(&f.layout, &platform::parse("linux/amd64").unwrap());
    let base_layer = base
        .add_dir_layer(&base_root, &options(Compression::Gzip), None)
        .unwrap();
    base.created_at(1);
    base.apply(&RuntimeOverrides {
        entrypoint: Some(vec!["/bin/sh".into()]),
        cmd: Some(vec!["-l".into()]),
        env: vec!["PATH=/usr/bin".into(), "KEEP=1".into()],
        labels: BTreeMap::from([("base".to_owned(), "1".to_owned())]),
        working_dir: Some("/".into()),
        ..RuntimeOverrides::default()
    })
    .unwrap();
    base.config_mut();
    let base_descriptor = base.write().unwrap();
    f.layout.tag(&base_descriptor, "base").unwrap();

    let resolved = resolve_image(&f.layout, "base", None).unwrap();
    assert_eq!(resolved.descriptor.digest(), base_descriptor.digest());
    let mut image = ImageBuilder::on_base(&f.layout, resolved, Some("base"));
    let layer = image
        .add_dir_layer(&f.root, &options(Compression::Zstd), None)
        .unwrap();
    image.created_at(2);
    image
        .apply(&RuntimeOverrides {
            env: vec!["PATH=/bin:/usr/bin".into(), "NEW=2".into()],
            labels: BTreeMap::from([("top".to_owned(), "2".to_owned())]),
            ..RuntimeOverrides::default()
        })
        .unwrap();
    let descriptor = image.write().unwrap();
    f.layout.tag(&descriptor, "top").unwrap();

    let top = resolve_image(&f.layout, "top", None).unwrap();
    let layers: Vec<String> = top
        .manifest
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect();
    assert_eq!(
        layers,
        [
            base_layer.descriptor.digest().to_string(),
            layer.descriptor.digest().to_string()
        ]
    );
    let spec = top.config.spec();
    assert_eq!(
        spec.rootfs().diff_ids(),
        &[base_layer.diff_id.to_string(), layer.diff_id.to_string()]
    );
    let history = spec.history().as_ref().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[0].created().as_deref(),
        Some("1970-01-01T00:00:01Z")
    );
    assert_eq!(
        history[1].created().as_deref(),
        Some("1970-01-01T00:00:02Z")
    );
    let runtime = spec.config().as_ref().unwrap();
    assert_eq!(
        runtime.entrypoint().as_deref(),
        Some(&["/bin/sh".to_owned()][..])
    );
    assert_eq!(runtime.cmd().as_deref(), Some(&["-l".to_owned()][..]));
    assert_eq!(
        runtime.env().as_deref(),
        Some(
            &[
                "PATH=/bin:/usr/bin".to_owned(),
                "KEEP=1".to_owned(),
                "NEW=2".to_owned()
            ][..]
        )
    );
    let labels = runtime.labels().as_ref().unwrap();
    assert_eq!(
        (labels["base"].as_str(), labels["top"].as_str()),
        ("1", "2")
    );
    assert_eq!(runtime.working_dir().as_deref(), Some("/"));
    let annotations = top.manifest.annotations().as_ref().unwrap();
    assert_eq!(
        annotations[oci_image::BASE_DIGEST_ANNOTATION],
        base_descriptor.digest().to_string()
    );
    assert_eq!(annotations[oci_image::BASE_NAME_ANNOTATION], "base");

    // A new entrypoint drops the base's Cmd, as Dockerfile's ENTRYPOINT does.
    let mut image = ImageBuilder::on_base(
        &f.layout,
        resolve_image(&f.layout, "base", None).unwrap(),
        None,
    );
    image
        .apply(&RuntimeOverrides {
            entrypoint: Some(vec!["/bin/hello".into()]),
            ..RuntimeOverrides::default()
        })
        .unwrap();
    let runtime = image.config().spec().config().clone().unwrap();
    assert_eq!(runtime.cmd(), &None);
}

#[test]
fn config_fields_oci_spec_does_not_model_are_kept() {
    let docker = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Healthcheck":{"Test":["CMD","true"]},"ArgsEscaped":true,"OnBuild":null},"container_config":{"Hostname":"x"},"docker_version":"24.0.0","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let mut config = ImageConfig::parse(docker).unwrap();
    config
        .apply(&RuntimeOverrides {
            cmd: Some(vec!["bash".into()]),
            ..RuntimeOverrides::default()
        })
        .unwrap();
    let written: serde_json::Value = serde_json::from_slice(&config.to_json().unwrap()).unwrap();
    assert_eq!(written["config"]["Cmd"], serde_json::json!(["bash"]));
    assert_eq!(
        written["config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "true"])
    );
    assert_eq!(written["config"]["ArgsEscaped"], true);
    assert!(
        written["config"]
            .as_object()
            .unwrap()
            .contains_key("OnBuild")
    );
    assert_eq!(written["container_config"]["Hostname"], "x");
    assert_eq!(written["docker_version"], "24.0.0");
}

#[test]
fn platforms_are_parsed_matched_and_the_host_has_go_names() {
    for input in [
        "linux",
        "linux/",
        "/amd64",
        "linux/amd64/v1/x",
        "linux/am d64",
        "",
    ] {
        let err = platform::parse(input).unwrap_err();
        assert!(err.to_string().contains("platform"), "{err}");
    }
    let p = |s| platform::parse(s).unwrap();
    assert_eq!(platform::to_string(&p("linux/arm/v7")), "linux/arm/v7");
    assert!(platform::matches(&p("linux/arm64"), &p("linux/arm64/v8")));
    assert!(platform::matches(&p("linux/arm64/v8"), &p("linux/arm64")));
    assert!(!platform::matches(&p("linux/arm/v6"), &p("linux/arm")));
    assert!(platform::matches(&p("linux/arm/v7"), &p("linux/arm")));
    assert!(!platform::matches(&p("linux/amd64"), &p("windows/amd64")));
    assert_eq!(platform::go_arch("x86_64"), "amd64");
    assert_eq!(platform::go_arch("aarch64"), "arm64");
    assert_eq!(platform::go_arch("x86"), "386");
    let host = platform::to_string(&platform::host());
    assert!(host.starts_with("linux/"), "{host}");
    #[cfg(target_arch = "x86_64")]
    assert_eq!(host, "linux/amd64");
}

#[test]
fn an_index_resolves_to_the_manifest_for_a_platform() {
    let layout = DirLayout::open(corpus_layout("regclient-testrepo")).unwrap();
    let amd64 = "sha256:1effc9d48232693f4584ceb9c5e8d84ddeb5924ea4aff341aa8204510422f668";
    let arm64 = "sha256:7e87ffc91b9ceafa85be2777b16b1be10e4664fd4f3acc86e4295b97da5163ba";
    let p = |s| platform::parse(s).unwrap();
    for (wanted, digest) in [
        ("linux/amd64", amd64),
        ("linux/arm64", arm64),
        ("linux/arm64/v8", arm64),
    ] {
        let image = resolve_image(&layout, "v1", Some(&p(wanted))).unwrap();
        assert_eq!(image.descriptor.digest().to_string(), digest, "{wanted}");
        assert!(platform::matches(&p(wanted), &image.config.platform()));
        assert_eq!(
            image.config.spec().rootfs().diff_ids().len(),
            image.manifest.layers().len()
        );
    }
    // Without a platform: the host's.
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        resolve_image(&layout, "v1", None)
            .unwrap()
            .descriptor
            .digest()
            .to_string(),
        amd64
    );
    // By digest of the index, too.
    let by_digest = resolve_image(
        &layout,
        "sha256:7ceb9b6bcc274697d0c38be6214b50cec79d601bc61708747d3f6cb772f6c6fa",
        Some(&p("linux/arm64")),
    )
    .unwrap();
    assert_eq!(by_digest.descriptor.digest().to_string(), arm64);
    // A platform the index lacks: the error says what there is, and skips the attestations.
    let err = resolve_image(&layout, "v1", Some(&p("linux/s390x"))).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::PlatformNotFound { .. }), "{message}");
    assert!(
        message.contains("linux/s390x") && message.contains("linux/amd64, linux/arm64"),
        "{message}"
    );
    assert!(!message.contains("unknown"), "{message}");
    // A manifest named directly must be for the platform asked for.
    assert!(resolve_image(&layout, amd64, Some(&p("linux/amd64"))).is_ok());
    let err = resolve_image(&layout, amd64, Some(&p("linux/arm64"))).unwrap_err();
    assert!(matches!(err, Error::PlatformNotFound { .. }), "{err}");
    // A missing ref names the layout.
    let err = resolve_image(&layout, "no-such-ref", None).unwrap_err();
    assert!(
        err.to_string().contains("no-such-ref") && err.to_string().contains("regclient-testrepo"),
        "{err}"
    );
}

#[test]
fn nested_indexes_and_entries_without_platforms_resolve_through_the_config() {
    let layout = DirLayout::open(corpus_layout("ggcr-test_index")).unwrap();
    let amd64 = platform::parse("linux/amd64").unwrap();
    // "3" is an index holding an index holding a manifest with no platform in its entry.
    for reference in ["1", "2", "3", "4"] {
        let image = resolve_image(&layout, reference, Some(&amd64))
            .unwrap_or_else(|e| panic!("ref {reference}: {e}"));
        assert_eq!(platform::to_string(&image.config.platform()), "linux/amd64");
        assert_eq!(image.manifest.layers().len(), 1);
    }
    let arm = platform::parse("linux/arm64").unwrap();
    assert!(resolve_image(&layout, "3", Some(&arm)).is_err());
    assert!(
        resolve_image(&layout, "3", None).is_ok(),
        "one image: no platform needed"
    );
}

#[test]
fn building_on_a_base_from_an_index_picks_the_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("layout");
    copy_dir(&corpus_layout("regclient-testrepo"), &copy);
    let layout = DirLayout::open(&copy).unwrap();
    let root = tmp.path().join("rootfs");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("added"), "on top\n").unwrap();
    let arm64 = platform::parse("linux/arm64").unwrap();
    let base = resolve_image(&layout, "v1", Some(&arm64)).unwrap();
    let base_layers = base.manifest.layers().len();
    let mut image = ImageBuilder::on_base(&layout, base, Some("v1"));
    image
        .add_dir_layer(&root, &LayerOptions::default(), None)
        .unwrap();
    let descriptor = image.write().unwrap();
    assert_eq!(
        platform::to_string(descriptor.platform().as_ref().unwrap()),
        "linux/arm64"
    );
    layout.tag(&descriptor, "added").unwrap();
    let built = resolve_image(&layout, "added", None).unwrap();
    assert_eq!(built.manifest.layers().len(), base_layers + 1);
    assert_eq!(
        built.config.spec().rootfs().diff_ids().len(),
        base_layers + 1
    );
    assert_eq!(oci_core::fsck::fsck(&layout).unwrap().errors().count(), 0);
}

fn plain_tar_of(f: &Fixture) -> Vec<u8> {
    let options = LayerOptions {
        compression: Compression::None,
        ..LayerOptions::default()
    };
    let layer = write_dir_layer(&f.layout, &f.root, &options, None).unwrap();
    blob(&f.layout, &layer)
}

#[test]
fn a_layer_from_a_tar_file_keeps_its_bytes_or_is_recompressed() {
    let f = fixture();
    let plain = plain_tar_of(&f);
    let diff_id = Algorithm::Sha256.digest(&plain);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let files = [
        (Compression::None, plain.clone()),
        (Compression::Gzip, gz.finish().unwrap()),
        (
            Compression::Zstd,
            zstd::encode_all(plain.as_slice(), 5).unwrap(),
        ),
    ];
    for (found, bytes) in &files {
        let path = f.scratch.join(format!("layer.tar.{found}"));
        fs::write(&path, bytes).unwrap();
        assert_eq!(oci_image::compression::of_file(&path).unwrap(), *found);
        for wanted in ALL {
            let layer = write_tar_layer(&f.layout, &path, &options(wanted), None).unwrap();
            assert_eq!(layer.diff_id, diff_id, "{found} → {wanted}");
            assert_eq!(layer.uncompressed_size, plain.len() as u64);
            assert_eq!(layer.descriptor.media_type(), &wanted.layer_media_type());
            let stored = blob(&f.layout, &layer);
            if wanted == *found {
                assert_eq!(&stored, bytes, "{found}: stored as it is");
            }
            assert_eq!(decompress(&stored, layer.descriptor.media_type()), plain);
        }
    }
}

#[test]
fn a_file_that_is_not_a_tar_is_refused_naming_it() {
    let f = fixture();
    let cases: [(&str, Vec<u8>); 3] = [
        ("garbage.tar", vec![b'x'; 2048]),
        ("truncated.tar.gz", {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&plain_tar_of(&f)).unwrap();
            let mut bytes = gz.finish().unwrap();
            bytes.truncate(bytes.len() / 2);
            bytes
        }),
        (
            "not-a-tar.zst",
            zstd::encode_all(&[7u8; 4096][..], 3).unwrap(),
        ),
    ];
    for (name, bytes) in cases {
        let path = f.scratch.join(name);
        fs::write(&path, bytes).unwrap();
        for wanted in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let err = write_tar_layer(&f.layout, &path, &options(wanted), None).unwrap_err();
            assert!(matches!(err, Error::Source { .. }), "{name}: {err}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            assert!(!err.to_string().contains('\n'));
        }
    }
    let before = f.layout.list_blobs_for_test();
    assert!(
        write_tar_layer(
            &f.layout,
            &f.scratch.join("missing.tar"),
            &LayerOptions::default(),
            None
        )
        .is_err()
    );
    assert_eq!(before, f.layout.list_blobs_for_test(), "nothing stored");
}

trait ListBlobs {
    fn list_blobs_for_test(&self) -> Vec<Digest>;
}

impl ListBlobs for DirLayout {
    fn list_blobs_for_test(&self) -> Vec<Digest> {
        self.blob_listing().unwrap().list_blobs().unwrap()
    }
}

#[test]
fn a_source_that_is_not_a_directory_is_refused_naming_it() {
    let f = fixture();
    let missing = f.scratch.join("missing");
    let err = write_dir_layer(&f.layout, &missing, &LayerOptions::default(), None).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    let file = f.root.join("etc/motd");
    let err = write_dir_layer(&f.layout, &file, &LayerOptions::default(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: not a directory", file.display())
    );
    let unreadable = f.scratch.join("unreadable");
    fs::create_dir_all(unreadable.join("locked")).unwrap();
    fs::set_permissions(unreadable.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    if !is_root() {
        let err =
            write_dir_layer(&f.layout, &unreadable, &LayerOptions::default(), None).unwrap_err();
        assert!(err.to_string().contains("locked"), "{err}");
    }
}

#[test]
fn progress_sees_every_byte_of_the_source() {
    use std::cell::Cell;
    #[derive(Default)]
    struct Count {
        total: Cell<Option<u64>>,
        seen: Cell<u64>,
        finished: Cell<bool>,
    }
    impl oci_image::Progress for Count {
        fn start(&self, _: &str, total: Option<u64>) {
            self.total.set(total);
        }
        fn advance(&self, bytes: u64) {
            self.seen.set(self.seen.get() + bytes);
        }
        fn finish(&self) {
            self.finished.set(true);
        }
    }
    let f = fixture();
    let count = Count::default();
    write_dir_layer(&f.layout, &f.root, &LayerOptions::default(), Some(&count)).unwrap();
    assert!(count.finished.get());
    assert_eq!(count.total.get(), Some(count.seen.get()));
    // Hard links are counted once per name in the total and read once: the walk reads the
    // content only at the first name.
    assert!(count.seen.get() > 3_000_000);
}

#[test]
fn inspect_shows_the_tree_of_an_index_and_filters_by_platform() {
    let layout = DirLayout::open(corpus_layout("regclient-testrepo")).unwrap();
    let node = oci_image::inspect(&layout, "v1", None).unwrap();
    assert_eq!(node.reference.as_deref(), Some("v1"));
    let Content::Index { manifests } = &node.content else {
        panic!("{node:?}")
    };
    assert_eq!(manifests.len(), 4);
    let platforms: Vec<String> = manifests
        .iter()
        .map(|m| m.platform.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(
        platforms,
        [
            "linux/amd64",
            "linux/arm64",
            "unknown/unknown",
            "unknown/unknown"
        ]
    );
    let Content::Image { config, layers } = &manifests[0].content else {
        panic!()
    };
    let image = config.image.as_ref().unwrap();
    assert_eq!(image.platform.to_string(), "linux/amd64");
    assert_eq!(image.diff_ids.len(), layers.len());

    let arm = platform::parse("linux/arm64").unwrap();
    let node = oci_image::inspect(&layout, "v1", Some(&arm)).unwrap();
    let Content::Index { manifests } = &node.content else {
        panic!()
    };
    assert_eq!(manifests.len(), 1);
    assert_eq!(
        manifests[0].digest,
        "sha256:7e87ffc91b9ceafa85be2777b16b1be10e4664fd4f3acc86e4295b97da5163ba"
    );
    let json = serde_json::to_value(&node).unwrap();
    assert_eq!(json["kind"], "index");
    assert_eq!(json["manifests"][0]["kind"], "image");
    assert_eq!(json["manifests"][0]["platform"]["architecture"], "arm64");
    assert!(json["manifests"][0]["config"]["diffIds"].is_array());
    assert_eq!(
        json["manifests"][0]["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let s390x = platform::parse("linux/s390x").unwrap();
    let err = oci_image::inspect(&layout, "v1", Some(&s390x)).unwrap_err();
    assert!(
        err.to_string().contains("linux/amd64, linux/arm64"),
        "{err}"
    );
}

#[test]
fn inspect_reads_every_corpus_layout() {
    for name in [
        "ggcr-test_index",
        "ggcr-test_index_media_type",
        "regclient-testrepo",
        "regclient-external",
    ] {
        let layout = DirLayout::open(corpus_layout(name)).unwrap();
        for entry in layout.index().unwrap().manifests() {
            let Some(reference) = oci_core::index::ref_name(entry) else {
                continue;
            };
            let node = oci_image::inspect(&layout, reference, None)
                .unwrap_or_else(|e| panic!("{name} {reference}: {e}"));
            assert_eq!(node.digest, entry.digest().to_string());
        }
    }
}

#[path = "image/source_walk.rs"]
mod source_walk;

#[path = "image/memory_store.rs"]
mod memory_store;

#[path = "image/multi_platform.rs"]
mod multi_platform;

#[path = "image/bundle.rs"]
mod bundle;

#[path = "image/diff_layer.rs"]
mod diff_layer;

#[path = "image/unpack_support.rs"]
mod unpack_support;

#[path = "image/unpack_breakouts.rs"]
mod unpack_breakouts;

#[path = "image/unpack_layers.rs"]
mod unpack_layers;
