//! What distribution 2.8 does not do, against the in-memory registry: a minimum chunk length
//! (`OCI-Chunk-Min-Length`), and tag lists the registry pages whatever the client asks.

use std::io::Write;

use oci_core::prelude::*;
use oci_registry::RegistryOptions;
use serde_json::json;

use crate::fake_registry::{Behaviour, FakeRegistry};
use crate::{bytes, layer_descriptor, open, options, read_blob, tags};

#[test]
fn chunks_are_at_least_the_length_the_registry_asks_for() {
    let (fake, server) = FakeRegistry::serve(Behaviour {
        chunk_min_length: Some(4096),
        ..Behaviour::default()
    });
    let store = open(
        &server.host,
        "extras/chunks",
        RegistryOptions {
            chunk_size: 1024,
            chunked_uploads: true,
            ..options()
        },
    );
    let content = bytes("minimum chunk", 10_000);
    let descriptor = layer_descriptor(&content);
    let digest = Digest::try_from(descriptor.digest()).unwrap();
    store.push(&descriptor, &mut &content[..]).unwrap();
    assert_eq!(fake.patches(), [4096, 4096, 1808]);
    assert_eq!(fake.blob(digest).unwrap(), content);
    assert_eq!(read_blob(&store, digest).unwrap(), content);

    // Written as it is made: the same.
    let streamed = bytes("minimum chunk, streamed", 9000);
    let mut writer = store.begin_blob(Algorithm::Sha256).unwrap();
    for piece in streamed.chunks(1000) {
        writer.write_all(piece).unwrap();
    }
    let written = writer.commit(None, None).unwrap();
    assert_eq!(fake.patches()[3..], [4096, 4096, 808]);
    assert_eq!(fake.blob(written).unwrap(), streamed);
}

#[test]
fn a_tag_list_paged_by_the_registry_is_followed_to_the_end() {
    let (fake, server) = FakeRegistry::serve(Behaviour {
        tag_page: 2,
        ..Behaviour::default()
    });
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": Algorithm::Sha256.digest(b"{}").to_string(), "size": 2},
        "layers": [],
    }))
    .unwrap();
    let names = ["1.0", "1.1", "2.0", "latest", "stable"];
    for name in names {
        fake.put_tag(
            name,
            &manifest,
            "application/vnd.oci.image.manifest.v1+json",
        );
    }
    let store = open(&server.host, "extras/paged", options());
    assert_eq!(tags(&store), names);
    let pages: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.path().ends_with("/tags/list"))
        .map(|r| r.target().to_owned())
        .collect();
    assert_eq!(
        pages,
        [
            "/v2/extras/paged/tags/list?n=1000",
            "/v2/extras/paged/tags/list?n=2&last=1.1",
            "/v2/extras/paged/tags/list?n=2&last=latest",
        ]
    );
}
