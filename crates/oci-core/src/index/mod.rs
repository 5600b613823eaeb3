//! `index.json` logic that needs no storage: lenient parsing, canonical writing, and the
//! operations on entries. Drivers and stores call these; nothing here does I/O.

use oci_spec::image::{Descriptor, ImageIndex, MediaType, SCHEMA_VERSION};

mod document;
pub use document::{IndexDocument, PutOutcome};

use crate::ref_name::REF_NAME_ANNOTATION;

/// Parses an image index leniently: unknown fields and media types are kept or ignored,
/// `"manifests": null` (as Docker 25 writes) and a missing `manifests` read as empty.
pub fn parse_index(bytes: &[u8]) -> serde_json::Result<ImageIndex> {
    parse_index_value(serde_json::from_slice(bytes)?)
}

/// [`parse_index`] of a document already parsed as JSON.
pub fn parse_index_value(mut value: serde_json::Value) -> serde_json::Result<ImageIndex> {
    platform_keys(&mut value, PlatformKeys::FromSpec);
    if let Some(object) = value.as_object_mut() {
        let manifests = object.entry("manifests").or_insert(serde_json::Value::Null);
        if manifests.is_null() {
            *manifests = serde_json::Value::Array(Vec::new());
        }
        object
            .entry("schemaVersion")
            .or_insert(serde_json::Value::from(SCHEMA_VERSION));
    }
    serde_json::from_value(value)
}

/// An empty index, as `init` writes it.
pub fn empty_index() -> ImageIndex {
    let mut index = ImageIndex::default();
    index.set_manifests(Vec::new());
    canonicalize(&mut index);
    index
}

/// Sets what a canonical index carries: schemaVersion 2 and its media type.
pub fn canonicalize(index: &mut ImageIndex) {
    index.set_schema_version(SCHEMA_VERSION);
    index.set_media_type(Some(MediaType::ImageIndex));
}

/// Serialises a JSON document with its object keys sorted, so the same content always gives
/// the same bytes (the spec types hold annotations in hash maps).
pub fn to_canonical_json<T: serde::Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut value = serde_json::to_value(value)?;
    platform_keys(&mut value, PlatformKeys::ToSpec);
    serde_json::to_vec(&value)
}

/// Which way [`platform_keys`] renames.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlatformKeys {
    /// `os.version` to `os_version`, before deserialising into oci-spec types.
    FromSpec,
    /// `os_version` back to `os.version`, after serialising them.
    ToSpec,
}

/// oci-spec 0.10's `Platform` names its fields `os_version` and `os_features` where the
/// image-spec says `os.version` and `os.features`; without this rename, reading an index and
/// writing it back would silently drop both. Applied to every `platform` object.
pub(crate) fn platform_keys(value: &mut serde_json::Value, direction: PlatformKeys) {
    const PAIRS: [(&str, &str); 2] = [("os.version", "os_version"), ("os.features", "os_features")];
    match value {
        serde_json::Value::Object(object) => {
            if let Some(serde_json::Value::Object(platform)) = object.get_mut("platform") {
                for (spec, field) in PAIRS {
                    let (from, to) = if direction == PlatformKeys::FromSpec {
                        (spec, field)
                    } else {
                        (field, spec)
                    };
                    if let Some(v) = platform.remove(from) {
                        platform.insert(to.to_owned(), v);
                    }
                }
            }
            object
                .values_mut()
                .for_each(|v| platform_keys(v, direction));
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(|v| platform_keys(v, direction));
        }
        _ => {}
    }
}

/// The canonical bytes of an index: [`canonicalize`]d, keys sorted, compact.
pub fn index_bytes(index: &ImageIndex) -> serde_json::Result<Vec<u8>> {
    let mut index = index.clone();
    canonicalize(&mut index);
    to_canonical_json(&index)
}

/// The ref name of a descriptor, if it has one.
pub fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .annotations()
        .as_ref()?
        .get(REF_NAME_ANNOTATION)
        .map(String::as_str)
}

/// Returns `descriptor` with its ref name set to `name`.
pub fn with_ref_name(mut descriptor: Descriptor, name: &str) -> Descriptor {
    let mut annotations = descriptor.annotations().clone().unwrap_or_default();
    annotations.insert(REF_NAME_ANNOTATION.to_owned(), name.to_owned());
    descriptor.set_annotations(Some(annotations));
    descriptor
}

/// Removes every entry named `name`; returns how many were removed.
pub fn remove_ref(index: &mut ImageIndex, name: &str) -> usize {
    let before = index.manifests().len();
    if !index.manifests().iter().any(|d| ref_name(d) == Some(name)) {
        return 0;
    }
    // oci-spec offers no mutable access to the list, so it is rebuilt.
    let kept: Vec<Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| ref_name(d) != Some(name))
        .cloned()
        .collect();
    index.set_manifests(kept);
    before - index.manifests().len()
}

/// Appends `descriptor`; when it has a ref name, every older entry with that name is removed
/// first, so a name always resolves to exactly one entry. An untagged descriptor identical to
/// an entry already there is not added again.
pub fn put_descriptor(index: &mut ImageIndex, descriptor: Descriptor) {
    match ref_name(&descriptor).filter(|n| !n.is_empty()) {
        Some(name) => {
            let name = name.to_owned();
            remove_ref(index, &name);
        }
        None if index.manifests().contains(&descriptor) => return,
        None => {}
    }
    let mut manifests = index.manifests().clone();
    manifests.push(descriptor);
    index.set_manifests(manifests);
}

/// The entry named `name`. Should a broken index hold several, the last one wins, as it is
/// the one written most recently by an appending writer.
pub fn resolve_ref<'a>(index: &'a ImageIndex, name: &str) -> Option<&'a Descriptor> {
    index
        .manifests()
        .iter()
        .rev()
        .find(|d| ref_name(d) == Some(name))
}
