//! `tar_reader` and `compressed_reader`: archives read in place and unpacked.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use oci_core::gc::{GcOptions, gc};
use oci_core::oci_digest::VerifyError;
use oci_core::{BLOBS_DIR, ContentKind, Digest, IMAGE_LAYOUT_FILE, INDEX_FILE, Store, index, seed};
use oci_dir::{DirLayout, DirOptions, Durability};
use oci_tar::{ExpansionLimit, TarArchive};

/// Small, so that a bomb the fuzzer finds costs milliseconds, not seconds.
pub const FUZZ_LIMIT: ExpansionLimit = ExpansionLimit {
    max_size: Some(16 << 20),
};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The input is an archive (plain, or compressed if it starts with a magic number): read it in
/// place, then unpack it into a fresh directory layout.
pub fn tar_reader(data: &[u8]) {
    let archive = read_in_place(data);
    unpack_into_sandbox(data, archive.as_ref());
}

/// The first byte picks how the rest becomes the archive stream: 0 as is, 1 a gzip stream and
/// 2 a zstd stream (the magic number is prepended, the rest goes to the decoder untouched), 3
/// and 4 a plain archive that is compressed here (valid streams of fuzzed archives).
pub fn compressed_reader(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let stream = match mode % 5 {
        0 => rest.to_vec(),
        1 => [&GZIP_MAGIC[..], rest].concat(),
        2 => [&ZSTD_MAGIC[..], rest].concat(),
        3 => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(rest).expect("writing to a Vec");
            encoder.finish().expect("writing to a Vec")
        }
        _ => zstd::encode_all(rest, 1).expect("compressing a slice"),
    };
    let archive = read_in_place(&stream);
    if let Some(archive) = &archive {
        // Nothing the archive holds can be past what the limit lets the decoder produce.
        let bound = FUZZ_LIMIT.max_size.expect("the fuzz limit has a size");
        for digest in list_blobs(archive) {
            let size = stored_size(archive, digest);
            assert!(
                size <= bound,
                "{digest}: {size} bytes, over the expansion bound {bound}"
            );
        }
    }
    unpack_into_sandbox(&stream, archive.as_ref());
}

/// Opens `data` as a [`TarArchive`] and reads everything in it.
fn read_in_place(data: &[u8]) -> Option<TarArchive> {
    let mut file = tempfile::tempfile().expect("creating an anonymous temp file");
    file.write_all(data).expect("writing the temp file");
    let archive = TarArchive::from_file_with(file, "fuzz.tar", FUZZ_LIMIT).ok()?;
    for digest in list_blobs(&archive) {
        let size = stored_size(&archive, digest);
        // A verifying reader hands out every byte and fails only the read that reaches the
        // end: what it read is hashed here too, to check its verdict.
        let mut raw = Vec::new();
        let read = archive
            .fetch(ContentKind::Blob, digest, None)
            .expect("a listed blob opens")
            .read_to_end(&mut raw);
        if let Err(e) = &read {
            assert!(
                VerifyError::from_io(e).is_some(),
                "reading {digest} ({size} bytes in the archive): {e}"
            );
        }
        assert_eq!(raw.len() as u64, size, "{digest}: read length");
        let matches = digest.algorithm().digest(&raw) == digest;
        assert_eq!(
            read.is_ok(),
            matches,
            "{digest}: verifying reader {read:?} disagrees with the hash"
        );
        let verified = seed::read_blob(&archive, digest);
        assert_eq!(
            verified.is_ok(),
            matches,
            "{digest}: verified read {verified:?} disagrees with the hash"
        );
    }
    let _ = archive.index();
    let _ = seed::read_image_layout(&archive);
    oci_core::fsck::fsck(&archive)
        .unwrap_or_else(|e| panic!("fsck failed on an archive that opened: {e}"));
    let options = GcOptions {
        grace: Duration::ZERO,
        dry_run: true,
    };
    // An archive being read removes nothing: gc is refused before it reads anything.
    let refused = gc(&archive, &options);
    assert!(
        matches!(refused, Err(oci_core::Error::Unsupported { .. })),
        "gc over an archive: {refused:?}"
    );
    Some(archive)
}

/// Every blob `store` lists.
fn list_blobs(store: &dyn Store) -> Vec<Digest> {
    store
        .blob_listing()
        .expect("archives and directories list their blobs")
        .list_blobs()
        .expect("an open store lists its blobs")
}

/// The stored size of a blob `store` listed.
fn stored_size(store: &dyn Store, digest: Digest) -> u64 {
    store
        .stat(ContentKind::Blob, digest)
        .expect("a listed blob has a size")
        .unwrap_or_else(|| panic!("{digest} is listed but not stored"))
}

/// Unpacks `data` into a layout in a fresh directory, then checks that nothing but verified
/// layout files is there, and nothing beside it. When the same bytes also opened in place
/// (`archive`) and the unpack succeeded, both views agree: every blob the archive lists was
/// unpacked, and every ref resolves to the same descriptor.
fn unpack_into_sandbox(data: &[u8], archive: Option<&TarArchive>) {
    let sandbox = tempfile::tempdir().expect("creating a temp dir");
    let root = sandbox.path().join("layout");
    let options = DirOptions {
        durability: Durability::Relaxed,
        ..DirOptions::default()
    };
    let layout = DirLayout::create_with(&root, options, &seed::InitOptions::default())
        .expect("creating a layout");
    let unpacked = oci_tar::unpack(data, Path::new("fuzz input"), &layout, FUZZ_LIMIT);
    let beside: Vec<_> = fs::read_dir(sandbox.path())
        .expect("listing the sandbox")
        .map(|e| e.expect("a sandbox entry").file_name())
        .collect();
    assert_eq!(beside, ["layout"], "unpack wrote outside its target");
    check_tree(&root);
    if unpacked.is_err() {
        return;
    }
    let unpacked_index = layout.index().expect("an unpacked index parses");
    let Some(archive) = archive else {
        return;
    };
    let stored = list_blobs(&layout);
    for digest in list_blobs(archive) {
        assert!(
            stored.contains(&digest),
            "{digest} is in the archive but was not unpacked"
        );
    }
    let archive_index = archive.index().expect("unpack parsed this index");
    for name in archive_index.manifests().iter().filter_map(index::ref_name) {
        assert_eq!(
            index::resolve_ref(&unpacked_index, name),
            index::resolve_ref(&archive_index, name),
            "ref {name:?} resolves differently in the archive and once unpacked"
        );
    }
}

/// Only `oci-layout`, `index.json` and `blobs/<alg>/<encoded>` whose content hashes to its
/// name; no links, no debris, no cache (an index update keeps nothing beside `index.json`).
fn check_tree(root: &Path) {
    for entry in fs::read_dir(root).expect("listing the layout") {
        let entry = entry.expect("a layout entry");
        let name = entry.file_name().into_string().expect("a UTF-8 name");
        let kind = entry.file_type().expect("an entry type");
        match name.as_str() {
            IMAGE_LAYOUT_FILE | INDEX_FILE => assert!(kind.is_file(), "{name} is not a file"),
            BLOBS_DIR => {
                assert!(kind.is_dir(), "{name} is not a directory");
                check_blobs(&entry.path());
            }
            _ => panic!("unexpected {name:?} in the unpacked layout"),
        }
    }
}

fn check_blobs(blobs: &Path) {
    for algorithm_dir in fs::read_dir(blobs).expect("listing blobs/") {
        let algorithm_dir = algorithm_dir.expect("an entry of blobs/");
        let algorithm = algorithm_dir
            .file_name()
            .into_string()
            .expect("a UTF-8 name");
        assert!(
            algorithm_dir.file_type().expect("an entry type").is_dir(),
            "blobs/{algorithm} is not a directory"
        );
        for blob in fs::read_dir(algorithm_dir.path()).expect("listing blobs/<alg>") {
            let blob = blob.expect("a blob entry");
            let encoded = blob.file_name().into_string().expect("a UTF-8 name");
            let digest = Digest::parse(&format!("{algorithm}:{encoded}"))
                .unwrap_or_else(|e| panic!("blobs/{algorithm}/{encoded}: {e}"));
            assert!(
                blob.file_type().expect("an entry type").is_file(),
                "{digest} is not a regular file"
            );
            let bytes = fs::read(blob.path()).expect("reading a blob");
            assert_eq!(
                digest.algorithm().digest(&bytes),
                digest,
                "an unverified blob was published"
            );
        }
    }
}
