//! Blob writes that leave nothing behind, no rewrites, verified reads, round trips.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use oci_core::{Algorithm, BlobListing, ContentKind, Digest, Error, Store, seed};
use oci_dir::{DirLayout, DirOptions, Durability};
use proptest::prelude::*;

use crate::common::{
    chain, err, files_under, new_layout, new_layout_with, read_all, relaxed, temp_debris,
};

/// Writes `content` with `algorithm` and commits with the given expectations; then checks that
/// the commit failed and left no file at all under `blobs/`.
fn check_failed_commit_leaves_nothing(
    options: DirOptions,
    algorithm: Algorithm,
    content: &[u8],
    size: Option<u64>,
    expected: Option<Digest>,
) {
    let (_tmp, layout) = new_layout_with(options);
    let mut writer = layout.begin_blob(algorithm).unwrap();
    writer.write_all(content).unwrap();
    let result = writer.commit(size, expected);
    assert!(
        matches!(
            result,
            Err(Error::UnexpectedDigest { .. } | Error::UnexpectedSize { .. })
        ),
        "{result:?}"
    );
    let left = files_under(&layout.root().join("blobs"));
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(temp_debris(layout.root()).is_empty());
    assert!(layout.list_blobs().unwrap().is_empty());
}

#[test]
fn blob_wrong_digest_leaves_nothing() {
    for options in [DirOptions::default(), relaxed()] {
        for algorithm in Algorithm::ALL {
            // One byte, under one chunk, and several chunks (hashed and written by the
            // pipeline's threads).
            for content in [vec![b'x'], vec![7u8; 600_000], vec![9u8; (5 << 20) + 3]] {
                let content = content.as_slice();
                let wrong = algorithm.digest(b"something else");
                check_failed_commit_leaves_nothing(options, algorithm, content, None, Some(wrong));
                let size = Some(content.len() as u64);
                check_failed_commit_leaves_nothing(options, algorithm, content, size, Some(wrong));
            }
        }
    }
}

#[test]
fn blob_wrong_size_leaves_nothing() {
    for options in [DirOptions::default(), relaxed()] {
        for algorithm in Algorithm::ALL {
            for content in [
                vec![],
                vec![b'x'],
                vec![7u8; 600_000],
                vec![9u8; (3 << 20) + 1],
            ] {
                let content = content.as_slice();
                let len = content.len() as u64;
                let right = Some(algorithm.digest(content));
                check_failed_commit_leaves_nothing(
                    options,
                    algorithm,
                    content,
                    Some(len + 1),
                    None,
                );
                check_failed_commit_leaves_nothing(
                    options,
                    algorithm,
                    content,
                    Some(len + 1),
                    right,
                );
            }
        }
    }
}

#[test]
fn blob_writer_dropped_leaves_nothing() {
    let (_tmp, layout) = new_layout();
    for algorithm in Algorithm::ALL {
        for len in [700_000, (3 << 20) + 5] {
            let mut writer = layout.begin_blob(algorithm).unwrap();
            writer.write_all(&vec![1u8; len]).unwrap();
            writer.flush().unwrap();
            drop(writer);
        }
    }
    let left = files_under(&layout.root().join("blobs"));
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(temp_debris(layout.root()).is_empty());
}

#[test]
fn blob_existing_is_not_rewritten() {
    let (_tmp, layout) = new_layout();
    let digest = seed::write_blob(&layout, b"already here").unwrap();
    let path = layout.root().join(digest.blob_path());
    // An old mtime, as a blob left unreferenced for a while has.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let before = fs::metadata(&path).unwrap();

    assert_eq!(seed::write_blob(&layout, b"already here").unwrap(), digest);
    let mut writer = layout.begin_blob(Algorithm::Sha256).unwrap();
    writer.write_all(b"already here").unwrap();
    assert_eq!(writer.commit(Some(12), Some(digest)).unwrap(), digest);

    let after = fs::metadata(&path).unwrap();
    assert_eq!(after.ino(), before.ino(), "the blob file was replaced");
    assert_eq!(fs::read(&path).unwrap(), b"already here");
    // Not rewritten, but touched: a re-put blob is young again, so gc's grace period protects
    // it until the caller tags what refers to it.
    assert!(
        after.modified().unwrap() > old,
        "the mtime of a re-put blob is refreshed"
    );
    assert_eq!(after.nlink(), 1);
    assert_eq!(files_under(&layout.root().join("blobs")), [path]);
}

#[test]
fn blob_contains_stat_and_list() {
    let (_tmp, layout) = new_layout();
    let mut written: Vec<Digest> = Algorithm::ALL
        .into_iter()
        .map(|a| layout.write_blob(a, b"listed").unwrap())
        .collect();
    let empty = seed::write_blob(&layout, b"").unwrap();
    written.push(empty);
    written.sort();
    // Names that are not digests are not listed.
    fs::write(layout.root().join("blobs/sha256/.tmp-debris"), b"x").unwrap();
    fs::write(layout.root().join("blobs/sha256/ABC"), b"x").unwrap();
    assert_eq!(layout.list_blobs().unwrap(), written);
    for digest in &written {
        let expected = if *digest == empty { 0 } else { 6 };
        // A directory keeps manifests as blobs: both kinds look in `blobs/`.
        for kind in [ContentKind::Blob, ContentKind::Manifest] {
            assert!(layout.contains(kind, *digest).unwrap());
            assert_eq!(layout.stat(kind, *digest).unwrap(), Some(expected));
        }
    }
    // Absent content is no error: `stat` says `None`, `contains` says `false`.
    let absent = Algorithm::Blake3.digest(b"absent");
    assert!(!layout.contains(ContentKind::Blob, absent).unwrap());
    assert_eq!(layout.stat(ContentKind::Blob, absent).unwrap(), None);
}

/// Overwrites one byte of a stored blob.
fn corrupt(layout: &DirLayout, digest: Digest) {
    let mut file = File::options()
        .write(true)
        .open(layout.root().join(digest.blob_path()))
        .unwrap();
    file.seek(SeekFrom::Start(3)).unwrap();
    file.write_all(b"X").unwrap();
}

#[test]
fn verified_read_of_corrupted_blob_fails() {
    let (_tmp, layout) = new_layout();
    let content = vec![b'a'; 1_000_000];
    let mut corrupted = content.clone();
    corrupted[3] = b'X';
    for algorithm in Algorithm::ALL {
        let digest = layout.write_blob(algorithm, &content).unwrap();
        corrupt(&layout, digest);
        for size in [None, Some(content.len() as u64)] {
            let mut reader = layout.fetch(ContentKind::Blob, digest, size).unwrap();
            // The content streams; only the read that reaches the end fails.
            let mut first = vec![0u8; 4096];
            reader.read_exact(&mut first).unwrap();
            let io_error = read_all(&mut reader).unwrap_err();
            assert_eq!(io_error.kind(), std::io::ErrorKind::InvalidData);
            match Error::io(layout.root(), io_error) {
                Error::UnexpectedDigest { expected, actual } => {
                    assert_eq!(expected, digest);
                    assert_eq!(actual, algorithm.digest(&corrupted));
                }
                other => panic!("{algorithm}: {other:?}"),
            }
        }
        assert!(matches!(
            err(seed::read_blob(&layout, digest)),
            Error::UnexpectedDigest { .. }
        ));
    }
}

#[test]
fn unverified_read_returns_corrupted_bytes() {
    let (tmp, layout) = new_layout();
    let digest = seed::write_blob(&layout, b"trusted content").unwrap();
    corrupt(&layout, digest);
    let trusting = DirLayout::open_with(
        tmp.path().join("layout"),
        DirOptions {
            verify_reads: false,
            ..DirOptions::default()
        },
    )
    .unwrap();
    assert!(!trusting.options().verify_reads);
    assert!(layout.options().verify_reads);
    assert_eq!(
        read_all(trusting.fetch(ContentKind::Blob, digest, None).unwrap()).unwrap(),
        b"truXted content"
    );
    // The seed's reader verifies whatever the option says.
    assert!(matches!(
        err(seed::read_blob(&trusting, digest)),
        Error::UnexpectedDigest { .. }
    ));
}

use std::io::Read as _;

/// Writes `data` in chunks of the given lengths (cycled), commits with the given knowledge,
/// and reads it back three ways.
fn round_trip(
    layout: &DirLayout,
    algorithm: Algorithm,
    data: &[u8],
    chunks: &[usize],
    size_known: bool,
    digest_known: bool,
) -> Result<(), TestCaseError> {
    let expected = algorithm.digest(data);
    let mut writer = layout.begin_blob(algorithm).unwrap();
    let mut offset = 0;
    for &chunk in chunks.iter().cycle() {
        if offset == data.len() {
            break;
        }
        let end = (offset + chunk).min(data.len());
        writer.write_all(&data[offset..end]).unwrap();
        offset = end;
    }
    prop_assert_eq!(writer.bytes_written(), data.len() as u64);
    let size = size_known.then_some(data.len() as u64);
    let digest = writer
        .commit(size, digest_known.then_some(expected))
        .unwrap();
    prop_assert_eq!(digest, expected);
    prop_assert_eq!(
        layout.stat(ContentKind::Blob, digest).unwrap(),
        Some(data.len() as u64)
    );
    let sized = read_all(
        layout
            .fetch(ContentKind::Blob, digest, Some(data.len() as u64))
            .unwrap(),
    )
    .unwrap();
    prop_assert!(sized == data, "fetch with size: content differs");
    let unsized_ = read_all(layout.fetch(ContentKind::Blob, digest, None).unwrap()).unwrap();
    prop_assert!(unsized_ == data, "fetch without size: content differs");
    let seeded = seed::read_blob(layout, digest).unwrap();
    prop_assert!(seeded == data, "read_blob: content differs");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn blob_round_trip_every_algorithm_and_durability(
        data in proptest::collection::vec(any::<u8>(), 0..=256 * 1024),
        chunks in proptest::collection::vec(1usize..=300 * 1024, 1..6),
        size_known in any::<bool>(),
        digest_known in any::<bool>(),
    ) {
        for durability in [Durability::Durable, Durability::Relaxed] {
            let (_tmp, layout) = new_layout_with(DirOptions { durability, ..DirOptions::default() });
            for algorithm in Algorithm::ALL {
                round_trip(&layout, algorithm, &data, &chunks, size_known, digest_known)?;
            }
            prop_assert_eq!(layout.list_blobs().unwrap().len(), Algorithm::ALL.len());
            prop_assert!(temp_debris(layout.root()).is_empty());
        }
    }
}

/// Blobs of several chunks, written in odd-sized pieces, go through the hashing and writing
/// threads (with `O_DIRECT` where the filesystem takes it, the unaligned tail through the page
/// cache); what is published must be exactly what was written. Lengths: an unaligned tail, a
/// tail under one block, a block-aligned tail, and whole chunks only.
#[test]
fn multi_chunk_blobs_round_trip() {
    let lengths = [
        (9u32 << 20) + 12_345,
        (1 << 20) + 100,
        (2 << 20) + 8192,
        3 << 20,
    ];
    for options in [DirOptions::default(), relaxed()] {
        let (_tmp, layout) = new_layout_with(options);
        for (algorithm, len) in Algorithm::ALL
            .into_iter()
            .flat_map(|a| lengths.map(|l| (a, l)))
        {
            let content: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut writer = layout.begin_blob(algorithm).unwrap();
            for piece in content.chunks(777_777) {
                writer.write_all(piece).unwrap();
            }
            let digest = writer.commit(Some(content.len() as u64), None).unwrap();
            assert_eq!(digest, algorithm.digest(&content));
            assert!(seed::read_blob(&layout, digest).unwrap() == content);
        }
        assert!(temp_debris(layout.root()).is_empty());
    }
}

/// An I/O error names where it happened in its `Display`; what the OS said is its `source`, so
/// a printer of the whole chain (the CLI's error line) shows each once.
#[test]
fn an_io_error_names_the_path_and_keeps_the_cause_in_its_source() {
    let (_tmp, layout) = new_layout();
    // A file where the algorithm directory should be: no blob can be written into it.
    let algorithm_dir = layout.root().join("blobs/sha256");
    fs::write(&algorithm_dir, b"not a directory").unwrap();
    let error = err(seed::write_blob(&layout, b"content"));
    let Error::Io { location, source } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(location.as_path(), Some(algorithm_dir.as_path()));
    assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory);
    assert_eq!(error.to_string(), algorithm_dir.display().to_string());
    assert_eq!(
        chain(&error),
        format!("{}: {source}", algorithm_dir.display())
    );
    assert!(
        chain(&error).contains("Not a directory"),
        "{}",
        chain(&error)
    );
    assert_eq!(fs::read(&algorithm_dir).unwrap(), b"not a directory");
}
