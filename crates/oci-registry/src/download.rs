//! Reading a blob from a registry, resumed where a cut connection left it.

use std::io::{self, Read};

use ureq::BodyReader;
use ureq::http;

use crate::client::{Client, Request};

/// A blob's bytes as the registry sends them. When the connection breaks (a read error, or an
/// end before the length the registry announced), it asks again with `Range: bytes=N-` from
/// the last byte it passed on, a bounded number of times; a registry that answers the range
/// with the whole blob (200) has the bytes already passed on skipped. The caller verifies the
/// digest over everything ([`oci_core::oci_digest::VerifyingReader`]).
pub(crate) struct Download<'c> {
    client: &'c Client,
    target: String,
    scope: String,
    reader: Option<BodyReader<'static>>,
    /// Bytes passed on so far.
    position: u64,
    /// The blob's length, when known.
    total: Option<u64>,
    resumes_left: u32,
}

impl<'c> Download<'c> {
    /// Starts reading `target` (a `/v2/<repo>/blobs/<digest>` path).
    pub(crate) fn start(
        client: &'c Client,
        target: String,
        scope: String,
        total: Option<u64>,
    ) -> Result<Download<'c>, crate::Error> {
        let mut download = Download {
            client,
            target,
            scope,
            reader: None,
            position: 0,
            total,
            resumes_left: client.options().retries,
        };
        download.open()?;
        Ok(download)
    }

    /// (Re)opens the stream at `position`.
    fn open(&mut self) -> Result<(), crate::Error> {
        let mut request = Request::new(http::Method::GET, self.target.clone(), self.scope.clone());
        if self.position > 0 {
            request = request.header("Range", format!("bytes={}-", self.position));
        }
        let response = self.client.expect(request, &[200, 206])?;
        let status = response.status().as_u16();
        if self.total.is_none() && status == 200 {
            self.total = response
                .headers()
                .get("Content-Length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
        }
        let mut reader = response.into_body().into_reader();
        if status == 200 && self.position > 0 {
            // The whole blob again: skip what was passed on already.
            io::copy(&mut (&mut reader).take(self.position), &mut io::sink()).map_err(|e| {
                crate::Error::Transport {
                    method: "GET",
                    url: self.client.url(&self.target),
                    source: ureq::Error::Io(e),
                }
            })?;
        }
        self.reader = Some(reader);
        Ok(())
    }

    fn resume(&mut self, cause: io::Error) -> io::Result<()> {
        if self.resumes_left == 0 {
            return Err(cause);
        }
        self.resumes_left -= 1;
        self.reader = None;
        self.open().map_err(io::Error::other)
    }
}

impl Read for Download<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(reader) = self.reader.as_mut() else {
                return Ok(0);
            };
            match reader.read(buf) {
                Ok(0) if self.total.is_some_and(|total| self.position < total) => {
                    let cause = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection ended before the whole blob came",
                    );
                    self.resume(cause)?;
                }
                Ok(n) => {
                    self.position += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.resume(e)?,
            }
        }
    }
}
