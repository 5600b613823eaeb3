//! Where the parts of an `index.json` lie in its text, and a record of it that lets the next
//! edit of the same text skip the parse.
//!
//! Checking every entry of a 10,000-entry index is most of a tag into it (3-7 ms of about 10
//! on the benchmark machine). The text an edit writes was checked before it was written, so
//! [`IndexDocument::write_recorded`](super::IndexDocument::write_recorded) also gives a record
//! of where its members and entries lie, with an xxh3-128 hash of the whole text. The next
//! edit hashes the text it reads (0.2 ms for 2.6 MB) and, if the hash is the recorded one,
//! takes the places from the record. Any other text, even one byte off, is parsed as before.
//!
//! The hash tells changed text from unchanged, not an attacker from a friend: whoever can write
//! the record can write `index.json` itself. The record is still checked against the text
//! before use (in bounds, each entry an object in a comma-separated list, the record's own
//! hash), so a damaged one is never a panic and never splices text badly.

use std::io::{self, Write};
use std::ops::Range;

use xxhash_rust::xxh3::{Xxh3, xxh3_128};

/// The members and entries of a document, as ranges of its text.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Outline {
    /// Top-level members other than `manifests`: for a repeated key, the last one.
    pub members: Vec<(String, Range<usize>)>,
    /// The entries of `manifests`, each an object.
    pub entries: Vec<Range<usize>>,
}

/// How much written text is hashed at a time.
const HASH_CHUNK: usize = 64 << 10;

/// Says what a record is, and which layout of it.
const MAGIC: &[u8; 8] = b"OCIOUTL1";

/// Passes writes on, counting and hashing them, and notes where the parts of the document go.
pub(super) struct Recorder<'a> {
    out: &'a mut dyn Write,
    written: usize,
    /// `None` when only writing: no hash, no places kept.
    record: Option<Record>,
}

struct Record {
    hasher: Xxh3,
    /// Written but not yet hashed: the document comes in pieces of a few hundred bytes, and
    /// the hasher's per-call cost was as large as its hashing.
    unhashed: Vec<u8>,
    members: Vec<(String, Range<usize>)>,
    entries_start: usize,
    entry_lens: Vec<u64>,
}

impl<'a> Recorder<'a> {
    pub fn new(out: &'a mut dyn Write, recording: bool) -> Self {
        Recorder {
            out,
            written: 0,
            record: recording.then(|| Record {
                hasher: Xxh3::new(),
                unhashed: Vec::with_capacity(HASH_CHUNK),
                members: Vec::new(),
                entries_start: 0,
                entry_lens: Vec::new(),
            }),
        }
    }

    /// Writes a member's value.
    pub fn member(&mut self, key: &str, value: &[u8]) -> io::Result<()> {
        let start = self.written;
        self.write_all(value)?;
        if let Some(record) = &mut self.record {
            record.members.push((key.to_owned(), start..self.written));
        }
        Ok(())
    }

    /// Writes the list of entries, `[` to `]`.
    pub fn entries<'e>(&mut self, entries: impl Iterator<Item = &'e [u8]>) -> io::Result<()> {
        self.write_all(b"[")?;
        if let Some(record) = &mut self.record {
            record.entries_start = self.written;
        }
        for (i, entry) in entries.enumerate() {
            if i > 0 {
                self.write_all(b",")?;
            }
            self.write_all(entry)?;
            if let Some(record) = &mut self.record {
                record.entry_lens.push(entry.len() as u64);
            }
        }
        self.write_all(b"]")
    }

    /// The record of what was written; empty when not recording.
    pub fn finish(self) -> Vec<u8> {
        let Some(mut record) = self.record else {
            return Vec::new();
        };
        record.hasher.update(&record.unhashed);
        let mut out = Vec::with_capacity(64 + record.entry_lens.len() * 8);
        out.extend_from_slice(MAGIC);
        put_u64(&mut out, self.written);
        out.extend_from_slice(&record.hasher.digest128().to_le_bytes());
        put_u64(&mut out, record.members.len());
        for (key, range) in &record.members {
            put_u64(&mut out, key.len());
            out.extend_from_slice(key.as_bytes());
            put_u64(&mut out, range.start);
            put_u64(&mut out, range.end);
        }
        put_u64(&mut out, record.entries_start);
        put_u64(&mut out, record.entry_lens.len());
        for len in &record.entry_lens {
            out.extend_from_slice(&len.to_le_bytes());
        }
        let own_hash = xxh3_128(&out);
        out.extend_from_slice(&own_hash.to_le_bytes());
        out
    }
}

impl Write for Recorder<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n;
        if let Some(record) = &mut self.record {
            if record.unhashed.len() + n > HASH_CHUNK {
                record.hasher.update(&record.unhashed);
                record.unhashed.clear();
            }
            record.unhashed.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn put_u64(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&(value as u64).to_le_bytes());
}

/// The outline `record` gives for `text`, if it was made for exactly this text and is
/// consistent with it.
pub(super) fn from_record(record: &[u8], text: &[u8]) -> Option<Outline> {
    let (body, own_hash) = record.split_last_chunk::<16>()?;
    if xxh3_128(body) != u128::from_le_bytes(*own_hash) {
        return None;
    }
    let mut fields = Fields(body.strip_prefix(MAGIC)?);
    if fields.number()? != text.len() || fields.hash()? != xxh3_128(text) {
        return None;
    }
    let mut outline = Outline::default();
    for _ in 0..fields.number()? {
        let len = fields.number()?;
        let key = fields.take(len)?;
        let key = std::str::from_utf8(key).ok()?.to_owned();
        let range = fields.number()?..fields.number()?;
        (range.start <= range.end && range.end <= text.len()).then_some(())?;
        outline.members.push((key, range));
    }
    let mut at = fields.number()?;
    let count = fields.number()?;
    // Each entry takes at least 8 bytes of record: a wrong count cannot make a huge list.
    outline.entries.reserve(count.min(fields.0.len() / 8));
    (at > 0 && text.get(at - 1) == Some(&b'[')).then_some(())?;
    for i in 0..count {
        let end = at.checked_add(fields.number()?)?;
        let entry = text.get(at..end)?;
        let after = if i + 1 == count { b']' } else { b',' };
        (entry.first() == Some(&b'{') && entry.last() == Some(&b'}')).then_some(())?;
        (text.get(end) == Some(&after)).then_some(())?;
        outline.entries.push(at..end);
        at = end + 1;
    }
    if count == 0 {
        (text.get(at) == Some(&b']')).then_some(())?;
    }
    fields.0.is_empty().then_some(outline)
}

/// The fields of a record, read from the front.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn number(&mut self) -> Option<usize> {
        let bytes = self.take(8)?.try_into().ok()?;
        usize::try_from(u64::from_le_bytes(bytes)).ok()
    }

    fn hash(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexDocument;
    use crate::index::document::outline_by_serde;

    const FOREIGN: &str = r#"{ "schemaVersion": 2, "x-vendor": {"b": 1},
        "manifests": [
          {"mediaType": "m", "size": 1, "digest": "sha256:aa", "annotations": {"org.opencontainers.image.ref.name": "v1"}},
          {"mediaType": "m", "size": 2, "digest": "sha256:bb", "x": "},{"}
        ] }"#;

    /// A document's text as an edit writes it, and its record.
    fn written(text: &str) -> (Vec<u8>, Vec<u8>) {
        let document = IndexDocument::parse(text.as_bytes().to_vec()).expect("parsed");
        let mut out = Vec::new();
        let record = document.write_recorded(&mut out).expect("written");
        (out, record)
    }

    /// `body` with its own hash appended, as a record ends.
    fn sealed(mut body: Vec<u8>) -> Vec<u8> {
        let hash = xxh3_128(&body);
        body.extend_from_slice(&hash.to_le_bytes());
        body
    }

    #[test]
    fn a_record_gives_the_outline_a_parse_finds() {
        for text in [FOREIGN, r#"{"manifests":[]}"#, "{}"] {
            let (out, record) = written(text);
            let outline = from_record(&record, &out).expect("the record fits its text");
            let parsed = outline_by_serde(&out).expect("written text parses");
            assert_eq!(outline.entries, parsed.entries, "{text}");
            let mut members = outline.members;
            let mut parsed = parsed.members;
            members.sort_by(|a, b| a.0.cmp(&b.0));
            parsed.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(members, parsed, "{text}");
        }
    }

    #[test]
    fn a_record_for_other_text_or_damaged_is_refused() {
        let (out, record) = written(FOREIGN);
        let mut other = out.clone();
        let at = other.iter().position(|&b| b == b'1').expect("a digit");
        other[at] = b'2';
        assert_eq!(from_record(&record, &other), None);
        for len in 0..record.len() {
            assert_eq!(from_record(&record[..len], &out), None, "cut to {len}");
        }
        for at in 0..record.len() {
            let mut flipped = record.clone();
            flipped[at] ^= 0x20;
            assert_eq!(from_record(&flipped, &out), None, "byte {at} flipped");
        }
    }

    #[test]
    fn a_sealed_record_that_does_not_fit_the_text_is_refused() {
        let (out, record) = written(FOREIGN);
        let body = &record[..record.len() - 16];
        // The numbers after the members: where the list starts, how many entries, their sizes.
        let tail = body.len() - 8 * 4;
        let field =
            |i: usize| u64::from_le_bytes(body[tail + 8 * i..][..8].try_into().expect("8 bytes"));
        assert_eq!(field(1), 2, "two entries");
        let with = |i: usize, value: u64| {
            let mut body = body.to_vec();
            body[tail + 8 * i..][..8].copy_from_slice(&value.to_le_bytes());
            sealed(body)
        };
        assert!(from_record(&sealed(body.to_vec()), &out).is_some());
        for (i, value) in [
            (0, 0),
            (0, field(0) + 1),
            (0, u64::MAX),
            (1, 3),
            (1, 1),
            (1, u64::MAX),
            (2, field(2) - 1),
            (2, field(2) + field(3) + 1),
            (2, u64::MAX),
            (3, 0),
            (3, u64::MAX - 1),
        ] {
            assert_eq!(
                from_record(&with(i, value), &out),
                None,
                "field {i} = {value}"
            );
        }
        // Bytes after the last field.
        let mut extra = body.to_vec();
        extra.extend_from_slice(&0u64.to_le_bytes());
        assert_eq!(from_record(&sealed(extra), &out), None);
    }
}
