//! A layer from an existing tar file, plain, gzip or zstd (detected by magic bytes).
//!
//! When the file is already compressed the way the layer should be, its bytes are stored as
//! they are: one read of the file feeds the blob writer and, through a decompressor, the
//! diff_id hash. Otherwise the decompressed tar goes through the usual chain
//! ([`crate::layer`]) and is compressed anew. Either way the tar is parsed on the way, so a
//! file that is not a tar is refused rather than stored.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use oci_core::oci_digest::HashingWriter;
use oci_core::oci_spec::image::Descriptor;
use oci_core::{BlobWriter, Store};

use crate::compression::{self, decoder};
use crate::layer::{Layer, LayerOptions, LayerSink};
use crate::progress::{NoProgress, Progress, ProgressReader, Stage};
use crate::{Error, Result};

const READ_BUFFER: usize = 1 << 20;

/// Writes a layer from the tar file at `path` into `store`. The blob keeps the file's bytes
/// when the file is compressed as `options.compression` says (the level is then ignored);
/// otherwise it is recompressed. `options.mtime` and `options.ownership` do not apply: the
/// entries are stored as the file has them.
pub fn write_tar_layer(
    store: &dyn Store,
    path: &Path,
    options: &LayerOptions,
    progress: Option<&dyn Progress>,
) -> Result<Layer> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let metadata = file.metadata().map_err(|e| Error::io(path, e))?;
    if !metadata.is_file() {
        return Err(Error::Source {
            path: path.to_path_buf(),
            reason: "not a regular file".to_owned(),
        });
    }
    let found = compression::of_file(path)?;
    let progress = progress.unwrap_or(&NoProgress);
    let _stage = Stage::start(
        progress,
        &format!("layer from {}", path.display()),
        Some(metadata.len()),
    );
    let input = ProgressReader {
        inner: file,
        progress,
    };
    if found == options.compression {
        store_as_is(store, path, input, options)
    } else {
        recompress(store, path, input, options)
    }
}

/// One read of the file: its bytes into the blob, and decompressed into the diff_id hash.
fn store_as_is(
    store: &dyn Store,
    path: &Path,
    input: impl Read,
    options: &LayerOptions,
) -> Result<Layer> {
    let location = store.location().clone();
    let mut tee = Tee {
        inner: input,
        out: store.begin_blob(options.algorithm)?,
        failed: None,
    };
    let mut diff = HashingWriter::new(io::sink(), options.algorithm);
    let parsed = {
        let buffered = BufReader::with_capacity(READ_BUFFER, &mut tee);
        decoder(buffered)
            .and_then(|(compression, plain)| parse_tar(plain, &mut diff).map(|()| compression))
    };
    // Whatever follows the compressed stream (padding some tools add) is part of the blob.
    let parsed =
        parsed.and_then(|compression| io::copy(&mut tee, &mut io::sink()).map(|_| compression));
    let compression = parsed.map_err(|e| match tee.failed.take() {
        Some(write_error) => Error::store_io(&location, write_error),
        None => not_a_tar(path, &e),
    })?;
    let (_, diff_id, uncompressed_size) = diff.finish();
    let blob: Box<dyn BlobWriter + '_> = tee.out;
    let size = blob.bytes_written();
    let digest = blob.commit(Some(size), None)?;
    Ok(Layer {
        descriptor: Descriptor::new(compression.layer_media_type(), size, digest),
        diff_id,
        uncompressed_size,
        skipped: Vec::new(),
    })
}

/// Decompresses the file into the layer chain, which hashes and compresses it anew.
fn recompress(
    store: &dyn Store,
    path: &Path,
    input: impl Read,
    options: &LayerOptions,
) -> Result<Layer> {
    let mut sink = LayerSink::new(store, options)?;
    let location = sink.location().clone();
    let result = {
        let mut out = BufWriter::with_capacity(READ_BUFFER, &mut sink);
        let buffered = BufReader::with_capacity(READ_BUFFER, input);
        decoder(buffered)
            .and_then(|(_, plain)| parse_tar(plain, &mut out))
            .and_then(|()| out.flush())
    };
    result.map_err(|e| {
        if sink.failed() {
            Error::store_io(&location, e)
        } else {
            not_a_tar(path, &e)
        }
    })?;
    sink.finish()
}

fn not_a_tar(path: &Path, e: &io::Error) -> Error {
    Error::Source {
        path: path.to_path_buf(),
        reason: format!("not a readable tar (plain, gzip or zstd): {e}"),
    }
}

/// Reads the whole tar stream `plain` into `out`, parsing its headers on the way.
fn parse_tar(plain: impl Read, out: &mut dyn Write) -> io::Result<()> {
    let mut copy = Tee {
        inner: plain,
        out,
        failed: None,
    };
    let result = (|| {
        for entry in tar::Archive::new(&mut copy).entries()? {
            entry?;
        }
        // The end-of-archive blocks and whatever padding follows belong to the diff_id too.
        io::copy(&mut copy, &mut io::sink())?;
        Ok(())
    })();
    match copy.failed.take() {
        Some(write_error) => Err(write_error),
        None => result,
    }
}

/// A reader that copies everything it reads into `out`. A failed write is kept aside, so the
/// caller can tell it from a failed read.
struct Tee<R, W> {
    inner: R,
    out: W,
    failed: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let kind = e.kind();
            self.failed = Some(e);
            return Err(io::Error::new(kind, "writing the layer failed"));
        }
        Ok(n)
    }
}
