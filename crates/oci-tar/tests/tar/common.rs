//! Helpers shared by the test modules: the corpus, raw tar entries, layouts and checks.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use std::io::Write;

use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::{Algorithm, ContentKind, Digest, Store, index, seed};
use oci_dir::{DirLayout, DirOptions, Durability};
use tar::{EntryType, Header};

/// The shared conformance corpus; a missing corpus fails the test that needs it.
pub fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    assert!(
        dir.join("archives").is_dir(),
        "conformance corpus not found at {}: these tests need shared/conformance/archives",
        dir.display()
    );
    dir
}

pub fn sha256(data: &[u8]) -> Digest {
    Algorithm::Sha256.digest(data)
}

/// A fresh, initialised directory layout (no fsync: scratch data).
pub fn new_layout(root: &Path) -> DirLayout {
    DirLayout::create_with(
        root,
        DirOptions {
            durability: Durability::Relaxed,
            verify_reads: true,
            link_local_blobs: false,
        },
        &seed::InitOptions::default(),
    )
    .unwrap()
}

/// A header whose name bytes are written as given, bypassing the checks of `set_path`
/// (which refuses `..` and absolute names): hostile archives need exactly those.
pub fn raw_header(name: &[u8], entry_type: EntryType, size: u64) -> Header {
    assert!(name.len() <= 100, "raw names must fit the header");
    let mut header = Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(entry_type);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_mtime(0);
    header.set_cksum();
    header
}

/// Builds archives entry by entry, names verbatim.
pub struct RawTar {
    pub builder: tar::Builder<Vec<u8>>,
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw_file(name.as_bytes(), data)
    }

    pub fn raw_file(&mut self, name: &[u8], data: &[u8]) -> &mut Self {
        let header = raw_header(name, EntryType::Regular, data.len() as u64);
        self.builder.append(&header, data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        let header = raw_header(name.as_bytes(), EntryType::Directory, 0);
        self.builder.append(&header, &[][..]).unwrap();
        self
    }

    /// A symlink or hard link named `name` pointing at `target`.
    pub fn link(&mut self, name: &[u8], entry_type: EntryType, target: &str) -> &mut Self {
        let mut header = raw_header(name, entry_type, 0);
        header.set_link_name_literal(target).unwrap();
        header.set_cksum();
        self.builder.append(&header, &[][..]).unwrap();
        self
    }

    /// A device or FIFO entry.
    pub fn special(&mut self, name: &[u8], entry_type: EntryType) -> &mut Self {
        let mut header = raw_header(name, entry_type, 0);
        header.set_device_major(1).unwrap();
        header.set_device_minor(3).unwrap();
        header.set_cksum();
        self.builder.append(&header, &[][..]).unwrap();
        self
    }

    pub fn blob(&mut self, data: &[u8]) -> &mut Self {
        self.file(&sha256(data).blob_entry_name(), data)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

/// A small valid image: a layer, a config, a manifest tagged `v1`.
pub struct Image {
    pub layer: Vec<u8>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub manifest_descriptor: Descriptor,
    pub index: Vec<u8>,
}

impl Image {
    pub fn new(seed_text: &str) -> Image {
        let layer = format!("layer content {seed_text}").into_bytes();
        let config =
            format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed_text}"}}"#).into_bytes();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(&config).to_string(),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": sha256(&layer).to_string(),
                "size": layer.len(),
            }],
        }))
        .unwrap();
        let manifest_descriptor = index::with_ref_name(
            Descriptor::new(
                MediaType::ImageManifest,
                manifest.len() as u64,
                sha256(&manifest),
            ),
            "v1",
        );
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [manifest_descriptor],
        }))
        .unwrap();
        Image {
            layer,
            config,
            manifest,
            manifest_descriptor,
            index,
        }
    }

    pub fn blobs(&self) -> [&[u8]; 3] {
        [&self.layer, &self.config, &self.manifest]
    }

    pub fn digests(&self) -> Vec<Digest> {
        let mut digests: Vec<Digest> = self.blobs().iter().map(|b| sha256(b)).collect();
        digests.sort();
        digests
    }

    /// Appends the whole image as a plain layout.
    pub fn append_to(&self, tar: &mut RawTar) {
        tar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        for blob in self.blobs() {
            tar.blob(blob);
        }
        tar.file("index.json", &self.index);
    }
}

/// Every file under `dir`, recursively, with its content (or a marker for what is not a
/// regular file), relative to `dir`.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(relative, "<dir>".into());
                walk(root, &path, out);
            } else if meta.is_file() {
                let data = fs::read(&path).unwrap();
                out.insert(relative, format!("{}", sha256(&data)));
            } else {
                out.insert(relative, format!("<{:?}>", meta.file_type()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Walks `root/blobs` and checks that it holds only `<alg>/<encoded>` regular files whose
/// content hashes to their name; returns their digests.
pub fn verify_blob_files(root: &Path) -> Vec<Digest> {
    let blobs = root.join("blobs");
    let mut digests = Vec::new();
    let Ok(algorithms) = fs::read_dir(&blobs) else {
        return digests;
    };
    assert!(
        fs::symlink_metadata(&blobs).unwrap().is_dir(),
        "{} is not a real directory",
        blobs.display()
    );
    for algorithm_dir in algorithms {
        let algorithm_dir = algorithm_dir.unwrap();
        let meta = fs::symlink_metadata(algorithm_dir.path()).unwrap();
        assert!(
            meta.is_dir(),
            "{} is not a real directory",
            algorithm_dir.path().display()
        );
        let name = algorithm_dir.file_name().into_string().unwrap();
        let algorithm = Algorithm::from_name(&name)
            .unwrap_or_else(|| panic!("unexpected directory blobs/{name}"));
        for file in fs::read_dir(algorithm_dir.path()).unwrap() {
            let file = file.unwrap();
            let path = file.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            assert!(
                meta.is_file(),
                "{} is not a regular file: {:?}",
                path.display(),
                meta.file_type()
            );
            let encoded = file.file_name().into_string().unwrap();
            let digest = Digest::parse(&format!("{name}:{encoded}"))
                .unwrap_or_else(|e| panic!("{} is not named as a blob: {e}", path.display()));
            let actual = algorithm.digest(&fs::read(&path).unwrap());
            assert_eq!(
                actual,
                digest,
                "{} does not hash to its name",
                path.display()
            );
            digests.push(digest);
        }
    }
    digests.sort();
    digests
}

/// The names of the entries of a plain tar, in order (long names resolved).
pub fn entry_names(archive: &[u8]) -> Vec<String> {
    let mut tar = tar::Archive::new(archive);
    tar.entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect()
}

/// The index entries of a store, as descriptors.
pub fn manifests(store: &dyn Store) -> Vec<Descriptor> {
    store.index().unwrap().manifests().clone()
}

/// Every blob a store lists (it must be able to list them).
pub fn list_blobs(store: &dyn Store) -> Vec<Digest> {
    store
        .blob_listing()
        .expect("the store lists its blobs")
        .list_blobs()
        .unwrap()
}

/// Reads every blob a store lists, verified, by digest.
pub fn read_all_blobs(store: &dyn Store) -> BTreeMap<Digest, Vec<u8>> {
    list_blobs(store)
        .into_iter()
        .map(|d| (d, seed::read_blob(store, d).unwrap()))
        .collect()
}

/// The stored size of a blob, which must be there.
pub fn blob_size(store: &dyn Store, digest: Digest) -> u64 {
    store
        .stat(ContentKind::Blob, digest)
        .unwrap()
        .unwrap_or_else(|| panic!("{digest} is not stored in {}", store.location()))
}

/// An error and its causes, joined with ": ", as the CLI prints them: a message's `Display`
/// says what failed where, the cause is only in the chain.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether `program` can be run.
pub fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether a store has a blob.
pub fn has(store: &dyn Store, digest: Digest) -> bool {
    store.contains(ContentKind::Blob, digest).unwrap()
}

/// A zstd frame made by hand: `head` as a raw block, then `zeros` zero bytes as RLE blocks of
/// 128 KiB (4 bytes each: 32768:1, zstd's own ratio on zeros), and no content size, so
/// nothing but decoding tells how much is in it.
pub fn zstd_rle_frame(head: &[u8], zeros: u64) -> Vec<u8> {
    const BLOCK: u64 = 128 << 10;
    fn block_header(out: &mut Vec<u8>, last: bool, kind: u32, size: u64) {
        let value = u32::from(last) | kind << 1 | (size as u32) << 3;
        out.extend_from_slice(&value.to_le_bytes()[..3]);
    }
    assert!(head.len() as u64 <= BLOCK);
    // Magic; frame header: no content size, no checksum, not single-segment; window 128 KiB.
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3];
    block_header(&mut frame, zeros == 0, 0, head.len() as u64);
    frame.extend_from_slice(head);
    let mut left = zeros;
    while left > 0 {
        let size = left.min(BLOCK);
        left -= size;
        block_header(&mut frame, left == 0, 1, size);
        frame.push(0);
    }
    frame
}

/// A real single-layer image: a gzip layer made from a tar, a config whose rootfs.diff_ids
/// names the uncompressed layer, a manifest, tagged `v1`, into any store. The same bytes every
/// time. Returns the manifest bytes.
pub fn build_image(store: &dyn Store) -> Vec<u8> {
    let mut layer_tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    let content = b"hello from oci-tar\n";
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    layer_tar
        .append_data(&mut header, "hello.txt", &content[..])
        .unwrap();
    let layer_tar = layer_tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&layer_tar).unwrap();
    let layer = gz.finish().unwrap();
    let layer_digest = seed::write_blob(store, &layer).unwrap();

    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer_tar).to_string()]},
    });
    let config = seed::write_json_blob(store, &config, MediaType::ImageConfig).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [Descriptor::new(MediaType::ImageLayerGzip, layer.len() as u64, layer_digest)],
    });
    let manifest_desc = seed::write_json_blob(store, &manifest, MediaType::ImageManifest).unwrap();
    store.tag(&manifest_desc, "v1").unwrap();
    seed::read_blob(store, Digest::try_from(manifest_desc.digest()).unwrap()).unwrap()
}
