//! Uploading a blob: one request when it is small, chunks otherwise, each chunk held until
//! the registry has it.
//!
//! An upload session starts with `POST /v2/<repo>/blobs/uploads/` (or a cross-repository
//! mount, which may finish it at once). A blob no larger than the chunk size goes in one
//! `PUT <location>?digest=`. A larger one streams from its source in one `PATCH` (its
//! `Content-Range` the whole blob, so it is also a valid first and last chunk), hashed on the
//! way, then an empty `PUT ?digest=` once the hash matched; a cut there ends the upload with
//! an error the copy answers by sending the blob again from the start. With
//! `chunked_uploads`, or when the digest is known only at the end, it goes in `PATCH`es of
//! the chunk size (raised to the registry's `OCI-Chunk-Min-Length`), each from a buffer,
//! then an empty `PUT ?digest=`. When a chunk does not arrive whole (a cut connection, a 5xx), the session's status
//! (`GET <location>`, its `Range`) says how much the registry kept, and the rest of the chunk
//! is sent again. A registry that cannot say (distribution 2.8 loses the session after a cut
//! inside a `PATCH`) makes the upload fail with an error the caller can start again from.
//! A blob sent in one request is in memory: a session a cut left unusable is replaced by a
//! new one and the blob sent again. An upload whose end is uncertain (the answer to its last
//! request lost) is settled by a `HEAD` of the blob. A session that is abandoned (an error, a
//! cancel) is deleted.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use oci_core::Digest;
use oci_core::oci_digest::Hasher;
use ureq::http;

use crate::Error;
use crate::client::{Client, Payload, Request};

/// An upload in progress.
pub(crate) struct Upload<'c> {
    client: &'c Client,
    repository: String,
    scope: String,
    /// Where the next request goes (the registry moves it after each chunk).
    location: String,
    /// Bytes the registry has.
    offset: u64,
    chunk_size: usize,
    finished: bool,
}

/// How an upload session began.
pub(crate) enum Started<'c> {
    /// The blob was mounted from another repository: nothing to send.
    Mounted,
    /// A session to send the blob in.
    Session(Upload<'c>),
}

impl<'c> Upload<'c> {
    /// Opens a session in `repository`; with `mount_from`, asks the registry to mount the blob
    /// from that repository instead (it says 201 when it did).
    pub(crate) fn start(
        client: &'c Client,
        repository: &str,
        mount: Option<(Digest, &str)>,
    ) -> Result<Started<'c>, Error> {
        let mut scope = format!("repository:{repository}:pull,push");
        let mut target = format!("/v2/{repository}/blobs/uploads/");
        if let Some((digest, from)) = mount {
            scope.push_str(&format!(" repository:{from}:pull"));
            target.push_str(&format!("?mount={digest}&from={from}"));
        }
        let response = client.expect(
            Request::new(http::Method::POST, target.clone(), scope.clone()),
            &[201, 202],
        )?;
        if response.status() == 201 {
            return Ok(Started::Mounted);
        }
        let location = location_of(client, &target, &response)?;
        let minimum = response
            .headers()
            .get("OCI-Chunk-Min-Length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        Ok(Started::Session(Upload {
            client,
            repository: repository.to_owned(),
            scope,
            location,
            offset: 0,
            chunk_size: client.options().chunk_size.max(minimum).max(1),
            finished: false,
        }))
    }

    /// The chunk size in force.
    pub(crate) fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Sends the whole blob in one `PUT` (it must fit in a chunk) and finishes.
    ///
    /// A connection cut during the `PUT` can leave the session holding part of it, which
    /// distribution cannot go on from (the same `PUT` again is refused: the session is not
    /// where it was): the blob is then sent again in a new session, a bounded number of times.
    pub(crate) fn put_whole(mut self, bytes: &[u8], digest: Digest) -> Result<(), Error> {
        let mut sessions = 1;
        loop {
            let target = with_digest(&self.location, digest);
            let request = Request::new(http::Method::PUT, target, self.scope.clone())
                .header("Content-Type", "application/octet-stream")
                .body(Payload::Bytes(bytes));
            let Err(error) = self.client.expect(request, &[201]) else {
                self.finished = true;
                return Ok(());
            };
            if self.registry_has(digest) {
                return Ok(());
            }
            if sessions > self.client.options().retries || !may_start_again(&error) {
                return Err(session_error(error));
            }
            sessions += 1;
            self = match Upload::start(self.client, &self.repository, None)? {
                Started::Session(upload) => upload,
                Started::Mounted => return Ok(()),
            };
        }
    }

    /// Whether the registry has the blob: what settles an upload whose end is uncertain (the
    /// answer to its last request lost). A blob there under its digest is the blob: the
    /// registry checked it.
    fn registry_has(&self, digest: Digest) -> bool {
        let request = Request::new(
            http::Method::HEAD,
            format!("/v2/{}/blobs/{digest}", self.repository),
            self.scope.clone(),
        );
        self.client.expect(request, &[200]).is_ok()
    }

    /// Sends one chunk; on a cut, asks how much arrived and sends the rest.
    pub(crate) fn send_chunk(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let mut sent = 0usize;
        let mut attempts = 0;
        while sent < chunk.len() {
            let part = &chunk[sent..];
            let mut reader = part;
            let start = self.offset;
            let end = start + part.len() as u64 - 1;
            let request = Request::new(
                http::Method::PATCH,
                self.location.clone(),
                self.scope.clone(),
            )
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{start}-{end}"))
            .body(Payload::Stream(&mut reader, part.len() as u64));
            let outcome = self.client.expect(request, &[202]);
            match outcome {
                Ok(response) => {
                    self.location = location_of(self.client, &self.location, &response)?;
                    self.offset += part.len() as u64;
                    sent = chunk.len();
                }
                Err(e) if e.is_transient() && attempts < self.client.options().retries => {
                    attempts += 1;
                    let kept = self.status()?;
                    if kept < start || kept > end + 1 {
                        return Err(lost(self.client, &self.location, kept, start));
                    }
                    sent += (kept - start) as usize;
                    self.offset = kept;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// How many bytes the registry has (`GET <location>`: `Range: 0-N`, N the last byte's
    /// offset). `0-0` is what registries say of an empty session (distribution says it of
    /// one byte too): it is taken as none, since a byte the registry has and the client sends
    /// again is refused (its `Content-Range` does not start where the registry is), while a
    /// byte taken for had and never sent would be missing from the blob.
    fn status(&mut self) -> Result<u64, Error> {
        let request = Request::new(http::Method::GET, self.location.clone(), self.scope.clone());
        let response = self.client.expect(request, &[204]).map_err(session_error)?;
        let range = response
            .headers()
            .get("Range")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("0-0")
            .to_owned();
        self.location = location_of(self.client, &self.location, &response)?;
        Ok(held(&range))
    }

    /// Sends the whole blob in one `PATCH` streamed from `content` (`size` bytes, hashed on
    /// the way), and finishes the session once the hash is `digest`.
    ///
    /// The body is sent with chunked transfer encoding, so that the request can end cleanly
    /// whatever happens to the source: when reading it fails (a cancelled copy, a bad or short
    /// source), the body just ends there, the registry answers with the session's new state,
    /// and the session is then deleted with that state (distribution refuses to delete a
    /// session whose state is behind what it received, and would keep the bytes). A cut
    /// connection ends with the transport's error, and the caller starts again from its
    /// source.
    pub(crate) fn send_streamed(
        mut self,
        content: &mut dyn Read,
        size: u64,
        digest: Digest,
        url: &str,
    ) -> Result<(), Error> {
        let mut hashed = HashingRead {
            inner: content.take(size),
            hasher: digest.algorithm().hasher(),
            read: 0,
            size,
            failed: None,
        };
        let request = Request::new(
            http::Method::PATCH,
            self.location.clone(),
            self.scope.clone(),
        )
        .header("Content-Type", "application/octet-stream")
        .body(Payload::Chunked(&mut hashed));
        let response = self.client.expect(request, &[202])?;
        self.location = location_of(self.client, &self.location, &response)?;
        self.offset = hashed.read;
        if let Some(error) = hashed.failed.take() {
            return Err(Error::Transport {
                method: "PATCH",
                url: url.to_owned(),
                source: ureq::Error::Io(error),
            });
        }
        verify(url, hashed.hasher, hashed.read, size, digest)?;
        self.finish(digest)
    }

    /// Ends the session with the blob's digest. When the answer is lost (the registry may have
    /// finished, and then no longer knows the session), whether it has the blob settles it.
    pub(crate) fn finish(mut self, digest: Digest) -> Result<(), Error> {
        let target = with_digest(&self.location, digest);
        let request = Request::new(http::Method::PUT, target, self.scope.clone());
        match self.client.expect(request, &[201]) {
            Ok(_) => {
                self.finished = true;
                Ok(())
            }
            Err(_) if self.registry_has(digest) => Ok(()),
            Err(error) => Err(session_error(error)),
        }
    }
}

/// Pauses between asking a registry to delete an abandoned session, until it no longer knows
/// it: at most about 1.5 s in all.
const DELETE_PAUSES_MS: [u64; 5] = [50, 100, 200, 400, 800];

impl Drop for Upload<'_> {
    /// An abandoned session is deleted: the registry frees what it held. A request that was
    /// streaming into the session when it was abandoned may still be running in the registry
    /// when the `DELETE` arrives (it is still reading what the connection had buffered), and
    /// distribution then writes the rest into the session again: so the `DELETE` is sent
    /// again, after growing pauses, until the registry answers that it has no such session.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        for pause in DELETE_PAUSES_MS {
            let request = Request::new(
                http::Method::DELETE,
                self.location.clone(),
                self.scope.clone(),
            );
            // The registry cannot be asked (gone, or it refuses): nothing more to do.
            let Ok(mut response) = self.client.send(request) else {
                return;
            };
            match response.status().as_u16() {
                // Gone for good; but distribution answers 404 also for a session it found at
                // another offset than the request's state (`BLOB_UPLOAD_INVALID`), which it
                // cancels then: that one is asked again.
                404 => {
                    let body = response
                        .body_mut()
                        .with_config()
                        .limit(64 << 10)
                        .read_to_string()
                        .unwrap_or_default();
                    if !body.contains("BLOB_UPLOAD_INVALID") {
                        return;
                    }
                }
                204 | 400 | 416 => {}
                _ => return,
            }
            std::thread::sleep(std::time::Duration::from_millis(pause));
        }
    }
}

/// Sends `content` (`size` bytes, hashing to `digest`) to `repository`: in one request when
/// small, streamed in one `PATCH` or in chunks when large; `cancel`, when set, stops chunks
/// between two (a stream is stopped by its reader). Whoever calls this checked the blob is not there.
pub(crate) fn upload_known(
    client: &Client,
    repository: &str,
    digest: Digest,
    size: u64,
    content: &mut dyn Read,
    mount: Option<&str>,
    cancel: Option<&AtomicBool>,
) -> Result<bool, Error> {
    let started = Upload::start(client, repository, mount.map(|from| (digest, from)))?;
    let mut upload = match started {
        Started::Mounted => return Ok(true),
        Started::Session(upload) => upload,
    };
    let chunk_size = upload.chunk_size();
    let url = client.url(&format!("/v2/{repository}/blobs/{digest}"));
    let read_error = |e: io::Error| Error::Transport {
        method: "PUT",
        url: url.clone(),
        source: ureq::Error::Io(e),
    };
    let mut hasher = digest.algorithm().hasher();
    if size <= chunk_size as u64 {
        let bytes = read_exactly(content, size).map_err(read_error)?;
        check_content(&url, &bytes, size, digest)?;
        upload.put_whole(&bytes, digest)?;
        return Ok(false);
    }
    if !client.options().chunked_uploads {
        upload.send_streamed(content, size, digest, &url)?;
        return Ok(false);
    }
    let mut buffer = vec![0u8; chunk_size];
    let mut total = 0u64;
    loop {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Refused {
                url,
                reason: "interrupted: the upload was cancelled".into(),
            });
        }
        let filled = fill(content, &mut buffer).map_err(read_error)?;
        if filled == 0 {
            break;
        }
        hasher.update(&buffer[..filled]);
        total += filled as u64;
        if total > size {
            break;
        }
        upload.send_chunk(&buffer[..filled])?;
    }
    verify(&url, hasher, total, size, digest)?;
    upload.finish(digest)?;
    Ok(false)
}

/// A blob written to a registry as it is made, its digest known at the end.
pub(crate) struct StreamingUpload<'c> {
    pub(crate) upload: Option<Upload<'c>>,
    pub(crate) buffer: Vec<u8>,
    pub(crate) hasher: Hasher,
    pub(crate) written: u64,
}

impl StreamingUpload<'_> {
    /// Sends the buffer as a chunk once it is full.
    pub(crate) fn flush_full(&mut self) -> Result<(), Error> {
        if let Some(upload) = self.upload.as_mut()
            && self.buffer.len() >= upload.chunk_size()
        {
            upload.send_chunk(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }
}

/// The body of a streamed upload: hashes what passes through it. A source that fails, or
/// that ends before `size`, ends the body instead, keeping why in `failed`: the request then
/// finishes cleanly, and the upload is abandoned with the session's true state.
struct HashingRead<R> {
    inner: R,
    hasher: Hasher,
    read: u64,
    size: u64,
    failed: Option<io::Error>,
}

impl<R: Read> Read for HashingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed.is_some() {
            return Ok(0);
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                self.failed = Some(e);
                return Ok(0);
            }
        };
        if n == 0 && self.read < self.size && !buf.is_empty() {
            self.failed = Some(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the content ended after {} of its {} bytes",
                    self.read, self.size
                ),
            ));
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// The whole of a small blob: `size` bytes in a buffer of exactly that size (a
/// `read_to_end` that looks for the end would double it), then one more read to see the end.
/// Content of another length is read as it is, for the digest check to refuse.
fn read_exactly(content: &mut dyn Read, size: u64) -> io::Result<Vec<u8>> {
    let length = usize::try_from(size).map_err(io::Error::other)?;
    let mut bytes = vec![0u8; length];
    let filled = fill(content, &mut bytes)?;
    bytes.truncate(filled);
    if filled == length {
        let mut probe = [0u8; 1];
        if fill(content, &mut probe)? == 1 {
            // Longer than said: one byte more is enough for the check to fail.
            bytes.push(probe[0]);
        }
    }
    Ok(bytes)
}

/// Reads until `buffer` is full or the stream ends; returns how much was read.
fn fill(content: &mut dyn Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match content.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn check_content(url: &str, bytes: &[u8], size: u64, digest: Digest) -> Result<(), Error> {
    let mut hasher = digest.algorithm().hasher();
    hasher.update(bytes);
    verify(url, hasher, bytes.len() as u64, size, digest)
}

/// The content must be what the descriptor says before the registry is told it is.
pub(crate) fn verify(
    url: &str,
    hasher: Hasher,
    total: u64,
    size: u64,
    digest: Digest,
) -> Result<(), Error> {
    let actual = hasher.finalize();
    if total != size || actual != digest {
        return Err(Error::Refused {
            url: url.to_owned(),
            reason: format!(
                "the content is not {digest} of {size} bytes (read {total} bytes hashing to {actual}): not uploaded"
            ),
        });
    }
    Ok(())
}

/// Whether an upload that failed this way may succeed in a new session: the connection was
/// cut or the registry was busy, or the session is gone or out of step after such a failure
/// (404 `BLOB_UPLOAD_UNKNOWN`, 400 `BLOB_UPLOAD_INVALID`, 416), or the bytes arrived damaged
/// (400 `DIGEST_INVALID`: they were checked before they were sent).
fn may_start_again(error: &Error) -> bool {
    error.is_transient()
        || matches!(
            error,
            Error::Status {
                status: 400 | 404 | 416,
                ..
            }
        )
}

/// A session the registry no longer knows (404) is said as such, not as content not found.
fn session_error(error: Error) -> Error {
    match error {
        Error::Status {
            status: 404, url, ..
        } => Error::Refused {
            url,
            reason: "the registry lost the upload session after a cut (it cannot resume); the \
                     upload must start again"
                .into(),
        },
        other => other,
    }
}

/// `location` with `digest=` added to its query.
fn with_digest(location: &str, digest: Digest) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

/// The `Location` of an upload response, absolute (registries may send a path).
fn location_of(
    client: &Client,
    request_target: &str,
    response: &http::Response<ureq::Body>,
) -> Result<String, Error> {
    let location = response
        .headers()
        .get("Location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Refused {
            url: client.url(request_target),
            reason: "an upload answer without a Location".into(),
        })?;
    Ok(client.url(location))
}

/// `Range: 0-N` → N.
fn parse_range_end(range: &str) -> Option<u64> {
    let range = range.trim().trim_start_matches("bytes=");
    let (_, end) = range.split_once('-')?;
    end.trim().parse().ok()
}

/// How many bytes an upload's `Range` says the registry holds (see [`Upload::status`]).
fn held(range: &str) -> u64 {
    match parse_range_end(range) {
        None | Some(0) => 0,
        Some(end) => end + 1,
    }
}

fn lost(client: &Client, location: &str, kept: u64, start: u64) -> Error {
    Error::Refused {
        url: client.url(location),
        reason: format!(
            "the registry says it holds {kept} bytes of an upload that had sent {start}: the \
             upload must start again"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_locations() {
        assert_eq!(parse_range_end("0-1023"), Some(1023));
        assert_eq!(parse_range_end("bytes=0-9"), Some(9));
        assert_eq!(parse_range_end("junk"), None);
        assert_eq!(held("0-0"), 0);
        assert_eq!(held("0-1023"), 1024);
        assert_eq!(held(""), 0);
        let digest = oci_core::Algorithm::Sha256.digest(b"");
        assert_eq!(
            with_digest("/u/1?_state=x", digest),
            format!("/u/1?_state=x&digest={digest}")
        );
        assert_eq!(with_digest("/u/1", digest), format!("/u/1?digest={digest}"));
    }
}
