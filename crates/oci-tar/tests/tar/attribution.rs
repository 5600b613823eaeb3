//! Which side a failure is blamed on: a read of the archive or source that fails names the
//! archive or source, a write that fails names the destination, whichever store does the
//! writing.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use oci_core::prelude::*;
use oci_core::{Compression, MemoryStore};
use oci_tar::{ExpansionLimit, TarArchive, TarWriter, pack, pack_to_file, unpack};

use crate::common::{
    RawTar, build_image, chain, list_blobs, manifests, new_layout, verify_blob_files,
};

/// An input that gives the first `good` bytes of `data`, then fails as a device or a dying
/// pipe would.
struct FailingInput<'a> {
    data: &'a [u8],
    good: usize,
}

impl Read for FailingInput<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good == 0 {
            return Err(io::Error::other("the input device failed"));
        }
        let n = buf.len().min(self.good);
        let (head, rest) = self.data.split_at(n);
        buf[..n].copy_from_slice(head);
        self.data = rest;
        self.good -= n;
        Ok(n)
    }
}

/// An output with room for `room` bytes, as a disk that fills up.
struct FillsUp {
    written: usize,
    room: usize,
}

impl Write for FillsUp {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.room - self.written);
        if n == 0 && !data.is_empty() {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The image of [`build_image`] as an archive whose layer comes last, after `index.json` (a
/// layout archive may hold its entries in any order), and where the layer's content starts:
/// cut there, everything but the layer is whole.
fn layer_last_archive() -> (Vec<u8>, u64) {
    let memory = MemoryStore::new();
    let manifest: serde_json::Value = serde_json::from_slice(&build_image(&memory)).unwrap();
    let layer = Digest::parse(manifest["layers"][0]["digest"].as_str().unwrap()).unwrap();
    let mut tar = RawTar::new();
    tar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for digest in list_blobs(&memory) {
        if digest != layer {
            tar.file(
                &digest.blob_entry_name(),
                &seed::read_blob(&memory, digest).unwrap(),
            );
        }
    }
    tar.file(
        "index.json",
        &serde_json::to_vec(&memory.index().unwrap()).unwrap(),
    );
    tar.file(
        &layer.blob_entry_name(),
        &seed::read_blob(&memory, layer).unwrap(),
    );
    let bytes = tar.finish();
    let layer_at = tar::Archive::new(&bytes[..])
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path_bytes().as_ref() == layer.blob_entry_name().as_bytes())
        .unwrap()
        .raw_file_position();
    (bytes, layer_at)
}

/// The archive of [`layer_last_archive`] at `path`, opened, then cut short under the reader
/// (it is read in place) inside the layer.
fn archive_cut_under_the_reader(path: &Path) -> TarArchive {
    let (bytes, layer_at) = layer_last_archive();
    fs::write(path, &bytes).unwrap();
    let archive = TarArchive::open(path).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(layer_at + 10)
        .unwrap();
    archive
}

#[test]
fn a_failed_read_of_the_archive_during_unpack_names_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, layer_at) = layer_last_archive();
    let source = Path::new("/media/usb/image.tar");
    let target = dir.path().join("layout");
    let layout = new_layout(&target);
    let memory = MemoryStore::named("memory");
    for (name, store) in [("directory", &layout as &dyn Store), ("memory", &memory)] {
        // Inside a blob's content, inside a header, inside `oci-layout`.
        for good in [layer_at as usize + 10, 1024 + 100, 520] {
            let input = FailingInput { data: &bytes, good };
            let err = unpack(input, source, store, ExpansionLimit::default()).unwrap_err();
            assert!(
                err.to_string().contains(&source.display().to_string()),
                "{name}, after {good} bytes: {}",
                chain(&err)
            );
            assert!(
                chain(&err).ends_with("the input device failed"),
                "{name}, after {good} bytes: {}",
                chain(&err)
            );
            assert!(
                manifests(store).is_empty(),
                "{name}: merged after a failure"
            );
        }
    }
    assert!(verify_blob_files(&target).len() < 3);
}

#[test]
fn a_failed_write_during_unpack_names_the_destination() {
    let (bytes, _) = layer_last_archive();
    // Room for the first headers, not for the first blob's content; then none for a header.
    for room in [1536 + 100, 700] {
        let destination = TarWriter::new(FillsUp { written: 0, room }, "/mnt/full/copy.tar");
        let err = unpack(
            &bytes[..],
            Path::new("image.tar"),
            &destination,
            ExpansionLimit::default(),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("/mnt/full/copy.tar"),
            "room {room}: {}",
            chain(&err)
        );
        assert!(!message.contains("image.tar"), "{}", chain(&err));
        assert!(
            chain(&err).ends_with("no storage space"),
            "room {room}: {}",
            chain(&err)
        );
    }
}

#[test]
fn a_failed_read_of_the_source_during_pack_names_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    let archive = archive_cut_under_the_reader(&path);
    let out = dir.path().join("out.tar");
    for err in [
        pack(&archive, Vec::new(), Compression::None, &out)
            .err()
            .unwrap(),
        pack_to_file(&archive, &out, Compression::Gzip).unwrap_err(),
    ] {
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}/blobs/sha256/", path.display())),
            "{}",
            chain(&err)
        );
        assert!(
            chain(&err).ends_with("archive ends inside an entry"),
            "{}",
            chain(&err)
        );
    }
    assert!(!out.exists(), "a failed pack left its output");
}

#[test]
fn a_failed_write_during_pack_names_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let layout = new_layout(&dir.path().join("layout"));
    build_image(&layout);
    for room in [1536 + 100, 700] {
        let err = pack(
            &layout,
            FillsUp { written: 0, room },
            Compression::None,
            Path::new("/mnt/full/out.tar"),
        )
        .err()
        .unwrap();
        assert_eq!(err.to_string(), "/mnt/full/out.tar", "{}", chain(&err));
        assert!(chain(&err).ends_with("no storage space"), "{}", chain(&err));
    }
    // A device that is always full.
    let full = Path::new("/dev/full");
    if full.exists() {
        let err = pack_to_file(&layout, full, Compression::None).unwrap_err();
        assert_eq!(err.to_string(), "/dev/full", "{}", chain(&err));
        assert!(
            chain(&err).contains("No space left on device"),
            "{}",
            chain(&err)
        );
    }
}

/// `copy_image` out of an archive hands the archive's reader to the destination: a failed
/// read there is the archive's, whichever store writes.
#[test]
fn a_failed_read_of_the_source_during_copy_image_names_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    let archive = archive_cut_under_the_reader(&path);
    let root = archive.resolve("v1").unwrap();
    let target = dir.path().join("copy");
    let layout = new_layout(&target);
    let memory = MemoryStore::named("memory");
    let writer = TarWriter::new(Vec::new(), "copy.tar");
    for (name, destination) in [
        ("directory", &layout as &dyn Store),
        ("memory", &memory),
        ("archive", &writer),
    ] {
        let err = copy_image(&archive, destination, &root).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}/blobs/sha256/", path.display())),
            "{name}: {}",
            chain(&err)
        );
        assert!(
            chain(&err).ends_with("archive ends inside an entry"),
            "{name}: {}",
            chain(&err)
        );
    }
    assert!(verify_blob_files(&target).len() < 3);
}
