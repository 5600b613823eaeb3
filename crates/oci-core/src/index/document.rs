//! `index.json` as a document to edit: its entries kept as the bytes they were read as.
//!
//! A tag into a 10,000-entry index used to parse every descriptor into spec types and write
//! every one back, 0.15 s of allocation for one changed entry. Here an edit reads the document
//! once (one validating pass, no per-entry allocation), looks inside only the entries that can
//! carry the ref name it changes, and writes the others back byte for byte. That also keeps
//! what the spec types would drop: fields this library does not know, and `platform` keys
//! spelled as the spec spells them.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::{self, Write};
use std::ops::Range;
use std::sync::Arc;

use memchr::memmem;
use oci_spec::image::{Descriptor, ImageIndex, MediaType, SCHEMA_VERSION};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{parse_index, to_canonical_json};
use crate::ref_name::REF_NAME_ANNOTATION;

/// What putting entries into an index did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutOutcome {
    /// Entries added (an untagged entry identical to one already there is not).
    pub added: usize,
    /// Entries that were there before and that the put replaced by name.
    pub replaced: Vec<Descriptor>,
}

/// An `index.json` being edited. Made by [`IndexDocument::parse`]; written by
/// [`IndexDocument::to_bytes`].
#[derive(Clone)]
pub struct IndexDocument {
    /// The text parsed; entries and members point into it. Shared, so a clone does not copy
    /// it.
    source: Arc<Vec<u8>>,
    /// Entries written by edits, one after another. A [`Span`] past the end of the source is
    /// in here.
    written: Vec<u8>,
    /// Top-level members other than `manifests`, by key (so written sorted).
    members: BTreeMap<String, Span>,
    entries: Vec<Span>,
}

/// Where a piece of JSON text is: a range of the source, or, from the source's length on, of
/// the text written by edits. One plain range per entry, so the list the parse finds is kept
/// as it is.
type Span = Range<usize>;

impl IndexDocument {
    /// Parses `index.json` as leniently as [`parse_index`]: `"manifests": null` or no
    /// `manifests` is an empty list, unknown members are kept. The members other than
    /// `manifests` are checked as [`parse_index`] checks them, and every entry must be an
    /// object; what is inside an entry is checked only when an edit looks at it. Checking all
    /// of them would cost more than the rest of a tag (fsck checks them all).
    pub fn parse(bytes: Vec<u8>) -> serde_json::Result<IndexDocument> {
        let source = Arc::new(bytes);
        let text = source.as_slice();
        let outline = outline(text)?;
        let members = outline.members.into_iter().collect();
        let document = IndexDocument {
            members,
            entries: Vec::new(),
            written: Vec::new(),
            source,
        };
        // The members other than the entries are few and small: checked as parse_index checks
        // them (types, nesting depth), so an edit never succeeds on an index readers refuse
        // for what lies outside its entries.
        parse_index(&document.to_bytes())?;
        Ok(IndexDocument {
            entries: outline.entries,
            ..document
        })
    }

    /// The document of `index`, as [`super::index_bytes`] would write it.
    pub fn from_index(index: &ImageIndex) -> serde_json::Result<IndexDocument> {
        IndexDocument::parse(super::index_bytes(index)?)
    }

    /// How many entries `manifests` holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `manifests` is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends `descriptor`, as [`super::put_descriptor`] does: when it has a ref name, every
    /// older entry with that name is removed first; an untagged one identical to an entry
    /// already there is not added again (that looks at every entry: untagged puts are for
    /// merges and artifacts, not the tag path).
    /// Returns whether it was added (an identical untagged entry is not).
    pub fn put(&mut self, descriptor: &Descriptor) -> serde_json::Result<bool> {
        match super::ref_name(descriptor).filter(|n| !n.is_empty()) {
            Some(name) => {
                self.remove_ref(name)?;
            }
            None if self.contains(descriptor)? => return Ok(false),
            None => {}
        }
        let json = to_canonical_json(descriptor)?;
        let start = self.source_text().len() + self.written.len();
        self.written.extend_from_slice(&json);
        self.entries.push(start..start + json.len());
        Ok(true)
    }

    /// [`IndexDocument::put`] of each of `entries`, in order. The outcome counts the entries
    /// added and lists the entries of the document as it was before that they replaced by
    /// name; an entry of `entries` that a later one of the same name replaces is not among
    /// them: it was never the document's.
    pub fn put_all(&mut self, entries: &[Descriptor]) -> serde_json::Result<PutOutcome> {
        let mut outcome = PutOutcome::default();
        let mut names = HashSet::new();
        for entry in entries {
            // The first entry of a name meets the document's own entries of that name; a later
            // one would meet the batch's.
            if let Some(name) = super::ref_name(entry).filter(|n| !n.is_empty())
                && names.insert(name)
            {
                outcome.replaced.extend(self.entries_named(name)?);
            }
            if self.put(entry)? {
                outcome.added += 1;
            }
        }
        Ok(outcome)
    }

    /// Removes every entry named `name`; returns how many went. An entry that can hold the
    /// name but does not parse is an error: it cannot be told apart.
    pub fn remove_ref(&mut self, name: &str) -> serde_json::Result<usize> {
        let mut named = self.named(name)?.into_iter();
        let before = self.entries.len();
        self.entries.retain(|_| !named.next().unwrap_or(false));
        Ok(before - self.entries.len())
    }

    /// The entries named `name`, in index order (what [`IndexDocument::put`] of that name
    /// replaces). Parses only the entries that can carry the name.
    pub fn entries_named(&self, name: &str) -> serde_json::Result<Vec<Descriptor>> {
        let named = self.named(name)?;
        self.entries
            .iter()
            .zip(named)
            .filter(|(_, named)| *named)
            .map(|(span, _)| parse_entry(self.text(span)))
            .collect()
    }

    /// For each entry, whether it is named `name`.
    fn named(&self, name: &str) -> serde_json::Result<Vec<bool>> {
        // Without a backslash, a string is its literal text: an entry whose text holds neither
        // `"name"` nor a backslash cannot carry the name, and is not parsed. Both are looked for
        // in the whole source at once (per entry, the searches' setup cost more than the
        // search), then each entry asks whether the next hit falls inside it.
        let quoted = format!("\"{name}\"");
        let quoted = memmem::Finder::new(quoted.as_bytes());
        let source = self.source_text();
        let mut next_quoted = NextHit::new(|from| quoted.find(&source[from..]));
        let mut next_backslash = NextHit::new(|from| memchr::memchr(b'\\', &source[from..]));
        let mut named = Vec::with_capacity(self.entries.len());
        for span in &self.entries {
            let candidate = if span.end <= source.len() {
                next_quoted.hits(span) || next_backslash.hits(span)
            } else {
                let text = self.text(span);
                quoted.find(text).is_some() || memchr::memchr(b'\\', text).is_some()
            };
            named.push(candidate && entry_ref_name(self.text(span))?.as_deref() == Some(name));
        }
        Ok(named)
    }

    /// Whether an entry equal to `descriptor` (as spec types compare) is there. Parses every
    /// entry: for merges, not the tag path. An entry that does not parse is not equal to any
    /// descriptor, and is left as it is, as edits leave every entry they do not change.
    fn contains(&self, descriptor: &Descriptor) -> serde_json::Result<bool> {
        Ok(self
            .entries
            .iter()
            .any(|piece| parse_entry(self.text(piece)).is_ok_and(|entry| entry == *descriptor)))
    }

    /// The whole document as spec types.
    pub fn to_index(&self) -> serde_json::Result<ImageIndex> {
        parse_index(&self.to_bytes())
    }

    /// The document's bytes: members sorted by key, `schemaVersion` 2 and the index media
    /// type set, compact between entries; each entry as it was read, or canonical if an edit
    /// wrote it.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Sized from the pieces: the source may be much larger (parse writes only the members).
        let entries: usize = self.entries.iter().map(|span| span.len() + 1).sum();
        let members: usize = self
            .members
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum();
        let mut out = Vec::with_capacity(entries + members + 128);
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    /// Writes [`IndexDocument::to_bytes`] to `out` without building it in memory first (a
    /// large index is then not held twice).
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        let media_type = format!("\"{}\"", MediaType::ImageIndex);
        let schema_version = SCHEMA_VERSION.to_string();
        let mut members: BTreeMap<&str, &[u8]> = self
            .members
            .iter()
            .map(|(key, span)| (key.as_str(), self.text(span)))
            .collect();
        members.insert("mediaType", media_type.as_bytes());
        members.insert("schemaVersion", schema_version.as_bytes());
        members.insert("manifests", b"");
        out.write_all(b"{")?;
        for (i, (key, text)) in members.into_iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, key)?;
            out.write_all(b":")?;
            if key == "manifests" {
                out.write_all(b"[")?;
                for (i, span) in self.entries.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    out.write_all(self.text(span))?;
                }
                out.write_all(b"]")?;
            } else {
                out.write_all(text)?;
            }
        }
        out.write_all(b"}")
    }

    fn source_text(&self) -> &[u8] {
        &self.source
    }

    fn text(&self, span: &Span) -> &[u8] {
        let source = self.source_text();
        match span.start.checked_sub(source.len()) {
            None => &source[span.clone()],
            Some(start) => &self.written[start..start + span.len()],
        }
    }
}

impl fmt::Debug for IndexDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexDocument")
            .field("entries", &self.entries.len())
            .field("members", &self.members.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The next place a search hits the source, for spans asked about in order.
struct NextHit<F> {
    search: F,
    /// Where the last search started, and the hit it found (`usize::MAX`: none).
    from: usize,
    at: usize,
}

impl<F: FnMut(usize) -> Option<usize>> NextHit<F> {
    fn new(search: F) -> Self {
        NextHit {
            search,
            from: usize::MAX,
            at: usize::MAX,
        }
    }

    /// Whether the search hits `span`: searched again only when the last hit lies before it
    /// (or the spans went backwards).
    fn hits(&mut self, span: &Span) -> bool {
        if span.start < self.from || self.at < span.start {
            self.from = span.start;
            self.at = (self.search)(span.start).map_or(usize::MAX, |i| span.start + i);
        }
        self.at < span.end
    }
}

/// The members and entries of a document, as ranges of its text.
struct Outline {
    /// Top-level members other than `manifests`: for a repeated key, the last one.
    members: Vec<(String, Span)>,
    /// The entries of `manifests`, each an object.
    entries: Vec<Span>,
}

/// Where the members and entries of `text` lie, found by serde_json in one validating pass.
fn outline(text: &[u8]) -> serde_json::Result<Outline> {
    let top = serde_json::from_slice::<TopLevel<'_>>(text)?;
    let range_of = |raw: &RawValue| {
        let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        start..start + raw.get().len()
    };
    let mut entries = Vec::with_capacity(top.manifests.len());
    for raw in &top.manifests {
        if !raw.get().starts_with('{') {
            return Err(de::Error::custom(format!(
                "an entry of manifests is not an object: {}",
                abbreviated(raw.get())
            )));
        }
        entries.push(range_of(raw));
    }
    let members = top
        .members
        .iter()
        .map(|(key, raw)| (key.clone().into_owned(), range_of(raw)))
        .collect();
    Ok(Outline { members, entries })
}

/// The top level of `index.json`, borrowing from the bytes.
struct TopLevel<'a> {
    manifests: Vec<&'a RawValue>,
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopVisitor;
        impl<'de> Visitor<'de> for TopVisitor {
            type Value = TopLevel<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an image index object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel<'de>, A::Error> {
                let mut top = TopLevel {
                    manifests: Vec::new(),
                    members: Vec::new(),
                };
                // A repeated key: the last one wins, as it does for [`parse_index`], so an
                // earlier `manifests` that is not a list is no error.
                let mut manifests = Manifests::Absent;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "manifests" {
                        manifests = map.next_value()?;
                    } else {
                        let value: &'de RawValue = map.next_value()?;
                        top.members.retain(|(k, _)| *k != key);
                        top.members.push((key, value));
                    }
                }
                top.manifests = match manifests {
                    Manifests::Absent => Vec::new(),
                    Manifests::List(list) => list,
                    Manifests::NotAList(unexpected) => {
                        return Err(de::Error::custom(format!(
                            "invalid type: {unexpected}, expected a sequence"
                        )));
                    }
                };
                Ok(top)
            }
        }
        deserializer.deserialize_map(TopVisitor)
    }
}

/// The value of a `manifests` key, read in the same pass as the rest of the document (not kept
/// raw and parsed again: that was half the time of a tag into a large index). `null` reads as
/// an empty list, like [`parse_index`] reads it; a value of another type is an error only if no
/// later `manifests` key replaces it.
enum Manifests<'a> {
    Absent,
    List(Vec<&'a RawValue>),
    NotAList(String),
}

impl<'de> Deserialize<'de> for Manifests<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ManifestsVisitor;
        impl<'de> Visitor<'de> for ManifestsVisitor {
            type Value = Manifests<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(raw) = seq.next_element::<&'de RawValue>()? {
                    list.push(raw);
                }
                Ok(Manifests::List(list))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Manifests::List(Vec::new()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(not_a_list(de::Unexpected::Map))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(not_a_list(de::Unexpected::Bool(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(not_a_list(de::Unexpected::Signed(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(not_a_list(de::Unexpected::Unsigned(v)))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(not_a_list(de::Unexpected::Float(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(not_a_list(de::Unexpected::Str(v)))
            }
        }
        deserializer.deserialize_any(ManifestsVisitor)
    }
}

fn not_a_list<'a>(unexpected: de::Unexpected<'_>) -> Manifests<'a> {
    Manifests::NotAList(unexpected.to_string())
}

/// The ref name of an entry, read as [`parse_index`] reads it: of a key given twice (the entry's
/// `annotations`, or the name inside them) the last one counts, and the others are not read.
fn entry_ref_name(text: &[u8]) -> serde_json::Result<Option<String>> {
    let entry: HashMap<Cow<'_, str>, &RawValue> = serde_json::from_slice(text)?;
    let Some(annotations) = entry.get("annotations") else {
        return Ok(None);
    };
    let annotations: Option<HashMap<Cow<'_, str>, &RawValue>> =
        serde_json::from_str(annotations.get())?;
    annotations
        .and_then(|a| a.get(REF_NAME_ANNOTATION).copied())
        .map(|name| serde_json::from_str::<String>(name.get()))
        .transpose()
}

fn parse_entry(text: &[u8]) -> serde_json::Result<Descriptor> {
    let mut value: serde_json::Value = serde_json::from_slice(text)?;
    super::platform_keys(&mut value, super::PlatformKeys::FromSpec);
    serde_json::from_value(value)
}

fn abbreviated(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use oci_spec::image::{Descriptor, MediaType};

    use super::IndexDocument;
    use crate::Algorithm;

    /// An untagged put compares itself with every entry, and an entry that does not parse
    /// cannot be identical to it: the put succeeds (as `attach` onto such an index did before
    /// untagged puts were deduplicated) and leaves that entry as it was, as every edit leaves
    /// the entries it does not change. fsck reports the broken one.
    #[test]
    fn an_untagged_put_is_added_past_an_entry_that_does_not_parse() {
        let broken = [
            r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":-1}"#,
            r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":"12"}"#,
        ];
        let text = format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            broken.join(",")
        );
        let mut document = IndexDocument::parse(text.into_bytes()).unwrap();
        let artifact = Descriptor::new(
            MediaType::ImageManifest,
            3,
            Algorithm::Sha256.digest(b"abc"),
        );
        document.put(&artifact).unwrap();
        document.put(&artifact).unwrap();
        assert_eq!(document.len(), 3, "added once, past both");
        let written = String::from_utf8(document.to_bytes()).unwrap();
        for entry in broken {
            assert!(written.contains(entry), "{entry} kept as it was: {written}");
        }
    }
}
