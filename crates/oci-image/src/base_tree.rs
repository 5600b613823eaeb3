//! The tree an image's layers make, as metadata only: what `image create --diff` compares a
//! directory against.
//!
//! Each layer is streamed from the store once (verified against its blob digest as it is
//! read, decompressed by its magic bytes) and applied in order to a map path → entry:
//! - `.wh.NAME` removes `NAME`, and everything below it, of the layers beneath; `.wh..wh..opq`
//!   removes everything below its directory of the layers beneath. A whiteout never removes
//!   what its own layer holds (umoci's rule): a layer's entries are gathered apart and merged
//!   after its whiteouts were applied to the layers beneath.
//! - An entry replaces what the layers beneath had at its path; a non-directory replacing a
//!   directory removes the directory's content too.
//! - A hard link is recorded as the entry it links to (same metadata and content).
//!
//! An entry holds its type, mode, owner, size, mtime, link target, device numbers, extended
//! attributes, and for a regular file the sha256 of its content, hashed as the layer streams
//! by: never the content itself, so memory is bounded per entry, whatever the files' sizes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufReader, Read};
use std::ops::Bound;

use oci_core::oci_digest::VerifyingReader;
use oci_core::oci_spec::image::Descriptor;
use oci_core::{Algorithm, ContentKind, Digest, Location, Store};
use tar::EntryType;

use crate::compression::decoder;
use crate::{Error, Result};

/// The PAX record prefix of an extended attribute.
const XATTR_RECORD: &str = "SCHILY.xattr.";
const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
}

/// One entry of the tree, as its layer's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseEntry {
    pub(crate) kind: Kind,
    /// Permission bits, setuid, setgid, sticky.
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) size: u64,
    pub(crate) mtime: i64,
    /// A symlink's target.
    pub(crate) link: Option<Vec<u8>>,
    /// A device's major and minor numbers.
    pub(crate) device: (u32, u32),
    /// Name → value, in byte order of the names; `None` when a PAX record of the entry could
    /// not be read (the tar crate splits records at newlines, so a value holding one is
    /// unreadable): the entry then never compares equal, and is written again.
    pub(crate) xattrs: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    /// A regular file's content hash.
    pub(crate) content: Option<Digest>,
}

/// Path (relative, `/`-separated, no trailing slash; the root is absent) → entry.
#[derive(Debug, Default)]
pub(crate) struct BaseTree {
    entries: BTreeMap<Vec<u8>, BaseEntry>,
}

impl BaseTree {
    /// The tree of `layers` (bottom first), read from `store`.
    pub(crate) fn read(store: &dyn Store, layers: &[Descriptor]) -> Result<BaseTree> {
        let mut tree = BaseTree::default();
        for layer in layers {
            tree.apply_layer(store, layer)?;
        }
        Ok(tree)
    }

    /// The entry at `path` (relative, `/`-separated).
    pub(crate) fn get(&self, path: &[u8]) -> Option<&BaseEntry> {
        self.entries.get(path)
    }

    /// The names of the direct children of the directory `dir` ("" for the root).
    pub(crate) fn children(&self, dir: &[u8]) -> BTreeSet<Vec<u8>> {
        let prefix = child_prefix(dir);
        self.entries
            .range::<[u8], _>((Bound::Included(prefix.as_slice()), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| {
                let rest = &key[prefix.len()..];
                let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
                rest[..end].to_vec()
            })
            .collect()
    }

    fn apply_layer(&mut self, store: &dyn Store, layer: &Descriptor) -> Result<()> {
        let digest = Digest::try_from(layer.digest()).map_err(|e| Error::InvalidImage {
            location: store.location().clone(),
            reason: format!("layer digest {}: {e}", layer.digest()),
        })?;
        let location = store.location().clone();
        let read_error = |e: io::Error| layer_error(&location, digest, &e);
        let fetched = store.fetch(ContentKind::Blob, digest, Some(layer.size()))?;
        let mut blob: Box<dyn Read + Send + '_> = if store.verifies_reads() {
            fetched
        } else {
            Box::new(VerifyingReader::new(fetched, digest, Some(layer.size())))
        };
        let mut upper: BTreeMap<Vec<u8>, BaseEntry> = BTreeMap::new();
        {
            let (_, plain) =
                decoder(BufReader::with_capacity(1 << 20, &mut blob)).map_err(read_error)?;
            let mut archive = tar::Archive::new(plain);
            self.read_entries(&mut archive, &mut upper)
                .map_err(read_error)?;
            // The rest of the stream (the tar's zero blocks), so the blob is read to its end.
            io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(read_error)?;
        }
        // And whatever follows the compressed stream: the verifying reader checks the digest
        // at the end of the blob.
        io::copy(&mut blob, &mut io::sink()).map_err(read_error)?;
        for (path, entry) in upper {
            if entry.kind != Kind::Directory {
                self.remove_below(&path);
            }
            self.entries.insert(path, entry);
        }
        Ok(())
    }

    /// A layer's entries: whiteouts applied to the tree beneath, the rest into `upper`.
    fn read_entries(
        &mut self,
        archive: &mut tar::Archive<impl Read>,
        upper: &mut BTreeMap<Vec<u8>, BaseEntry>,
    ) -> io::Result<()> {
        for entry in archive.entries()? {
            let mut entry = entry?;
            let raw_path = entry.path_bytes().into_owned();
            let Some(path) = normalize(&raw_path) else {
                continue;
            };
            let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
                Some(slash) => (&path[..slash], &path[slash + 1..]),
                None => (&b""[..], path.as_slice()),
            };
            if name == OPAQUE {
                self.remove_below(parent);
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT) {
                let hidden = [child_prefix(parent).as_slice(), hidden].concat();
                self.entries.remove(&hidden);
                self.remove_below(&hidden);
                continue;
            }
            let header = entry.header().clone();
            let entry_type = header.entry_type();
            if entry_type == EntryType::Link {
                let target = entry
                    .link_name_bytes()
                    .and_then(|t| normalize(&t))
                    .unwrap_or_default();
                if let Some(linked) = upper.get(&target).or_else(|| self.entries.get(&target)) {
                    let linked = linked.clone();
                    upper.insert(path, linked);
                }
                continue;
            }
            let kind = match entry_type {
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Kind::Regular,
                EntryType::Directory => Kind::Directory,
                EntryType::Symlink => Kind::Symlink,
                EntryType::Fifo => Kind::Fifo,
                EntryType::Char => Kind::CharDevice,
                EntryType::Block => Kind::BlockDevice,
                _ => continue,
            };
            let mut mtime = i64::try_from(header.mtime().unwrap_or(0)).unwrap_or(0);
            let mut uid = header.uid().unwrap_or(0);
            let mut gid = header.gid().unwrap_or(0);
            let mut xattrs = Vec::new();
            let mut xattrs_readable = true;
            if let Some(extensions) = entry.pax_extensions()? {
                for extension in extensions {
                    let Ok(extension) = extension else {
                        xattrs_readable = false;
                        continue;
                    };
                    let (Ok(key), value) = (extension.key(), extension.value_bytes()) else {
                        continue;
                    };
                    let number = || std::str::from_utf8(value).ok();
                    match key {
                        "mtime" => {
                            // Fractional seconds are kept by neither side of the comparison.
                            if let Some(seconds) = number()
                                .and_then(|v| v.split('.').next())
                                .and_then(|v| v.parse().ok())
                            {
                                mtime = seconds;
                            }
                        }
                        "uid" => uid = number().and_then(|v| v.parse().ok()).unwrap_or(uid),
                        "gid" => gid = number().and_then(|v| v.parse().ok()).unwrap_or(gid),
                        _ => {
                            if let Some(name) = key.strip_prefix(XATTR_RECORD) {
                                xattrs.push((name.as_bytes().to_vec(), value.to_vec()));
                            }
                        }
                    }
                }
            }
            xattrs.sort();
            let content = if kind == Kind::Regular {
                let mut hasher = HashingSink(Algorithm::Sha256.hasher());
                io::copy(&mut entry, &mut hasher)?;
                Some(hasher.0.finalize())
            } else {
                None
            };
            let base = BaseEntry {
                kind,
                mode: header.mode().unwrap_or(0) & 0o7777,
                uid,
                gid,
                size: if kind == Kind::Regular {
                    entry.size()
                } else {
                    0
                },
                mtime,
                link: (kind == Kind::Symlink)
                    .then(|| entry.link_name_bytes().map(std::borrow::Cow::into_owned))
                    .flatten(),
                device: (
                    header.device_major().ok().flatten().unwrap_or(0),
                    header.device_minor().ok().flatten().unwrap_or(0),
                ),
                xattrs: xattrs_readable.then_some(xattrs),
                content,
            };
            upper.insert(path, base);
        }
        Ok(())
    }

    /// Removes everything below the directory `dir` (not `dir` itself).
    fn remove_below(&mut self, dir: &[u8]) {
        let prefix = child_prefix(dir);
        let below: Vec<Vec<u8>> = self
            .entries
            .range::<[u8], _>((Bound::Included(prefix.as_slice()), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| key.clone())
            .collect();
        for key in below {
            self.entries.remove(&key);
        }
    }
}

/// `dir/` (nothing for the root): what the paths below `dir` start with.
fn child_prefix(dir: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        Vec::new()
    } else {
        [dir, b"/"].concat()
    }
}

/// A tar name as a key: no leading `./` or `/`, no trailing `/`, no `.` components; `None` for
/// the root itself or a name with `..` (which no tree holds).
fn normalize(name: &[u8]) -> Option<Vec<u8>> {
    let mut parts = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join(&b'/'))
}

fn layer_error(location: &Location, digest: Digest, e: &io::Error) -> Error {
    Error::InvalidImage {
        location: location.clone(),
        reason: format!("layer {digest}: cannot be read as a tar: {e}"),
    }
}

/// An `io::Write` that only hashes.
struct HashingSink(oci_core::oci_digest::Hasher);

impl io::Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The sha256 of what `reader` yields, as [`BaseEntry::content`] is computed.
pub(crate) fn content_digest(reader: impl Read) -> io::Result<Digest> {
    let mut hasher = HashingSink(Algorithm::Sha256.hasher());
    io::copy(&mut BufReader::with_capacity(1 << 16, reader), &mut hasher)?;
    Ok(hasher.0.finalize())
}
