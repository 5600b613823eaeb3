//! Progress reporting for long operations.

use std::io::{self, Read};

/// Where long operations report how far they got. Every method has a default that does
/// nothing, so an implementation picks what it shows. Calls come from the thread that called
/// the operation.
pub trait Progress {
    /// A stage begins: `label` (e.g. `layer rootfs/`) and the bytes it will read, when known.
    fn start(&self, label: &str, total_bytes: Option<u64>) {
        let _ = (label, total_bytes);
    }

    /// `bytes` more of the source were read.
    fn advance(&self, bytes: u64) {
        let _ = bytes;
    }

    /// The stage ended (successfully or not).
    fn finish(&self) {}
}

/// A progress sink that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Reports what passes through a reader.
pub(crate) struct ProgressReader<'p, R> {
    pub(crate) inner: R,
    pub(crate) progress: &'p dyn Progress,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Calls [`Progress::finish`] when dropped, so a failed stage ends too.
pub(crate) struct Stage<'p>(pub(crate) &'p dyn Progress);

impl<'p> Stage<'p> {
    pub(crate) fn start(progress: &'p dyn Progress, label: &str, total: Option<u64>) -> Self {
        progress.start(label, total);
        Stage(progress)
    }
}

impl Drop for Stage<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}
