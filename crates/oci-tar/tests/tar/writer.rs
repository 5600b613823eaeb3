//! TarWriter: round trip, determinism, long names, spooling, poisoning.

use std::io::{Read, Write};
use std::process::Command;

use oci_core::oci_digest::VerifyingReader;
use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::prelude::*;
use oci_core::{BlobListing, Error, Location, attribute_reads};
use oci_tar::{TarArchive, TarWriter};

use crate::common::{blob_size, chain, entry_names, have, sha256};

/// What the standard sequence wrote.
struct Written {
    blobs: Vec<(Digest, Vec<u8>)>,
    tags: Vec<(String, Descriptor)>,
}

/// init, write_blob (sha256), write_blob_with (sha512, blake3), write_json_blob, tags.
fn write_sequence<W: Write + Send>(archive: &TarWriter<W>) -> Written {
    seed::init(archive, &seed::InitOptions::default()).unwrap();
    let plain = b"plain sha256 blob".to_vec();
    let long = b"a sha512 blob, whose entry name needs a GNU long name".to_vec();
    let b3 = b"a blake3 blob".to_vec();
    let d_plain = seed::write_blob(archive, &plain).unwrap();
    let d_long = archive.write_blob(Algorithm::Sha512, &long).unwrap();
    let d_b3 = archive.write_blob(Algorithm::Blake3, &b3).unwrap();
    assert_eq!(d_plain, Algorithm::Sha256.digest(&plain));
    assert_eq!(d_long, Algorithm::Sha512.digest(&long));
    assert_eq!(d_b3, Algorithm::Blake3.digest(&b3));
    let config_value = serde_json::json!({"architecture": "amd64", "os": "linux"});
    let config = seed::write_json_blob(archive, &config_value, MediaType::ImageConfig).unwrap();
    let config_bytes = serde_json::to_vec(&config_value).unwrap();
    assert_eq!(config.size(), config_bytes.len() as u64);
    let long_desc = Descriptor::new(MediaType::ImageManifest, long.len() as u64, d_long);
    let b3_desc = Descriptor::new(MediaType::ImageLayer, b3.len() as u64, d_b3);
    archive.tag(&config, "v1").unwrap();
    archive.tag(&long_desc, "sha512-one").unwrap();
    archive.tag(&b3_desc, "blake").unwrap();
    // Retagging replaces: "v1" ends up on the blake3 blob.
    archive.tag(&b3_desc, "v1").unwrap();
    let config_digest = Digest::try_from(config.digest()).unwrap();
    Written {
        blobs: vec![
            (d_plain, plain),
            (d_long, long),
            (d_b3, b3),
            (config_digest, config_bytes),
        ],
        tags: vec![
            ("sha512-one".into(), long_desc),
            ("blake".into(), b3_desc.clone()),
            ("v1".into(), b3_desc),
        ],
    }
}

#[test]
fn round_trip_through_tar_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout.tar");
    let archive = TarWriter::new(std::fs::File::create(&path).unwrap(), &path);
    let written = write_sequence(&archive);
    let expected_index = seed::read_index(&archive).unwrap();
    archive.finish().unwrap();

    let read = TarArchive::open(&path).unwrap();
    assert!(read.skipped().is_empty(), "{:?}", read.skipped());
    let mut expected: Vec<Digest> = written.blobs.iter().map(|(d, _)| *d).collect();
    expected.sort();
    assert_eq!(read.list_blobs().unwrap(), expected);
    for (digest, bytes) in &written.blobs {
        assert_eq!(&seed::read_blob(&read, *digest).unwrap(), bytes, "{digest}");
        assert_eq!(blob_size(&read, *digest), bytes.len() as u64);
    }
    let index = seed::read_index(&read).unwrap();
    assert_eq!(index.manifests(), expected_index.manifests());
    assert_eq!(
        index.manifests().len(),
        3,
        "retagging v1 replaced its entry"
    );
    let names: Vec<String> = index
        .manifests()
        .iter()
        .map(|d| oci_core::index::ref_name(d).unwrap().to_owned())
        .collect();
    assert_eq!(names, ["sha512-one", "blake", "v1"]);
    for (name, descriptor) in &written.tags {
        let resolved = read.resolve(name).unwrap();
        assert_eq!(resolved.digest(), descriptor.digest(), "{name}");
        assert_eq!(resolved.size(), descriptor.size(), "{name}");
        assert_eq!(resolved.media_type(), descriptor.media_type(), "{name}");
    }
    let layout = seed::read_image_layout(&read).unwrap();
    assert_eq!(layout.image_layout_version(), "1.0.0");
}

#[test]
fn same_sequence_gives_same_bytes_and_canonical_headers() {
    let first = TarWriter::new(Vec::new(), "-");
    let written = write_sequence(&first);
    let first = first.finish().unwrap();
    let second = TarWriter::new(Vec::new(), "-");
    write_sequence(&second);
    let second = second.finish().unwrap();
    assert!(
        first == second,
        "two identical sequences gave different archives"
    );

    let names = entry_names(&first);
    let [(plain, _), (long, _), (b3, _), (config, _)] = &written.blobs[..] else {
        unreachable!()
    };
    assert_eq!(
        names,
        [
            "blobs/".to_owned(),
            "blobs/sha256/".into(),
            plain.blob_entry_name(),
            "blobs/sha512/".into(),
            long.blob_entry_name(),
            "blobs/blake3/".into(),
            b3.blob_entry_name(),
            config.blob_entry_name(),
            "index.json".into(),
            "oci-layout".into(),
        ]
    );

    // Every header, long-name records included, carries nothing of who wrote it or when.
    let mut tar = tar::Archive::new(&first[..]);
    let mut raw_count = 0;
    for entry in tar.entries().unwrap().raw(true) {
        let entry = entry.unwrap();
        let header = entry.header();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        assert_eq!(header.mtime().unwrap(), 0, "{name}");
        assert_eq!(header.uid().unwrap(), 0, "{name}");
        assert_eq!(header.gid().unwrap(), 0, "{name}");
        assert_eq!(header.username_bytes().unwrap_or_default(), b"", "{name}");
        assert_eq!(header.groupname_bytes().unwrap_or_default(), b"", "{name}");
        raw_count += 1;
    }
    assert_eq!(raw_count, names.len() + 1, "one GNU long-name record");
    // Ends with the two zero blocks, on a block boundary.
    assert_eq!(first.len() % 512, 0);
    assert!(first[first.len() - 1024..].iter().all(|&b| b == 0));
}

#[test]
fn sha512_long_names_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.tar");
    let archive = TarWriter::new(std::fs::File::create(&path).unwrap(), &path);
    seed::init(&archive, &seed::InitOptions::default()).unwrap();
    let data = b"long name content".to_vec();
    let digest = archive.write_blob(Algorithm::Sha512, &data).unwrap();
    archive.finish().unwrap();
    let name = digest.blob_entry_name();
    assert_eq!(name.len(), 141, "{name}");
    assert!(name.len() > 100, "needs more than a USTAR name field");

    // The tar crate sees the full name and the content.
    let bytes = std::fs::read(&path).unwrap();
    let mut tar = tar::Archive::new(&bytes[..]);
    let mut found = false;
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path_bytes().as_ref() == name.as_bytes() {
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
            assert_eq!(content, data);
            found = true;
        }
    }
    assert!(found, "{name} not in {:?}", entry_names(&bytes));

    // TarArchive finds it.
    let read = TarArchive::open(&path).unwrap();
    assert_eq!(read.list_blobs().unwrap(), [digest]);
    assert_eq!(seed::read_blob(&read, digest).unwrap(), data);

    // GNU tar lists and extracts it.
    if !have("tar") {
        eprintln!("SKIPPED (part): GNU tar not on PATH, long names not checked with it");
        return;
    }
    let listed = Command::new("tar").arg("tf").arg(&path).output().unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.lines().any(|l| l == name), "{listed}");
    let out = dir.path().join("x");
    std::fs::create_dir(&out).unwrap();
    let status = Command::new("tar")
        .arg("xf")
        .arg(&path)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(out.join(&name)).unwrap(), data);
}

#[test]
fn unknown_size_blob_of_32_mib_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.tar");
    let archive = TarWriter::new(std::fs::File::create(&path).unwrap(), &path);
    seed::init(&archive, &seed::InitOptions::default()).unwrap();
    let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut writer = archive.begin_blob(Algorithm::Sha256).unwrap();
    let mut hasher = Algorithm::Sha256.hasher();
    for round in 0..32u8 {
        let mut piece = chunk.clone();
        piece[0] = round;
        writer.write_all(&piece).unwrap();
        hasher.update(&piece);
    }
    assert_eq!(writer.bytes_written(), 32 << 20);
    let digest = writer.commit(None, None).unwrap();
    assert_eq!(digest, hasher.finalize());
    archive
        .tag(
            &Descriptor::new(MediaType::ImageLayer, 32 << 20, digest),
            "big",
        )
        .unwrap();
    archive.finish().unwrap();

    let read = TarArchive::open(&path).unwrap();
    assert_eq!(blob_size(&read, digest), 32 << 20);
    let reader = read
        .fetch(ContentKind::Blob, digest, Some(32 << 20))
        .unwrap();
    let (actual, size) = Algorithm::Sha256.digest_reader(reader).unwrap();
    assert_eq!((actual, size), (digest, 32 << 20));
    assert_eq!(read.resolve("big").unwrap().size(), 32 << 20);
}

fn assert_invalid(error: &Error, what: &str) {
    let message = error.to_string();
    assert!(
        message.contains("the archive is invalid"),
        "{what}: expected a message saying the archive is invalid, got {message}"
    );
}

/// The descriptor a copy pushes: digest and size known up front, so the blob streams straight
/// into the archive.
fn layer(digest: Digest, size: u64) -> Descriptor {
    Descriptor::new(MediaType::ImageLayer, size, digest)
}

/// After poisoning, nothing more is accepted and `finish` refuses to end the archive.
fn assert_poisoned<W: Write + Send>(archive: TarWriter<W>) {
    let err = seed::write_blob(&archive, b"more").unwrap_err();
    assert_invalid(&err, "write_blob after poisoning");
    let err = archive
        .push(&layer(sha256(b"x"), 1), &mut &b"x"[..])
        .expect_err("push after poisoning must fail");
    assert_invalid(&err, "push after poisoning");
    let err = seed::write_index(&archive, &oci_core::index::empty_index()).unwrap_err();
    assert_invalid(&err, "write_index after poisoning");
    let err = archive.finish().err().expect("finish after poisoning");
    assert_invalid(&err, "finish after poisoning");
}

fn fresh_writer() -> TarWriter<Vec<u8>> {
    let archive = TarWriter::new(Vec::new(), "poisoned.tar");
    seed::init(&archive, &seed::InitOptions::default()).unwrap();
    seed::write_blob(&archive, b"a good blob first").unwrap();
    archive
}

#[test]
fn streamed_blob_shorter_than_announced_poisons() {
    let archive = fresh_writer();
    let data = b"twelve bytes";
    let err = archive
        .push(&layer(sha256(data), 20), &mut &data[..])
        .unwrap_err();
    assert_invalid(&err, "push of a short blob");
    assert!(err.to_string().contains("20"), "{err}");
    assert_poisoned(archive);
}

#[test]
fn streamed_blob_longer_than_announced_poisons() {
    let archive = fresh_writer();
    let data = b"twelve bytes";
    let err = archive
        .push(&layer(sha256(data), 5), &mut &data[..])
        .unwrap_err();
    // The write past the announced size failed: the message names the blob in the archive,
    // and its cause says the archive is invalid.
    assert!(
        err.to_string().starts_with(&format!(
            "poisoned.tar/{}",
            sha256(data).blob_path().display()
        )),
        "{err}"
    );
    assert!(
        chain(&err).contains("the archive is invalid"),
        "{}",
        chain(&err)
    );
    assert!(
        chain(&err).contains("longer than its 5 bytes"),
        "{}",
        chain(&err)
    );
    assert_poisoned(archive);
}

#[test]
fn streamed_blob_with_wrong_content_poisons() {
    let archive = fresh_writer();
    let promised = sha256(b"promised content");
    let err = archive
        .push(&layer(promised, 16), &mut &b"supplied content"[..])
        .unwrap_err();
    assert_invalid(&err, "push of wrong content");
    assert!(err.to_string().contains(&promised.to_string()), "{err}");
    assert_poisoned(archive);
}

/// A source that yields `data`, then fails: a pipe whose writer died, a disk that went away.
struct FailsAfter<'a> {
    data: &'a [u8],
}

impl Read for FailsAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.data.is_empty() {
            return Err(std::io::Error::other("the source went away"));
        }
        self.data.read(buf)
    }
}

#[test]
fn streamed_blob_whose_source_fails_poisons_and_blames_the_source() {
    let data = b"never finished";
    // Part-way through, and before the first byte.
    for given in [4, 0] {
        let archive = fresh_writer();
        let source = FailsAfter {
            data: &data[..given],
        };
        let mut source = attribute_reads(source, Location::Path("source.bin".into()));
        let err = archive
            .push(&layer(sha256(data), data.len() as u64), &mut source)
            .unwrap_err();
        // The read failed, not the archive: the message names the source.
        assert_eq!(err.to_string(), "source.bin", "{}", chain(&err));
        assert!(
            chain(&err).ends_with("the source went away"),
            "{}",
            chain(&err)
        );
        // The header promised bytes that never came: the stream is unusable.
        let err = archive
            .finish()
            .expect_err("finish after an abandoned blob");
        assert_invalid(&err, "finish after an abandoned blob");
        assert!(
            err.to_string()
                .contains(&format!("abandoned after {given} of {} bytes", data.len())),
            "{err}"
        );

        let archive = fresh_writer();
        let mut source = FailsAfter {
            data: &data[..given],
        };
        archive
            .push(&layer(sha256(data), data.len() as u64), &mut source)
            .unwrap_err();
        assert_poisoned(archive);
    }
}

#[test]
fn verified_blob_with_wrong_content_or_size_poisons() {
    // pack's path: the verifying reader's failing last read stops the append.
    let promised = sha256(b"promised content");
    let archive = fresh_writer();
    let reader = VerifyingReader::new(&b"supplied content"[..], promised, Some(16));
    // The source is at fault, and the error says so; the archive takes no more.
    let err = archive.append_verified(promised, 16, reader).unwrap_err();
    assert!(matches!(err, Error::UnexpectedDigest { .. }), "{err}");
    assert!(err.to_string().contains(&promised.to_string()), "{err}");
    assert_poisoned(archive);

    let archive = fresh_writer();
    let reader = VerifyingReader::new(&b"promised content!"[..], promised, Some(16));
    let err = archive.append_verified(promised, 16, reader).unwrap_err();
    assert!(matches!(err, Error::UnexpectedSize { .. }), "{err}");
    assert_poisoned(archive);
}

#[test]
fn verified_blob_of_correct_content_reads_back() {
    let archive = fresh_writer();
    let data = vec![9u8; 3 << 20];
    let digest = sha256(&data);
    let size = data.len() as u64;
    archive
        .append_verified(
            digest,
            size,
            VerifyingReader::new(&data[..], digest, Some(size)),
        )
        .unwrap();
    // Twice is once.
    archive
        .append_verified(
            digest,
            size,
            VerifyingReader::new(&data[..], digest, Some(size)),
        )
        .unwrap();
    seed::write_index(&archive, &oci_core::index::empty_index()).unwrap();
    let bytes = archive.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    std::fs::write(&path, bytes).unwrap();
    let read = TarArchive::open(&path).unwrap();
    assert_eq!(seed::read_blob(&read, digest).unwrap(), data);
    assert_eq!(read.list_blobs().unwrap().len(), 2);
}

#[test]
fn streamed_blob_of_correct_content_is_accepted() {
    // The control for the poisoning tests: the same calls with matching data succeed.
    let archive = fresh_writer();
    let data = b"exactly right";
    let size = data.len() as u64;
    archive
        .push(&layer(sha256(data), size), &mut &data[..])
        .unwrap();
    assert_eq!(
        archive.stat(ContentKind::Blob, sha256(data)).unwrap(),
        Some(size)
    );
    // A second copy of the same blob is verified, not written twice.
    archive
        .push(&layer(sha256(data), size), &mut &data[..])
        .unwrap();
    // A wrong second copy is refused, and leaves the archive as it was: nothing of it was
    // written.
    let err = archive
        .push(&layer(sha256(data), size), &mut &b"exactly wrong"[..])
        .unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedDigest { expected, .. } if expected == sha256(data)),
        "{err}"
    );
    let bytes = archive.finish().unwrap();
    let names = entry_names(&bytes);
    let name = sha256(data).blob_entry_name();
    assert_eq!(names.iter().filter(|n| **n == name).count(), 1, "{names:?}");
}

/// A sink that fails once, part-way through the byte at `fail_at`, and accepts everything
/// after: a transient error (a full disk freed, `EAGAIN` on a non-blocking pipe).
struct FailsOnce {
    out: Vec<u8>,
    fail_at: usize,
    failed: bool,
}

impl Write for FailsOnce {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if !self.failed && self.out.len() + data.len() > self.fail_at {
            let room = self.fail_at - self.out.len();
            if room == 0 {
                self.failed = true;
                return Err(std::io::Error::other("transient failure"));
            }
            self.out.extend_from_slice(&data[..room]);
            return Ok(room);
        }
        self.out.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn failed_header_write_poisons() {
    let (first, second, third) = (&b"first"[..], &b"second"[..], &b"third"[..]);
    // Where the second blob's header is, from a clean run.
    let clean = TarWriter::new(Vec::new(), "clean");
    seed::init(&clean, &seed::InitOptions::default()).unwrap();
    seed::write_blob(&clean, first).unwrap();
    seed::write_blob(&clean, second).unwrap();
    let clean = clean.finish().unwrap();
    let mut tar = tar::Archive::new(&clean[..]);
    let header_at = tar
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path_bytes().as_ref() == sha256(second).blob_entry_name().as_bytes())
        .unwrap()
        .raw_header_position() as usize;

    for (what, spooled) in [("spooled", true), ("streamed", false)] {
        let archive = TarWriter::new(
            FailsOnce {
                out: Vec::new(),
                fail_at: header_at + 100,
                failed: false,
            },
            "flaky.tar",
        );
        seed::init(&archive, &seed::InitOptions::default()).unwrap();
        seed::write_blob(&archive, first).unwrap();
        let err = if spooled {
            seed::write_blob(&archive, second).unwrap_err()
        } else {
            archive
                .push(
                    &layer(sha256(second), second.len() as u64),
                    &mut &second[..],
                )
                .expect_err("the header write fails")
        };
        // The output failed: the message names it, the system's error is its cause.
        assert_eq!(err.to_string(), "flaky.tar", "{what}: {}", chain(&err));
        assert!(
            chain(&err).ends_with("transient failure"),
            "{what}: {}",
            chain(&err)
        );
        // Half a header is in the stream: nothing may follow it.
        let err = seed::write_blob(&archive, third)
            .err()
            .unwrap_or_else(|| panic!("{what}: a write after a torn header succeeded"));
        assert_invalid(&err, what);
        let err = archive
            .finish()
            .err()
            .unwrap_or_else(|| panic!("{what}: finish after a torn header succeeded"));
        assert_invalid(&err, what);
    }
}

/// A reader that yields a few bytes at a time, pausing between them, so that pushes on
/// several threads are in the middle of their blobs at the same moment.
struct Trickle<'a> {
    data: &'a [u8],
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(std::time::Duration::from_millis(2));
        let n = buf.len().min(self.data.len()).min(64);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A copy with `-j N` pushes its layers from several threads at once: they take turns at the
/// stream (as does a spooled blob committed meanwhile) and every one lands whole.
#[test]
fn pushes_from_several_threads_at_once_take_turns_and_all_land() {
    let archive = TarWriter::new(Vec::new(), "concurrent.tar");
    seed::init(&archive, &seed::InitOptions::default()).unwrap();
    let layers: Vec<Vec<u8>> = (0..6u8)
        .map(|i| {
            (0..2000u32)
                .map(|j| (j as u8).wrapping_mul(i + 1))
                .collect()
        })
        .collect();
    let spooled = b"written with begin_blob while the others stream".to_vec();
    std::thread::scope(|scope| {
        for data in &layers {
            let archive = &archive;
            scope.spawn(move || {
                archive
                    .push(
                        &layer(sha256(data), data.len() as u64),
                        &mut Trickle { data },
                    )
                    .unwrap();
            });
        }
        let archive = &archive;
        let spooled = &spooled;
        scope.spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(5));
            seed::write_blob(archive, spooled).unwrap();
        });
    });
    let bytes = archive.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("concurrent.tar");
    std::fs::write(&path, bytes).unwrap();
    let read = TarArchive::open(&path).unwrap();
    for data in layers.iter().chain([&spooled]) {
        let digest = sha256(data);
        let mut content = Vec::new();
        read.fetch(ContentKind::Blob, digest, Some(data.len() as u64))
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(&content, data);
    }
}
