//! Integration tests of oci-core's storage-free logic: the ref-name grammar (against the shared
//! vectors), lenient `index.json` parsing and canonical writing, the index entry operations
//! (`put_descriptor`, `remove_ref`, `resolve_ref`, with a model-based property test) and the
//! reference walk. Nothing here touches a layout on disk.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_core::index::IndexDocument;
use oci_core::oci_spec::image::{Arch, Descriptor, ImageIndex, MediaType, Os};
use oci_core::{Algorithm, Error, REF_NAME_ANNOTATION, index, is_valid_ref_name, walk};
use proptest::prelude::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The shared conformance corpus; a missing corpus is a failure, never a skip.
fn corpus() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    assert!(
        path.join("vectors").is_dir(),
        "the conformance corpus is missing at {}: the repository must be cloned beside shared/",
        path.display()
    );
    path
}

/// The sha256 digest of `label`, as a string: a distinct, valid digest per label.
fn digest_of(label: &str) -> String {
    Algorithm::Sha256.digest(label.as_bytes()).to_string()
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const TEST_ID: &str = "test.id";

/// A manifest descriptor that carries `id` in a test annotation and, optionally, a ref name.
fn entry(id: &str, name: Option<&str>) -> Descriptor {
    let digest = Algorithm::Sha256.digest(id.as_bytes());
    let mut descriptor = Descriptor::new(MediaType::ImageManifest, id.len() as u64, digest);
    descriptor.set_annotations(Some(HashMap::from([(TEST_ID.to_owned(), id.to_owned())])));
    match name {
        Some(name) => index::with_ref_name(descriptor, name),
        None => descriptor,
    }
}

/// An index holding `entries` in order.
fn index_of(entries: &[(Option<&str>, &str)]) -> ImageIndex {
    let mut idx = index::empty_index();
    idx.set_manifests(entries.iter().map(|(n, id)| entry(id, *n)).collect());
    idx
}

/// The index's entries as (ref name, test id) pairs, in order.
fn summary(idx: &ImageIndex) -> Vec<(Option<String>, String)> {
    idx.manifests()
        .iter()
        .map(|d| {
            let id = d
                .annotations()
                .as_ref()
                .and_then(|a| a.get(TEST_ID))
                .cloned()
                .unwrap_or_default();
            (index::ref_name(d).map(str::to_owned), id)
        })
        .collect()
}

fn owned(entries: &[(Option<&str>, &str)]) -> Vec<(Option<String>, String)> {
    entries
        .iter()
        .map(|(n, id)| (n.map(str::to_owned), (*id).to_owned()))
        .collect()
}

fn parse(document: &Value) -> ImageIndex {
    index::parse_index(document.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{document} should parse leniently: {e}"))
}

/// Parses `document`, writes it back with `index_bytes` and returns the written JSON.
fn round_trip(document: &Value) -> Value {
    let bytes = index::index_bytes(&parse(document)).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Ref names
// ---------------------------------------------------------------------------------------------

/// Checks one ref name against both entry points of the grammar; returns a failure message.
fn check_ref_name(name: &str, valid: bool) -> Result<(), String> {
    let got = is_valid_ref_name(name);
    let validated = oci_core::validate_ref_name(name);
    if got != valid {
        return Err(format!(
            "is_valid_ref_name({name:?}) = {got}, expected {valid}"
        ));
    }
    match (valid, validated) {
        (true, Ok(())) => Ok(()),
        (false, Err(Error::InvalidRefName { name: named })) if named == name => Ok(()),
        (_, other) => Err(format!("validate_ref_name({name:?}) = {other:?}")),
    }
}

#[test]
fn ref_names_conformance_vectors() {
    let path = corpus().join("vectors/refnames.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let cases = vectors["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no \"cases\" array", path.display()));
    assert!(
        cases.len() >= 20,
        "{} has only {} cases",
        path.display(),
        cases.len()
    );
    let mut failures = Vec::new();
    let mut valid_seen = 0;
    for case in cases {
        let name = case["ref"]
            .as_str()
            .expect("each case has a string \"ref\"");
        let valid = case["valid"]
            .as_bool()
            .expect("each case has a bool \"valid\"");
        valid_seen += usize::from(valid);
        if let Err(failure) = check_ref_name(name, valid) {
            failures.push(failure);
        }
    }
    assert!(
        valid_seen > 0 && valid_seen < cases.len(),
        "the vectors should hold both valid and invalid names"
    );
    assert!(
        failures.is_empty(),
        "{} of {} ref-name vectors fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn ref_names_extra_cases() {
    let cases = [
        ("v1", true),
        ("a--b", true),
        ("a---b", false),
        ("a_b", true),
        ("a__b", false),
        ("a/b/c", true),
        ("a/", false),
        ("/", false),
        ("../v1", false),
        ("v1\0", false),
        ("-", false),
        ("a-", false),
        (&*"a".repeat(4096), true),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, valid)| check_ref_name(name, *valid).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// parse_index leniency and index_bytes
// ---------------------------------------------------------------------------------------------

/// Parses `document` and checks the number of entries and the index media type read.
fn check_parse(document: &Value, entries: usize, media_type: Option<&str>) {
    let idx = parse(document);
    assert_eq!(idx.manifests().len(), entries, "entries of {document}");
    assert_eq!(
        idx.media_type()
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        media_type,
        "mediaType of {document}"
    );
}

#[test]
fn parse_index_lenient_cases() {
    let one = json!({"mediaType": MANIFEST, "digest": digest_of("a"), "size": 1});
    // `"manifests": null` is what Docker 25 writes.
    check_parse(&json!({"schemaVersion": 2, "manifests": null}), 0, None);
    check_parse(&json!({"schemaVersion": 2}), 0, None);
    check_parse(&json!({}), 0, None);
    // No mediaType, as skopeo 1.9 writes it.
    check_parse(&json!({"schemaVersion": 2, "manifests": [one]}), 1, None);
    check_parse(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [one]}),
        1,
        Some(OCI_INDEX),
    );
    // Unknown fields at every level.
    check_parse(
        &json!({
            "schemaVersion": 2,
            "x-top": {"nested": [1, 2]},
            "manifests": [{
                "mediaType": MANIFEST, "digest": digest_of("a"), "size": 1,
                "x-descriptor": true,
                "platform": {"architecture": "amd64", "os": "linux", "x-platform": "?"}
            }]
        }),
        1,
        None,
    );
}

#[test]
fn parse_index_rejects_what_is_not_an_index() {
    for bad in [
        &b"not json"[..],
        b"[]",
        b"{\"manifests\": 3}",
        b"{\"manifests\": [{\"mediaType\": \"x\", \"size\": 1}]}",
        b"{\"manifests\": [{\"mediaType\": \"x\", \"size\": 1, \"digest\": \"nope\"}]}",
    ] {
        assert!(
            index::parse_index(bad).is_err(),
            "{} should not parse as an index",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn parse_index_keeps_unknown_media_types() {
    let types = [
        "x-completely-unknown",
        "application/vnd.oci.descriptor.v1+json",
        "application/vnd.cncf.helm.config.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ];
    let document = json!({
        "schemaVersion": 2,
        "manifests": types
            .iter()
            .map(|t| json!({"mediaType": t, "digest": digest_of(t), "size": 7}))
            .collect::<Vec<_>>(),
    });
    let parsed = parse(&document);
    let read: Vec<String> = parsed
        .manifests()
        .iter()
        .map(|d| d.media_type().to_string())
        .collect();
    assert_eq!(read, types);
    let written = round_trip(&document);
    let written: Vec<&str> = written["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(written, types, "media types survive index_bytes");
}

#[test]
fn parse_index_platform_os_version_round_trip() {
    let platform = json!({
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.17763.1879",
        "os.features": ["win32k"],
        "variant": "v3"
    });
    let document = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": MANIFEST, "digest": digest_of("w"), "size": 1, "platform": platform}],
        "subject": {"mediaType": MANIFEST, "digest": digest_of("s"), "size": 2, "platform": platform},
    });

    // The shim maps the spec's keys onto oci-spec's fields.
    let parsed = parse(&document);
    let read = parsed.manifests()[0].platform().clone().unwrap();
    assert_eq!(read.architecture(), &Arch::Amd64);
    assert_eq!(read.os(), &Os::Windows);
    assert_eq!(read.os_version().as_deref(), Some("10.0.17763.1879"));
    assert_eq!(
        read.os_features().as_deref(),
        Some(&["win32k".to_owned()][..])
    );
    assert_eq!(read.variant().as_deref(), Some("v3"));

    // And back: the written document uses the spec's keys, and only those.
    let written = round_trip(&document);
    assert_eq!(written["manifests"][0]["platform"], platform);
    assert_eq!(written["subject"]["platform"], platform);
    let text = String::from_utf8(index::index_bytes(&parsed).unwrap()).unwrap();
    assert!(
        !text.contains("os_version") && !text.contains("os_features"),
        "{text}"
    );
}

#[test]
fn index_round_trip_keeps_optional_fields() {
    let document = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": "application/example.sbom",
        "annotations": {"org.example": "top"},
        "manifests": [{
            "mediaType": MANIFEST,
            "digest": digest_of("a"),
            "size": 1,
            "urls": ["https://example.invalid/a"],
            "artifactType": "application/example.signature",
            "data": "YQ==",
            "annotations": {REF_NAME_ANNOTATION: "v1", "org.example": "entry"}
        }]
    });
    assert_eq!(round_trip(&document), document);
}

/// `index_bytes` of `input` must be exactly `expected`, every time.
fn check_index_bytes(input: &str, expected: &str) {
    for attempt in 0..8 {
        // A fresh parse each time: annotation maps are hash maps with per-instance seeds.
        let idx = index::parse_index(input.as_bytes()).unwrap();
        let bytes = index::index_bytes(&idx).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            expected,
            "index_bytes of {input} (attempt {attempt})"
        );
    }
}

#[test]
fn index_bytes_is_canonical_and_deterministic() {
    let a = digest_of("a");
    check_index_bytes(
        r#"{"schemaVersion":2,"manifests":null}"#,
        r#"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#,
    );
    // schemaVersion is forced to 2 and the mediaType is set.
    check_index_bytes(
        r#"{"schemaVersion":1,"manifests":[]}"#,
        r#"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#,
    );
    // Keys sorted at every level, however many annotations there are.
    check_index_bytes(
        &format!(
            r#"{{"schemaVersion":2,"annotations":{{"z":"1","b":"2","m":"3","a":"4","y":"5","c":"6"}},
              "manifests":[{{"size":1,"digest":"{a}","mediaType":"{MANIFEST}",
              "platform":{{"os":"linux","architecture":"arm64","variant":"v8","os.version":"1"}},
              "annotations":{{"org.opencontainers.image.ref.name":"v1","zz":"1","aa":"2","mm":"3","bb":"4"}}}}]}}"#
        ),
        &format!(
            concat!(
                r#"{{"annotations":{{"a":"4","b":"2","c":"6","m":"3","y":"5","z":"1"}},"#,
                r#""manifests":[{{"annotations":{{"aa":"2","bb":"4","mm":"3","#,
                r#""org.opencontainers.image.ref.name":"v1","zz":"1"}},"digest":"{a}","#,
                r#""mediaType":"{m}","platform":{{"architecture":"arm64","os":"linux","#,
                r#""os.version":"1","variant":"v8"}},"size":1}}],"#,
                r#""mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}}"#
            ),
            a = a,
            m = MANIFEST
        ),
    );
}

#[test]
fn empty_index_is_canonical() {
    let bytes = index::index_bytes(&index::empty_index()).unwrap();
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        value,
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    );
}

#[test]
fn to_canonical_json_sorts_keys() {
    let value = json!({"b": {"z": 1, "a": [{"y": 1, "x": 2}]}, "a": null});
    let bytes = index::to_canonical_json(&value).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"a":null,"b":{"a":[{"x":2,"y":1}],"z":1}}"#
    );
}

// ---------------------------------------------------------------------------------------------
// put_descriptor / remove_ref / resolve_ref
// ---------------------------------------------------------------------------------------------

type Entries<'a> = &'a [(Option<&'a str>, &'a str)];

fn check_put(start: Entries<'_>, put: (Option<&str>, &str), expected: Entries<'_>) {
    let mut idx = index_of(start);
    let mut document = IndexDocument::from_index(&idx).unwrap();
    index::put_descriptor(&mut idx, entry(put.1, put.0));
    assert_eq!(summary(&idx), owned(expected), "put {put:?} into {start:?}");
    document.put(&entry(put.1, put.0)).unwrap();
    let edited = document.to_index().unwrap();
    assert_eq!(
        summary(&edited),
        owned(expected),
        "document: put {put:?} into {start:?}"
    );
}

#[test]
fn put_descriptor_replaces_every_entry_with_the_same_name() {
    // Like containers-image delete_image_two_identical_references: two entries named 1.0.0.
    check_put(
        &[(Some("1.0.0"), "a"), (Some("1.0.0"), "b")],
        (Some("1.0.0"), "c"),
        &[(Some("1.0.0"), "c")],
    );
    check_put(
        &[
            (Some("1.0.0"), "a"),
            (None, "u"),
            (Some("other"), "o"),
            (Some("1.0.0"), "b"),
        ],
        (Some("1.0.0"), "c"),
        &[(None, "u"), (Some("other"), "o"), (Some("1.0.0"), "c")],
    );
    // Re-tagging the same descriptor leaves one entry.
    check_put(
        &[(Some("v1"), "a")],
        (Some("v1"), "a"),
        &[(Some("v1"), "a")],
    );
    // A new name appends.
    check_put(
        &[(Some("v1"), "a")],
        (Some("v2"), "a"),
        &[(Some("v1"), "a"), (Some("v2"), "a")],
    );
    // Names are compared exactly.
    check_put(
        &[(Some("V1"), "a"), (Some("v1/x"), "b")],
        (Some("v1"), "c"),
        &[(Some("V1"), "a"), (Some("v1/x"), "b"), (Some("v1"), "c")],
    );
}

#[test]
fn put_descriptor_keeps_untagged_entries() {
    check_put(&[], (None, "a"), &[(None, "a")]);
    check_put(
        &[(None, "a"), (Some("v1"), "b")],
        (None, "c"),
        &[(None, "a"), (Some("v1"), "b"), (None, "c")],
    );
    // The same untagged entry again is not a second entry (a merge, an artifact re-attached).
    check_put(
        &[(None, "a"), (Some("v1"), "b")],
        (None, "a"),
        &[(None, "a"), (Some("v1"), "b")],
    );
    // Untagged and tagged entries of one manifest are different entries.
    check_put(
        &[(Some("v1"), "a")],
        (None, "a"),
        &[(Some("v1"), "a"), (None, "a")],
    );
    check_put(
        &[(None, "a"), (Some("v1"), "b")],
        (Some("v1"), "a"),
        &[(None, "a"), (Some("v1"), "a")],
    );
}

fn check_remove(start: Entries<'_>, name: &str, removed: usize, expected: Entries<'_>) {
    let mut idx = index_of(start);
    assert_eq!(
        index::remove_ref(&mut idx, name),
        removed,
        "remove_ref({name:?}) on {start:?}"
    );
    assert_eq!(
        summary(&idx),
        owned(expected),
        "remove {name:?} from {start:?}"
    );
}

#[test]
fn remove_ref_removes_every_entry_with_the_name() {
    check_remove(&[], "v1", 0, &[]);
    check_remove(&[(Some("v1"), "a")], "v2", 0, &[(Some("v1"), "a")]);
    check_remove(&[(None, "a")], "v1", 0, &[(None, "a")]);
    check_remove(&[(Some("v1"), "a")], "v1", 1, &[]);
    check_remove(
        &[(Some("1.0.0"), "a"), (None, "u"), (Some("1.0.0"), "b")],
        "1.0.0",
        2,
        &[(None, "u")],
    );
}

#[test]
fn resolve_ref_finds_the_named_entry() {
    let idx = index_of(&[
        (Some("1.0.0"), "first"),
        (None, "u"),
        (Some("other"), "o"),
        (Some("1.0.0"), "second"),
    ]);
    let id = |name| {
        index::resolve_ref(&idx, name).map(|d| d.annotations().as_ref().unwrap()[TEST_ID].clone())
    };
    // A broken index with a duplicate name resolves to the last entry.
    assert_eq!(id("1.0.0").as_deref(), Some("second"));
    assert_eq!(id("other").as_deref(), Some("o"));
    assert_eq!(id("missing"), None);
}

#[test]
fn with_ref_name_and_ref_name() {
    let plain = entry("a", None);
    assert_eq!(index::ref_name(&plain), None);
    let named = index::with_ref_name(plain, "v1");
    assert_eq!(index::ref_name(&named), Some("v1"));
    // Other annotations are kept; renaming replaces.
    let renamed = index::with_ref_name(named, "v2");
    assert_eq!(index::ref_name(&renamed), Some("v2"));
    assert_eq!(renamed.annotations().as_ref().unwrap()[TEST_ID], "a");
    assert_eq!(renamed.annotations().as_ref().unwrap().len(), 2);
}

#[derive(Clone, Debug)]
enum Op {
    Put(Option<&'static str>),
    Remove(&'static str),
}

const NAMES: [&str; 4] = ["a", "b", "1.0.0", "x/y"];

fn op() -> impl Strategy<Value = Op> {
    let name = proptest::sample::select(&NAMES[..]);
    prop_oneof![
        3 => proptest::option::of(name.clone()).prop_map(Op::Put),
        1 => name.prop_map(Op::Remove),
    ]
}

proptest! {
    /// Any sequence of puts and removes, from a start that may already hold duplicate names,
    /// gives the same entries as a plain `Vec` model.
    #[test]
    fn index_operations_match_a_vec_model(
        start in proptest::collection::vec(proptest::option::of(proptest::sample::select(&NAMES[..])), 0..6),
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        let mut model: Vec<(Option<String>, String)> = start
            .iter()
            .enumerate()
            .map(|(i, n)| (n.map(str::to_owned), format!("s{i}")))
            .collect();
        let start_entries: Vec<(Option<&str>, &str)> =
            model.iter().map(|(n, id)| (n.as_deref(), id.as_str())).collect();
        let mut idx = index_of(&start_entries);
        let mut document = IndexDocument::from_index(&idx).unwrap();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Put(name) => {
                    let id = format!("p{i}");
                    if let Some(name) = name {
                        model.retain(|(n, _)| n.as_deref() != Some(*name));
                    }
                    model.push((name.map(str::to_owned), id.clone()));
                    index::put_descriptor(&mut idx, entry(&id, *name));
                    document.put(&entry(&id, *name)).unwrap();
                }
                Op::Remove(name) => {
                    let before = model.len();
                    model.retain(|(n, _)| n.as_deref() != Some(*name));
                    prop_assert_eq!(index::remove_ref(&mut idx, name), before - model.len());
                    prop_assert_eq!(document.remove_ref(name).unwrap(), before - model.len());
                }
            }
            prop_assert_eq!(&summary(&idx), &model, "after op {} ({:?})", i, op);
            prop_assert_eq!(&summary(&document.to_index().unwrap()), &model, "document, after op {}", i);
        }
        // Both write the same bytes: entries the document never touched are already canonical.
        prop_assert_eq!(document.to_bytes(), index::index_bytes(&idx).unwrap());
        // Whatever the start, a name that was put since resolves to exactly one entry.
        for op in &ops {
            if let Op::Put(Some(name)) = op {
                let named = model.iter().filter(|(n, _)| n.as_deref() == Some(*name)).count();
                prop_assert!(named <= 1);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// IndexDocument: edits that keep what they do not touch
// ---------------------------------------------------------------------------------------------

fn document(text: &str) -> IndexDocument {
    IndexDocument::parse(text.as_bytes().to_vec()).unwrap()
}

fn document_text(document: &IndexDocument) -> String {
    String::from_utf8(document.to_bytes()).unwrap()
}

#[test]
fn index_document_keeps_untouched_entries_byte_for_byte() {
    // Unknown fields, spec-spelled platform keys, foreign formatting: all survive a tag.
    let foreign = format!(
        r#"{{ "schemaVersion": 2, "x-vendor": {{"b": 1, "a": 2}},
            "manifests": [
              {{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 7,
                "digest": "{d}", "x-unknown": true,
                "platform": {{"architecture": "amd64", "os": "windows", "os.version": "10.0.1"}}}}
            ] }}"#,
        d = digest_of("a")
    );
    let mut doc = document(&foreign);
    doc.put(&entry("b", Some("v1"))).unwrap();
    let text = document_text(&doc);
    let kept = &foreign[foreign.find("{\"mediaType\"").unwrap()..foreign.find("}}").unwrap() + 2];
    assert!(text.contains(kept), "{text}");
    assert!(text.starts_with(r#"{"manifests":[{"mediaType""#), "{text}");
    assert!(text.ends_with(
        r#"],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2,"x-vendor":{"b": 1, "a": 2}}"#
    ), "{text}");
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed["manifests"][0]["platform"]["os.version"], "10.0.1");
    assert_eq!(doc.to_index().unwrap().manifests().len(), 2);
}

#[test]
fn index_document_finds_names_written_with_escapes() {
    // "v1" spelled with a \u escape does not contain the text "v1" but is the same name.
    let text = format!(
        r#"{{"manifests":[{{"annotations":{{"{REF_NAME_ANNOTATION}":"\u0076\u0031"}},"digest":"{d}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":1}}]}}"#,
        d = digest_of("a")
    );
    let mut doc = document(&text);
    assert_eq!(doc.remove_ref("v1").unwrap(), 1);
    assert!(doc.is_empty());
    let mut doc = document(&text);
    doc.put(&entry("b", Some("v1"))).unwrap();
    assert_eq!(
        summary(&doc.to_index().unwrap()),
        owned(&[(Some("v1"), "b")])
    );
}

#[test]
fn index_document_is_as_lenient_as_parse_index() {
    for text in [
        r#"{"manifests":null}"#,
        r#"{"schemaVersion":2}"#,
        r#"{"manifests":[],"manifests":null}"#,
        // The last of a repeated key wins: an earlier one need not even be a list.
        r#"{"manifests":"x","manifests":[]}"#,
    ] {
        let doc = document(text);
        assert!(doc.is_empty(), "{text}");
        assert_eq!(
            document_text(&doc),
            String::from_utf8(index::index_bytes(&index::empty_index()).unwrap()).unwrap()
        );
    }
    for text in [
        "[]",
        "null",
        r#"{"manifests":[1]}"#,
        r#"{"manifests":{}}"#,
        "{",
        r#"{"manifests":[]}x"#,
    ] {
        assert!(
            IndexDocument::parse(text.as_bytes().to_vec()).is_err(),
            "{text}"
        );
    }
}

#[test]
fn index_document_reads_the_last_of_repeated_keys_in_an_entry() {
    // As parse_index does: the first `annotations` (not a map of strings) is not read at all.
    let text = format!(
        r#"{{"manifests":[{{"mediaType":"m","digest":"{d}","size":1,"annotations":{{"a":["x"]}},"annotations":{{"{REF_NAME_ANNOTATION}":"v0","{REF_NAME_ANNOTATION}":"v1"}}}}]}}"#,
        d = digest_of("a")
    );
    assert_eq!(
        index::parse_index(text.as_bytes())
            .unwrap()
            .manifests()
            .len(),
        1
    );
    let mut doc = document(&text);
    assert_eq!(doc.remove_ref("v0").unwrap(), 0);
    assert_eq!(doc.remove_ref("v1").unwrap(), 1);
}

#[test]
fn index_document_removes_a_name_from_a_large_index() {
    // Large enough to be parsed on two threads, with the name in every spelling the search
    // must find: plain, escaped, as another annotation's value (a decoy), in an entry an edit
    // wrote, and in pretty-printed entries.
    let mut entries = Vec::new();
    for i in 0..3000 {
        let (name, other) = match i % 500 {
            7 => (r#""t3""#.to_owned(), "x"),
            8 => (r#""\u0074\u0033""#.to_owned(), "x"),
            9 => (r#""t4""#.to_owned(), "t3"),
            _ => (format!(r#""n{i}""#), "x"),
        };
        entries.push(format!(
            r#"{{ "annotations": {{"{REF_NAME_ANNOTATION}": {name}, "other": "{other}", "{TEST_ID}": "{i}"}},
              "digest": "{d}", "mediaType": "{MANIFEST}", "size": 1 }}"#,
            d = digest_of(&i.to_string())
        ));
    }
    let text = format!(r#"{{"manifests": [{}]}}"#, entries.join(",\n  "));
    let mut doc = document(&text);
    assert_eq!(doc.len(), 3000);
    assert_eq!(doc.remove_ref("t3").unwrap(), 12);
    doc.put(&entry("new", Some("t3"))).unwrap();
    assert_eq!(doc.remove_ref("t4").unwrap(), 6);
    let left = doc.to_index().unwrap();
    assert_eq!(left.manifests().len(), 3000 - 12 - 6 + 1);
    let named_t3: Vec<_> = summary(&left)
        .into_iter()
        .filter(|(name, _)| name.as_deref() == Some("t3"))
        .collect();
    assert_eq!(named_t3, owned(&[(Some("t3"), "new")]));
    assert_eq!(doc.remove_ref("t3").unwrap(), 1);
    assert_eq!(doc.len(), 3000 - 12 - 6);
}

#[test]
fn index_document_remove_ref_of_an_unparseable_entry_is_an_error() {
    // The entry holds the name's text but its annotations are not strings: it cannot be told
    // apart, so nothing is removed and the edit fails.
    let text = format!(
        r#"{{"manifests":[{{"annotations":{{"{REF_NAME_ANNOTATION}":["v1"]}},"digest":"{d}","mediaType":"m","size":1}}]}}"#,
        d = digest_of("a")
    );
    let mut doc = document(&text);
    assert!(doc.remove_ref("v1").is_err());
    assert_eq!(doc.len(), 1);
    // A name it cannot hold never makes it look.
    assert_eq!(doc.remove_ref("other").unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// walk::references
// ---------------------------------------------------------------------------------------------

/// Checks what `document` refers to: its children (in any order) and its subject.
fn check_references(document: &Value, children: &[String], subject: Option<&str>) {
    let refs = walk::references(document.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("references of {document}: {e}"));
    let mut got: Vec<String> = refs
        .children
        .iter()
        .map(|d| d.digest().to_string())
        .collect();
    let mut want = children.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want, "children of {document}");
    assert_eq!(
        refs.subject
            .as_ref()
            .map(|d| d.digest().to_string())
            .as_deref(),
        subject,
        "subject of {document}"
    );
}

fn desc_json(media_type: &str, label: &str) -> Value {
    json!({"mediaType": media_type, "digest": digest_of(label), "size": label.len()})
}

#[test]
fn walk_references_of_an_index() {
    let document = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            desc_json(MANIFEST, "m1"),
            {"mediaType": MANIFEST, "digest": digest_of("m2"), "size": 2,
             "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0"}},
            desc_json(OCI_INDEX, "nested"),
        ],
        "annotations": {"x": "y"}
    });
    check_references(
        &document,
        &[digest_of("m1"), digest_of("m2"), digest_of("nested")],
        None,
    );
    check_references(&json!({"schemaVersion": 2, "manifests": []}), &[], None);
}

#[test]
fn walk_references_of_a_manifest_with_subject() {
    let document = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": "application/example.sbom",
        "config": desc_json("application/vnd.oci.empty.v1+json", "{}"),
        "layers": [desc_json("application/example.sbom", "l1"), desc_json("application/example.sbom", "l2")],
        "subject": desc_json(MANIFEST, "parent"),
    });
    check_references(
        &document,
        &[digest_of("{}"), digest_of("l1"), digest_of("l2")],
        Some(&digest_of("parent")),
    );
    let refs = walk::references(document.to_string().as_bytes()).unwrap();
    assert_eq!(
        refs.subject.unwrap().media_type().to_string(),
        MANIFEST,
        "the subject is a full descriptor"
    );
}

#[test]
fn walk_references_of_a_docker_manifest_list() {
    let docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
    let document = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": docker_manifest, "digest": digest_of("amd64"), "size": 5,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": docker_manifest, "digest": digest_of("arm"), "size": 3,
             "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
        ]
    });
    check_references(&document, &[digest_of("amd64"), digest_of("arm")], None);
}

#[test]
fn walk_references_of_other_documents() {
    // A Docker v2 manifest: config and layers.
    check_references(
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": desc_json("application/vnd.docker.container.image.v1+json", "c"),
            "layers": [desc_json("application/vnd.docker.image.rootfs.diff.tar.gzip", "l")],
        }),
        &[digest_of("c"), digest_of("l")],
        None,
    );
    // An artifact manifest: blobs and subject.
    check_references(
        &json!({
            "mediaType": "application/vnd.oci.artifact.manifest.v1+json",
            "artifactType": "application/example",
            "blobs": [desc_json("application/octet-stream", "b")],
            "subject": desc_json(MANIFEST, "s"),
        }),
        &[digest_of("b")],
        Some(&digest_of("s")),
    );
    // An image config refers to nothing; null config and subject are ignored.
    check_references(&json!({"architecture": "amd64", "os": "linux"}), &[], None);
    check_references(
        &json!({"config": null, "subject": null, "layers": []}),
        &[],
        None,
    );
}

#[test]
fn walk_references_rejects_unfollowable_descriptors() {
    for bad in [
        json!({"manifests": [{"mediaType": MANIFEST, "size": 1}]}),
        json!({"layers": [{"mediaType": MANIFEST, "size": 1, "digest": "sha256:short"}]}),
        json!({"config": {"digest": digest_of("c")}}),
    ] {
        assert!(
            walk::references(bad.to_string().as_bytes()).is_err(),
            "{bad} should be an error"
        );
    }
    assert!(walk::references(b"not json").is_err());
}

#[test]
fn walk_media_type_classes() {
    let cases = [
        (OCI_INDEX, true, true),
        (
            "application/vnd.docker.distribution.manifest.list.v2+json",
            true,
            true,
        ),
        (MANIFEST, true, false),
        (
            "application/vnd.docker.distribution.manifest.v2+json",
            true,
            false,
        ),
        ("application/vnd.oci.artifact.manifest.v1+json", true, false),
        ("application/vnd.oci.image.config.v1+json", false, false),
        ("application/vnd.oci.descriptor.v1+json", false, false),
        ("x-completely-unknown", false, false),
    ];
    for (media_type, manifest_like, index_like) in cases {
        assert_eq!(
            walk::is_manifest_like(media_type),
            manifest_like,
            "{media_type}"
        );
        assert_eq!(walk::is_index_like(media_type), index_like, "{media_type}");
    }
}

// ---------------------------------------------------------------------------------------------
// Stores: everything written over `&dyn Store` runs on the in-memory store, which has no files
// ---------------------------------------------------------------------------------------------

mod stores {
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::time::Duration;

    use oci_core::gc::{GcOptions, gc};
    use oci_core::oci_spec::image::{Descriptor, ImageIndex, MediaType};
    use oci_core::prelude::*;
    use oci_core::referrers::{ArtifactFile, attach};
    use oci_core::{Error, Location, MemoryStore, Result, copy_image, fsck::fsck};
    use serde_json::json;

    /// A small image: a layer, a config, a manifest, tagged `v1`.
    fn image(store: &MemoryStore, layer: &[u8]) -> Descriptor {
        let layer = store.write_blob(Algorithm::Sha256, layer).unwrap();
        let config = seed::write_json_blob(
            store,
            &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]}}),
            MediaType::ImageConfig,
        )
        .unwrap();
        let manifest = seed::write_json_blob(
            store,
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config,
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": 5}],
            }),
            MediaType::ImageManifest,
        )
        .unwrap();
        store.tag(&manifest, "v1").unwrap();
        manifest
    }

    fn no_grace() -> GcOptions {
        GcOptions {
            grace: Duration::ZERO,
            dry_run: false,
        }
    }

    #[test]
    fn the_memory_store_reads_back_verified_content() {
        let store = MemoryStore::new();
        let digest = store.write_blob(Algorithm::Sha256, b"hello").unwrap();
        let mut text = String::new();
        store
            .fetch(ContentKind::Blob, digest, Some(5))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello");
        // A size the caller expects and the content does not have is a read error.
        let mut sink = Vec::new();
        let err = store
            .fetch(ContentKind::Blob, digest, Some(6))
            .unwrap()
            .read_to_end(&mut sink)
            .unwrap_err();
        assert!(err.to_string().contains("unexpected size"), "{err}");
        // A commit that does not match what the caller expected publishes nothing.
        let other = Algorithm::Sha256.digest(b"other");
        let mut writer = store.begin_blob(Algorithm::Sha256).unwrap();
        writer.write_all(b"wrong").unwrap();
        assert!(matches!(
            writer.commit(None, Some(other)),
            Err(Error::UnexpectedDigest { .. })
        ));
        assert!(!store.contains(ContentKind::Blob, other).unwrap());
        assert_eq!(
            store
                .stat(ContentKind::Blob, Algorithm::Sha256.digest(b"wrong"))
                .unwrap(),
            None
        );
    }

    #[test]
    fn an_entry_for_content_that_is_not_stored_is_refused() {
        let store = MemoryStore::new();
        let absent = Descriptor::new(MediaType::ImageManifest, 2, Algorithm::Sha256.digest(b"{}"));
        let err = store.tag(&absent, "v1").unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(store.index().unwrap().manifests().is_empty());
    }

    #[test]
    fn copy_fsck_and_gc_run_on_stores_without_files() {
        let source = MemoryStore::named("source");
        let manifest = image(&source, b"layer");
        let orphan = source.write_blob(Algorithm::Sha256, b"orphan").unwrap();

        let target = MemoryStore::named("target");
        let report = copy_image(&source, &target, &manifest).unwrap();
        assert_eq!(report.blobs_copied, 3, "layer, config, manifest");
        target.tag(&manifest, "copied").unwrap();
        assert!(!target.contains(ContentKind::Blob, orphan).unwrap());
        let again = copy_image(&source, &target, &manifest).unwrap();
        assert_eq!((again.blobs_copied, again.blobs_present), (0, 3));

        let checked = fsck(&target).unwrap();
        assert!(checked.is_clean(), "{:?}", checked.findings);
        assert_eq!(checked.blobs_checked, 3);

        let swept = gc(&source, &no_grace()).unwrap();
        assert_eq!(swept.removed, vec![(orphan, 6)]);
        assert_eq!(swept.live, 3);
        assert!(fsck(&source).unwrap().is_clean());
    }

    #[test]
    fn fsck_of_a_store_finds_a_missing_part() {
        let store = MemoryStore::new();
        let manifest = image(&store, b"layer");
        let layer = Algorithm::Sha256.digest(b"layer");
        store
            .blob_removal()
            .expect("the memory store removes blobs")
            .remove_blob(layer)
            .unwrap();
        let report = fsck(&store).unwrap();
        assert!(!report.is_clean());
        assert!(
            report
                .errors()
                .any(|f| f.subject == layer.to_string() && f.problem.contains("missing")),
            "{:?}",
            report.findings
        );
        // The image as a whole is reported through its root too.
        assert!(
            !oci_core::fsck::fsck_image(&store, &manifest)
                .unwrap()
                .is_clean()
        );
    }

    #[test]
    fn referrers_and_attach_run_on_a_store_without_files() {
        let store = MemoryStore::new();
        let manifest = image(&store, b"layer");
        let subject = Digest::try_from(manifest.digest()).unwrap();
        let sbom = attach(
            &store,
            &manifest,
            "application/spdx+json",
            vec![ArtifactFile {
                title: "sbom.json".into(),
                source: Location::Url("test".into()),
                media_type: "application/spdx+json".into(),
                content: Box::new(&b"{}"[..]),
            }],
            BTreeMap::new(),
        )
        .unwrap();
        let found = referrers(&store, subject, None).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].digest, sbom.digest().to_string());
        assert_eq!(
            found[0].artifact_type.as_deref(),
            Some("application/spdx+json")
        );
        assert!(
            referrers(&store, subject, Some("application/other"))
                .unwrap()
                .is_empty()
        );
        // gc keeps the artifact: its subject is live.
        let swept = gc(&store, &no_grace()).unwrap();
        assert!(swept.removed.is_empty(), "{:?}", swept.removed);
    }

    /// A store with content and an index but no capabilities: what a registry offers.
    struct Bare(MemoryStore);

    impl Store for Bare {
        fn location(&self) -> &Location {
            self.0.location()
        }
        fn stat(&self, kind: ContentKind, digest: Digest) -> Result<Option<u64>> {
            self.0.stat(kind, digest)
        }
        fn fetch(
            &self,
            kind: ContentKind,
            digest: Digest,
            size: Option<u64>,
        ) -> Result<Box<dyn Read + Send + '_>> {
            self.0.fetch(kind, digest, size)
        }
        fn push(&self, descriptor: &Descriptor, content: &mut dyn Read) -> Result<()> {
            self.0.push(descriptor, content)
        }
        fn begin_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
            self.0.begin_blob(algorithm)
        }
        fn index(&self) -> Result<ImageIndex> {
            self.0.index()
        }
        fn put_entries(
            &self,
            entries: &[Descriptor],
            required: &[Digest],
        ) -> Result<oci_core::index::PutOutcome> {
            self.0.put_entries(entries, required)
        }
        fn remove_ref(&self, name: &str) -> Result<bool> {
            self.0.remove_ref(name)
        }
    }

    #[test]
    fn an_operation_needing_a_capability_the_store_lacks_says_which() {
        let store = Bare(MemoryStore::named("docker://example.invalid/repo"));
        image(&store.0, b"layer");
        let err = gc(&store, &no_grace()).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("docker://example.invalid/repo") && message.contains("list its blobs"),
            "{message}"
        );
        let err = seed::delete_blob(&store, Algorithm::Sha256.digest(b"layer")).unwrap_err();
        assert!(err.to_string().contains("cannot remove blobs"), "{err}");
        let err = seed::write_index(&store, &oci_core::index::empty_index()).unwrap_err();
        assert!(err.to_string().contains("not an image layout"), "{err}");
        // What needs no capability works: fsck checks content, not layout files.
        assert!(fsck(&store).unwrap().is_clean());
    }
}

// ---------------------------------------------------------------------------------------------
// Cancelling a copy
// ---------------------------------------------------------------------------------------------

/// Cancels the copy it watches as soon as the first bytes of a blob are read: Ctrl-C in the
/// middle of a blob.
struct CancelOnFirstRead<'a>(&'a std::sync::atomic::AtomicBool);

impl oci_core::CopyProgress for CancelOnFirstRead<'_> {
    fn advance(&self, _: oci_core::Digest, _: u64) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_copy_cancelled_in_the_middle_of_a_blob_stops_with_an_error() {
    use oci_core::{ContentKind, CopyOptions, MemoryStore, Store, copy_image_with};

    let source = MemoryStore::named("memory:source".to_owned());
    // Larger than any read buffer: the blob takes several reads.
    let layer = vec![7u8; 4 << 20];
    let layer_digest = source.write_blob(Algorithm::Sha256, &layer).unwrap();
    let root = Descriptor::new(MediaType::ImageLayer, layer.len() as u64, layer_digest);
    let destination = MemoryStore::named("memory:destination".to_owned());
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let progress = CancelOnFirstRead(&cancel);
        let result = copy_image_with(
            &source,
            &destination,
            &root,
            &CopyOptions {
                jobs: 1,
                progress: Some(&progress),
                cancel: Some(&cancel),
            },
        );
        let stored = destination
            .contains(ContentKind::Blob, layer_digest)
            .unwrap();
        // The message as the CLI prints it: the error and its causes.
        let chain = |e: &Error| {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            text
        };
        let _ = done.send((result.map_err(|e| chain(&e)), stored));
    });
    let (result, stored) = outcome
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("a cancelled copy ends (it spun on the cancel instead)");
    let error = result.expect_err("a cancelled copy fails");
    assert!(error.contains("cancelled"), "{error}");
    assert!(!stored, "a cancelled blob is not stored");
}
