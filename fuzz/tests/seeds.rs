//! Writes the committed seed corpus. Run it by hand after changing an input format:
//!
//! ```sh
//! cargo test --manifest-path fuzz/Cargo.toml --no-default-features --test seeds -- --ignored
//! ```
//!
//! It reads `../shared/conformance` (digest vectors, index files, small JSON blobs, archives)
//! and builds small archives: a valid layout, one with `..`, `/` and link entries, a truncated
//! one, and their gzip and zstd forms. Everything it writes is a few KiB.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_core::oci_spec::image::MediaType;
use oci_core::{Store, seed};
use oci_tar::TarWriter;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn conformance() -> PathBuf {
    root().join("../../shared/conformance")
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = root().join("corpus").join(target);
    fs::create_dir_all(&dir).expect("creating the corpus dir");
    fs::write(dir.join(name), bytes).expect("writing a seed");
}

fn layouts() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(conformance().join("layouts"))
        .expect("the conformance layouts")
        .map(|e| e.expect("an entry").path())
        .collect();
    dirs.sort();
    dirs
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    digest_seeds();
    index_seeds();
    walk_seeds();
    let tars = tar_seeds();
    for (name, bytes) in &tars {
        write("tar_reader", name, bytes);
    }
    compressed_seeds(&tars);
}

fn digest_seeds() {
    let vectors: serde_json::Value = serde_json::from_slice(
        &fs::read(conformance().join("vectors/digests.json")).expect("digests.json"),
    )
    .expect("digests.json parses");
    let cases = vectors["cases"].as_array().expect("cases");
    for (i, case) in cases.iter().enumerate() {
        let input = case["input"].as_str().expect("an input string");
        write("digest_parse", &format!("vector-{i:02}"), input.as_bytes());
    }
}

fn index_seeds() {
    // Op script: put tagged, put untagged, remove, re-put renamed; see src/index.rs.
    let script = [
        0u8, 1, 7, 3, 1, 2, 9, 2, 1, 3, 0, 1, 2, 0, 0, 4, 200, 12, 3, 1, 1, 6,
    ];
    for dir in layouts() {
        let name = dir
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let index = fs::read(dir.join("index.json")).expect("index.json");
        write("index_ops", &name, &index);
        write(
            "index_ops",
            &format!("{name}+ops"),
            &[&index[..], &script].concat(),
        );
    }
    let extra: [(&str, &[u8]); 3] = [
        ("null-manifests", br#"{"schemaVersion":2,"manifests":null}"#),
        (
            "platform-os-version",
            br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"platform":{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1040","os.features":["win32k"]},"annotations":{"org.opencontainers.image.ref.name":"v1","x":"y"}}]}"#,
        ),
        ("empty-object-ops", b"{}\x00\x01\x02\x03\x00\x05"),
    ];
    for (name, bytes) in extra {
        write("index_ops", name, bytes);
    }
}

fn walk_seeds() {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    for dir in layouts() {
        let layout = dir
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        for algorithm in fs::read_dir(dir.join("blobs")).into_iter().flatten() {
            for blob in fs::read_dir(algorithm.expect("an entry").path()).expect("blobs/<alg>") {
                let path = blob.expect("an entry").path();
                let bytes = fs::read(&path).expect("a blob");
                let name = path
                    .file_name()
                    .expect("a name")
                    .to_string_lossy()
                    .into_owned();
                if bytes.len() < 4096 && bytes.first() == Some(&b'{') {
                    blobs.push((format!("{layout}-{}", &name[..12.min(name.len())]), bytes));
                }
            }
        }
    }
    blobs.sort();
    blobs.dedup_by(|a, b| a.1 == b.1);
    for (name, bytes) in blobs.iter().take(40) {
        write("manifest_walk", name, bytes);
    }
    // Templates (src/walk.rs): `@X` is slot X's digest, `#X` its size; slots follow NULs, each
    // a mode byte and content. Mode `0` stores a blob under its digest, `1` under a fixed one.
    let index = |slot: &str, media: &str| {
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.{media}.v1+json","digest":"@{slot}","size":#{slot},"annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#
        )
    };
    let image = [
        index("2", "manifest"),
        "\u{0}0{}".into(),
        "\u{0}0layer".into(),
        "\u{0}0{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"@0\",\"size\":#0},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"@1\",\"size\":#1}]}".into(),
        "\u{0}0{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"artifactType\":\"application/x-sig\",\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"@0\",\"size\":#0},\"layers\":[],\"subject\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"@2\",\"size\":#2}}".into(),
    ]
    .concat();
    write(
        "manifest_walk",
        "template-image-with-referrer",
        image.as_bytes(),
    );
    let self_index = "\u{0}1{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"@0\",\"size\":#0}]}";
    write(
        "manifest_walk",
        "template-self-referencing-index",
        [index("0", "index").as_str(), self_index]
            .concat()
            .as_bytes(),
    );
    let two_cycle = "\u{0}1{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"@1\",\"size\":#1}]}\u{0}1{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"@0\",\"size\":#0}]}";
    write(
        "manifest_walk",
        "template-two-index-cycle",
        [index("0", "index").as_str(), two_cycle]
            .concat()
            .as_bytes(),
    );
}

/// A small valid layout archive: config, layer, manifest, tagged.
fn layout_tar() -> Vec<u8> {
    let writer = TarWriter::new(Vec::new(), "seed.tar");
    seed::init(&writer, &seed::InitOptions::default()).expect("init");
    let config = seed::write_json_blob(&writer, &serde_json::json!({}), MediaType::ImageConfig)
        .expect("config");
    let layer = seed::write_blob(&writer, b"layer").expect("layer");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest().to_string(), "size": config.size()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": 5}],
    });
    let manifest =
        seed::write_json_blob(&writer, &manifest, MediaType::ImageManifest).expect("manifest");
    writer.tag(&manifest, "v1").expect("tag");
    writer.finish().expect("finish")
}

/// A raw tar entry whose name is written as is (the tar crate refuses `..` in `set_path`).
fn raw_entry(out: &mut Vec<u8>, name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
}

fn hostile_tar() -> Vec<u8> {
    let valid = layout_tar();
    let mut out = Vec::new();
    raw_entry(
        &mut out,
        b"../escape",
        tar::EntryType::Regular,
        b"",
        b"outside",
    );
    raw_entry(
        &mut out,
        b"/etc/absolute",
        tar::EntryType::Regular,
        b"",
        b"outside",
    );
    let blob = oci_digest::Algorithm::Sha256.digest(b"x").blob_entry_name();
    raw_entry(
        &mut out,
        blob.as_bytes(),
        tar::EntryType::Symlink,
        b"/etc/passwd",
        b"",
    );
    raw_entry(
        &mut out,
        b"blobs/sha256/../../../x",
        tar::EntryType::Regular,
        b"",
        b"x",
    );
    raw_entry(
        &mut out,
        b"blobs/sha256/ABC",
        tar::EntryType::Regular,
        b"",
        b"x",
    );
    // Then the valid layout (without its end marker's effect: two zero blocks end the archive).
    out.extend_from_slice(&valid);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("writing to a Vec");
    encoder.finish().expect("writing to a Vec")
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 19).expect("compressing")
}

fn tar_seeds() -> Vec<(String, Vec<u8>)> {
    let valid = layout_tar();
    let truncated = valid[..valid.len() * 3 / 5].to_vec();
    let mut seeds = vec![
        ("layout.tar".to_owned(), valid.clone()),
        ("hostile.tar".to_owned(), hostile_tar()),
        ("truncated.tar".to_owned(), truncated),
        ("layout.tar.gz".to_owned(), gzip(&valid)),
        ("layout.tar.zst".to_owned(), zstd(&valid)),
    ];
    for archive in ["ctr-export-hello-world.tar", "skopeo-1.9-oci-archive.tar"] {
        let bytes = fs::read(conformance().join("archives").join(archive)).expect("an archive");
        seeds.push((archive.to_owned(), bytes));
    }
    seeds
}

fn compressed_seeds(tars: &[(String, Vec<u8>)]) {
    for (name, bytes) in tars.iter().filter(|(n, _)| n.ends_with(".tar")) {
        let stem = name.trim_end_matches(".tar");
        write(
            "compressed_reader",
            &format!("{stem}.plain"),
            &[&[0u8][..], bytes].concat(),
        );
        // Modes 1 and 2 prepend the magic number, so the seed holds the stream without it.
        write(
            "compressed_reader",
            &format!("{stem}.gz-raw"),
            &[&[1u8][..], &gzip(bytes)[2..]].concat(),
        );
        write(
            "compressed_reader",
            &format!("{stem}.zst-raw"),
            &[&[2u8][..], &zstd(bytes)[4..]].concat(),
        );
    }
    let valid = &tars[0].1;
    write(
        "compressed_reader",
        "layout.to-gzip",
        &[&[3u8][..], valid].concat(),
    );
    write(
        "compressed_reader",
        "layout.to-zstd",
        &[&[4u8][..], valid].concat(),
    );
    // A gzip bomb: 4 MiB of zeros, far past the fuzz limit's ratio.
    let bomb = gzip(&vec![0u8; 4 << 20]);
    write(
        "compressed_reader",
        "bomb.gz-raw",
        &[&[1u8][..], &bomb[2..]].concat(),
    );
}
