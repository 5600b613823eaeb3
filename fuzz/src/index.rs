//! `index_ops`: lenient `index.json` parsing, then put/remove against a model.

use oci_core::index::{self, IndexDocument, ref_name};
use oci_core::oci_spec::image::{Descriptor, ImageIndex, MediaType};
use oci_digest::Algorithm;

/// Ref names the op script picks from, besides those already in the index: valid ones,
/// the empty name (which `put_descriptor` treats as no name) and invalid ones (the index
/// logic does not validate; callers do).
const NAMES: [&str; 8] = ["", "v1", "latest", "v1.0", "a/b", "..", "ünï", "x:y@z"];

/// At most this many ops run: each is checked against the whole model, and a long script
/// finds nothing a short one does not, only slower.
const MAX_OPS: usize = 64;

/// The first JSON value of `data` is the index (and the whole of `data` is parsed too, as
/// arbitrary bytes); the bytes after it are an op script run against a model.
pub fn index_ops(data: &[u8]) {
    let whole = index::parse_index(data);
    let mut values = serde_json::Deserializer::from_slice(data).into_iter::<serde_json::Value>();
    let first = values.next();
    let end = values.byte_offset();
    if let Ok(idx) = &whole {
        round_trip(idx);
    }
    if !matches!(first, Some(Ok(_))) || end == data.len() {
        // Not JSON, or no script: the whole input was the index, checked above.
        return;
    }
    let Ok(mut idx) = index::parse_index(&data[..end]) else {
        return;
    };
    round_trip(&idx);
    let mut names: Vec<String> = NAMES.iter().map(|n| (*n).to_owned()).collect();
    names.extend(
        idx.manifests()
            .iter()
            .filter_map(ref_name)
            .map(str::to_owned),
    );
    // The same edits through the document the directory driver edits in place; it must
    // parse whatever parse_index does.
    let mut document = IndexDocument::parse(data[..end].to_vec())
        .unwrap_or_else(|e| panic!("parse_index took it but IndexDocument did not: {e}"));
    let mut model: Vec<Descriptor> = idx.manifests().clone();
    let mut script = Script(&data[end..]);
    for _ in 0..MAX_OPS {
        let Some(op) = script.byte() else { break };
        match op % 4 {
            0 => {
                let name = script.pick(&names).to_owned();
                let descriptor = index::with_ref_name(script.descriptor(), &name);
                put(&mut idx, &mut document, &mut model, descriptor);
            }
            1 => {
                let descriptor = script.descriptor();
                put(&mut idx, &mut document, &mut model, descriptor);
            }
            2 => {
                let name = script.pick(&names).to_owned();
                let removed = index::remove_ref(&mut idx, &name);
                let removed_from_document = document
                    .remove_ref(&name)
                    .expect("entries parse_index took are readable");
                assert_eq!(
                    removed_from_document, removed,
                    "document remove_ref({name:?})"
                );
                let before = model.len();
                model.retain(|d| ref_name(d) != Some(name.as_str()));
                assert_eq!(removed, before - model.len(), "remove_ref({name:?}) count");
                assert!(index::resolve_ref(&idx, &name).is_none());
            }
            _ => {
                // Re-put an existing entry, renamed or as it is: other annotations survive.
                if model.is_empty() {
                    continue;
                }
                let existing = model[usize::from(script.byte().unwrap_or(0)) % model.len()].clone();
                let descriptor = if script.byte().unwrap_or(0) % 2 == 0 {
                    existing
                } else {
                    let name = script.pick(&names).to_owned();
                    index::with_ref_name(existing, &name)
                };
                put(&mut idx, &mut document, &mut model, descriptor);
            }
        }
        assert_eq!(idx.manifests(), &model, "index and model diverged");
        document = through_file(document);
    }
    round_trip(&idx);
    let edited = document.to_index().expect("an edited document re-parses");
    assert_eq!(edited.manifests(), &model, "document and model diverged");
}

fn put(
    idx: &mut ImageIndex,
    document: &mut IndexDocument,
    model: &mut Vec<Descriptor>,
    descriptor: Descriptor,
) {
    let name = ref_name(&descriptor).map(str::to_owned);
    index::put_descriptor(idx, descriptor.clone());
    document
        .put(&descriptor)
        .expect("entries parse_index took are readable");
    if let Some(name) = name.as_deref().filter(|n| !n.is_empty()) {
        model.retain(|d| ref_name(d) != Some(name));
        let named = idx
            .manifests()
            .iter()
            .filter(|d| ref_name(d) == Some(name))
            .count();
        assert_eq!(named, 1, "ref {name:?} must resolve to exactly one entry");
        assert_eq!(index::resolve_ref(idx, name), Some(&descriptor));
    } else if model.contains(&descriptor) {
        // An untagged entry identical to one already there is not added again.
        return;
    }
    model.push(descriptor);
}

/// `document` written out and read back, as the next edit of a directory layout's
/// `index.json` reads what the last one wrote: the same text comes out again.
fn through_file(document: IndexDocument) -> IndexDocument {
    let mut text = Vec::new();
    document.write_to(&mut text).expect("writing to memory");
    assert_eq!(text, document.to_bytes(), "write_to wrote other text");
    let reread = IndexDocument::parse(text.clone())
        .unwrap_or_else(|e| panic!("written text does not re-read: {e}"));
    assert_eq!(reread.to_bytes(), text, "re-reading gave another document");
    reread
}

/// The canonical bytes re-parse to the same index, and are a fixed point.
fn round_trip(idx: &ImageIndex) {
    let bytes = index::index_bytes(idx).expect("a parsed index serialises");
    let reparsed = index::parse_index(&bytes).unwrap_or_else(|e| {
        panic!(
            "canonical bytes do not re-parse: {e}: {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    let mut canonical = idx.clone();
    index::canonicalize(&mut canonical);
    assert_eq!(
        reparsed.manifests(),
        canonical.manifests(),
        "entries changed"
    );
    assert_eq!(reparsed, canonical, "index changed in a round trip");
    assert_eq!(
        index::index_bytes(&reparsed).expect("a parsed index serialises"),
        bytes,
        "canonical bytes are not a fixed point"
    );
}

/// The op script: bytes consumed one at a time; running out ends the script.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn pick<'n>(&mut self, names: &'n [String]) -> &'n str {
        &names[usize::from(self.byte().unwrap_or(0)) % names.len()]
    }

    fn descriptor(&mut self) -> Descriptor {
        let key = self.byte().unwrap_or(0);
        let algorithm = if key & 0x80 == 0 {
            Algorithm::Sha256
        } else {
            Algorithm::Sha512
        };
        let digest = algorithm.digest(&[key % 4]);
        let size = u64::from(self.byte().unwrap_or(0));
        let media_type = if key & 0x40 == 0 {
            MediaType::ImageManifest
        } else {
            MediaType::ImageIndex
        };
        Descriptor::new(media_type, size, digest)
    }
}
