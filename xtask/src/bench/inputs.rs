//! The inputs of `cargo xtask bench`, made under `target/bench-data` and kept between runs.
//!
//! Random bytes come from the blake3 XOF with a fixed key, so every machine generates the same
//! inputs (and the same digests). Layouts are written file by file here, not through the code
//! under test, and then checked once with `oci-layout fsck`. Each input is finished by a stamp
//! (`NAME.stamp.json`) written last: no stamp, or a stamp of an older generator, and the input
//! is made again.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use oci_digest::{Algorithm, Digest, HashingWriter};
use serde_json::{Value, json};

use super::{TAG, remove, run_quiet};

/// Bump when the shape of an input changes, so old copies are made again.
const GENERATOR: u64 = 1;
pub const RANDOM_1G: &str = "random-1g.bin";
pub const RANDOM_4G: &str = "random-4g.bin";
const GIB: u64 = 1 << 30;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Images in the gc layout, each tagged; layers referenced by them; layers nothing references.
const MANY_IMAGES: usize = 1_000;
const MANY_LIVE_LAYERS: usize = 5_000;
const MANY_GARBAGE: usize = 3_000;
/// Entries of the big index of the `tag` row.
const TAG_ENTRIES: usize = 10_000;

/// A generated file and its sha256.
pub struct Input {
    pub path: PathBuf,
    pub sha256: Digest,
}

/// 1 GiB of random bytes.
pub fn random_1g(data: &Path) -> Result<Input> {
    let path = data.join(RANDOM_1G);
    if let Some(stamp) = stamp(data, RANDOM_1G, &path)
        && let Some(sha256) = stamp["sha256"].as_str()
    {
        return Ok(Input {
            path,
            sha256: Digest::parse(sha256)?,
        });
    }
    eprintln!("   generating {} (1 GiB)", path.display());
    clear_stamp(data, RANDOM_1G)?;
    let sha256 = random_file(&path, GIB, RANDOM_1G)?;
    write_stamp(data, RANDOM_1G, json!({ "sha256": sha256.to_string() }))?;
    Ok(Input { path, sha256 })
}

/// 4 GiB of random bytes, for the peak-RSS rows only (the run deletes it afterwards).
pub fn random_4g(data: &Path) -> Result<PathBuf> {
    let path = data.join(RANDOM_4G);
    // Written under a temp name and renamed: a file with this name is complete.
    if fs::metadata(&path).is_ok_and(|meta| meta.len() == 4 * GIB) {
        return Ok(path);
    }
    eprintln!("   generating {} (4 GiB)", path.display());
    random_file(&path, 4 * GIB, RANDOM_4G)?;
    Ok(path)
}

/// A layout holding the 1 GiB file as its only blob (a hard link to it where possible).
pub fn blob_layout(data: &Path, cli: &Path) -> Result<(PathBuf, Digest)> {
    let input = random_1g(data)?;
    let path = data.join("blob-1g");
    if stamp(data, "blob-1g", &path).is_some_and(|s| s["input"] == input.sha256.to_string()) {
        return Ok((path, input.sha256));
    }
    eprintln!("   generating {}", path.display());
    clear_stamp(data, "blob-1g")?;
    let layout = LayoutWriter::create(&path)?;
    let blob = path.join(input.sha256.blob_path());
    if fs::hard_link(&input.path, &blob).is_err() {
        fs::copy(&input.path, &blob).with_context(|| format!("copying to {}", blob.display()))?;
    }
    layout.index(&[])?;
    fsck(cli, &path)?;
    write_stamp(
        data,
        "blob-1g",
        json!({ "input": input.sha256.to_string() }),
    )?;
    Ok((path, input.sha256))
}

/// The layout of the pack and unpack rows.
pub struct LayerLayout {
    pub path: PathBuf,
}

/// A real image with one 1 GiB gzip layer, tagged `bench`: the layer is a tar holding the
/// 1 GiB random file, gzip-framed without compression (random data does not compress; the
/// framing is what skopeo and umoci see), and the config lists its `diff_id`.
pub fn layer_layout(data: &Path, cli: &Path) -> Result<LayerLayout> {
    let input = random_1g(data)?;
    let path = data.join("layer-1g");
    if stamp(data, "layer-1g", &path).is_some_and(|s| s["input"] == input.sha256.to_string()) {
        return Ok(LayerLayout { path });
    }
    eprintln!("   generating {}", path.display());
    clear_stamp(data, "layer-1g")?;
    let layout = LayoutWriter::create(&path)?;

    let source = File::open(&input.path).with_context(|| format!("{}", input.path.display()))?;
    let layer = layout.gzip_layer("random.bin", source, GIB)?;

    let config = layout.json(
        CONFIG,
        &json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [layer.diff_id.to_string()] },
            "history": [{ "created_by": "cargo xtask bench" }]
        }),
    )?;
    let manifest = layout.json(
        MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config,
            "layers": [layer.descriptor]
        }),
    )?;
    layout.index(&[tagged(manifest, TAG)])?;
    fsck(cli, &path)?;
    write_stamp(
        data,
        "layer-1g",
        json!({ "input": input.sha256.to_string() }),
    )?;
    Ok(LayerLayout { path })
}

/// The layout of the 64-layer registry rows.
pub struct ManyLayersLayout {
    pub path: PathBuf,
}

/// Layers in the many-layer image, and the bytes of each.
pub const MANY_LAYERS: usize = 64;
const MANY_LAYER_BYTES: u64 = 8 << 20;

/// An image of 64 gzip layers of 8 MiB, tagged `bench`: each layer a tar holding 8 MiB of the
/// 1 GiB random file (its own slice, so no two layers share a digest), gzip-framed as in
/// [`layer_layout`].
pub fn many_layers_layout(data: &Path, cli: &Path) -> Result<ManyLayersLayout> {
    let input = random_1g(data)?;
    let path = data.join("layers-64x8m");
    if stamp(data, "layers-64x8m", &path).is_some_and(|s| s["input"] == input.sha256.to_string()) {
        return Ok(ManyLayersLayout { path });
    }
    eprintln!("   generating {}", path.display());
    clear_stamp(data, "layers-64x8m")?;
    let layout = LayoutWriter::create(&path)?;
    let mut source =
        File::open(&input.path).with_context(|| format!("{}", input.path.display()))?;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for index in 0..MANY_LAYERS {
        let slice = (&mut source).take(MANY_LAYER_BYTES);
        let layer = layout.gzip_layer(&format!("part-{index:02}.bin"), slice, MANY_LAYER_BYTES)?;
        diff_ids.push(layer.diff_id.to_string());
        layers.push(layer.descriptor);
    }
    let config = layout.json(
        CONFIG,
        &json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": [{ "created_by": "cargo xtask bench" }]
        }),
    )?;
    let manifest = layout.json(
        MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config,
            "layers": layers
        }),
    )?;
    layout.index(&[tagged(manifest, TAG)])?;
    fsck(cli, &path)?;
    write_stamp(
        data,
        "layers-64x8m",
        json!({ "input": input.sha256.to_string() }),
    )?;
    Ok(ManyLayersLayout { path })
}

/// The layout of the gc row.
pub struct ManyLayout {
    pub path: PathBuf,
    /// The blobs a gc must keep.
    pub live: usize,
}

/// 10,000 blobs: 1,000 tagged images (manifest, config, five layers of their own and one of
/// 100 shared base layers), and 3,000 layers nothing refers to. Blobs are 256 B to 4 KiB.
pub fn many_layout(data: &Path, cli: &Path) -> Result<ManyLayout> {
    let path = data.join("many");
    let live = MANY_LIVE_LAYERS + 2 * MANY_IMAGES;
    if stamp(data, "many", &path).is_some() {
        return Ok(ManyLayout { path, live });
    }
    eprintln!("   generating {}", path.display());
    clear_stamp(data, "many")?;
    let layout = LayoutWriter::create(&path)?;
    let mut random = Random::new("many");
    let mut layers = Vec::with_capacity(MANY_LIVE_LAYERS + MANY_GARBAGE);
    for _ in 0..MANY_LIVE_LAYERS + MANY_GARBAGE {
        let len = 256 + random.below(4096 - 256 + 1);
        layers.push(layout.blob(LAYER_TAR, &random.bytes(len))?);
    }
    let mut entries = Vec::with_capacity(MANY_IMAGES);
    for image in 0..MANY_IMAGES {
        let mut picks: Vec<usize> = (0..5).map(|k| (image * 5 + k) % MANY_LIVE_LAYERS).collect();
        let base = image % 100;
        if !picks.contains(&base) {
            picks.insert(0, base);
        }
        let diff_ids: Vec<String> = picks
            .iter()
            .map(|&i| layers[i]["digest"].as_str().unwrap_or_default().to_owned())
            .collect();
        let config = layout.json(
            CONFIG,
            &json!({
                "architecture": "amd64",
                "os": "linux",
                "config": { "Labels": { "bench.image": image.to_string() } },
                "rootfs": { "type": "layers", "diff_ids": diff_ids }
            }),
        )?;
        let manifest_layers: Vec<Value> = picks.iter().map(|&i| layers[i].clone()).collect();
        let manifest = layout.json(
            MANIFEST,
            &json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": config,
                "layers": manifest_layers
            }),
        )?;
        entries.push(tagged(manifest, &format!("v{image:04}")));
    }
    layout.index(&entries)?;
    let blobs = fs::read_dir(path.join("blobs/sha256"))?.count();
    if blobs != live + MANY_GARBAGE {
        bail!(
            "{} holds {blobs} blobs, not {}",
            path.display(),
            live + MANY_GARBAGE
        );
    }
    fsck(cli, &path)?;
    write_stamp(data, "many", json!({}))?;
    Ok(ManyLayout { path, live })
}

/// The layout of the tag row: a small image under an index of 10,000 entries (`t00000` ...).
pub struct TagLayout {
    pub path: PathBuf,
    pub manifest: Digest,
}

pub fn tag_layout(data: &Path, cli: &Path) -> Result<TagLayout> {
    let path = data.join("tag-10k");
    if let Some(stamp) = stamp(data, "tag", &path)
        && let Some(manifest) = stamp["manifest"].as_str()
    {
        return Ok(TagLayout {
            path,
            manifest: Digest::parse(manifest)?,
        });
    }
    clear_stamp(data, "tag")?;
    eprintln!("   generating {}", path.display());
    let layout = LayoutWriter::create(&path)?;
    let layer = layout.blob(LAYER_TAR, &Random::new("tag").bytes(2048))?;
    let config = layout.json(
        CONFIG,
        &json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [layer["digest"].clone()] }
        }),
    )?;
    let manifest = layout.json(
        MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config,
            "layers": [layer]
        }),
    )?;
    let digest = manifest["digest"]
        .as_str()
        .context("a descriptor without a digest")?
        .to_owned();
    let entries: Vec<Value> = (0..TAG_ENTRIES)
        .map(|i| tagged(manifest.clone(), &format!("t{i:05}")))
        .collect();
    layout.index(&entries)?;
    fsck(cli, &path)?;
    write_stamp(data, "tag", json!({ "manifest": digest }))?;
    Ok(TagLayout {
        path,
        manifest: Digest::parse(&digest)?,
    })
}

/// The trees of the three-layer image `image unpack` is measured on.
pub const ROOTFS_SOURCES: [&str; 3] = ["/usr/include", "/usr/share", "/usr/lib/x86_64-linux-gnu"];

/// A three-layer gzip image of [`ROOTFS_SOURCES`], one `image create` per layer (each on the
/// last as `--base`), tagged `TAG`; with its layer blobs, in order.
pub struct RootfsLayout {
    pub path: PathBuf,
    pub layers: Vec<PathBuf>,
}

pub fn rootfs_layout(data: &Path, cli: &Path) -> Result<RootfsLayout> {
    let path = data.join("rootfs-layout");
    let blobs = |path: &Path| -> Result<Vec<PathBuf>> {
        let index: serde_json::Value = serde_json::from_slice(&fs::read(path.join("index.json"))?)?;
        let manifest_digest = index["manifests"][0]["digest"]
            .as_str()
            .context("no manifest")?;
        let blob = |digest: &str| path.join("blobs").join(digest.replacen(':', "/", 1));
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(blob(manifest_digest))?)?;
        let layers = manifest["layers"].as_array().context("no layers")?;
        layers
            .iter()
            .map(|layer| Ok(blob(layer["digest"].as_str().context("no digest")?)))
            .collect()
    };
    if stamp(data, "rootfs-layout", &path).is_some() {
        return Ok(RootfsLayout {
            layers: blobs(&path)?,
            path,
        });
    }
    eprintln!(
        "   generating {} (three gzip layers; minutes)",
        path.display()
    );
    clear_stamp(data, "rootfs-layout")?;
    remove(&path)?;
    for (i, source) in ROOTFS_SOURCES.iter().enumerate() {
        let mut create = Command::new(cli);
        create
            .args(["image", "create"])
            .arg(&path)
            .args(["--from-dir", source, "--tag"]);
        if i + 1 == ROOTFS_SOURCES.len() {
            create.arg(TAG);
        } else {
            create.arg(format!("layer{i}"));
        }
        if i > 0 {
            create.args(["--base", &format!("layer{}", i - 1)]);
        }
        run_quiet(create)?;
    }
    // Only the last image in the index: the one both sides unpack.
    for base in ["layer0", "layer1"] {
        let mut untag = Command::new(cli);
        untag.arg("untag").arg(&path).arg(base);
        run_quiet(untag)?;
    }
    write_stamp(data, "rootfs-layout", json!({}))?;
    Ok(RootfsLayout {
        layers: blobs(&path)?,
        path,
    })
}

/// An empty image made by umoci (`umoci init` + `umoci new`), for `umoci insert`.
pub fn umoci_base(data: &Path) -> Result<PathBuf> {
    let path = data.join("umoci-base");
    if stamp(data, "umoci-base", &path).is_some() {
        return Ok(path);
    }
    eprintln!("   generating {}", path.display());
    clear_stamp(data, "umoci-base")?;
    remove(&path)?;
    let mut init = Command::new("umoci");
    init.args(["init", "--layout"]).arg(&path);
    run_quiet(init)?;
    let mut new = Command::new("umoci");
    new.arg("new").arg("--image").arg(format!(
        "{}:{TAG}",
        path.to_str().context("bench-data path is not UTF-8")?
    ));
    run_quiet(new)?;
    write_stamp(data, "umoci-base", json!({}))?;
    Ok(path)
}

/// A layout written file by file: `oci-layout`, `blobs/sha256/*`, `index.json`.
struct LayoutWriter {
    root: PathBuf,
}

impl LayoutWriter {
    fn create(root: &Path) -> Result<LayoutWriter> {
        remove(root)?;
        let blobs = root.join("blobs/sha256");
        fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
        let marker = root.join("oci-layout");
        fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .with_context(|| format!("writing {}", marker.display()))?;
        Ok(LayoutWriter {
            root: root.to_path_buf(),
        })
    }

    /// Stores `bytes` and returns its descriptor.
    fn blob(&self, media_type: &str, bytes: &[u8]) -> Result<Value> {
        let digest = Algorithm::Sha256.digest(bytes);
        let path = self.root.join(digest.blob_path());
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(descriptor(media_type, digest, bytes.len() as u64))
    }

    /// Stores a gzip layer: a tar of one file `name` of `size` bytes read from `content`,
    /// framed as gzip without compression (random data does not compress; the framing is what
    /// skopeo and umoci see). The tar is hashed on its way in (the `diff_id`), the gzip stream
    /// on its way out.
    fn gzip_layer(&self, name: &str, content: impl Read, size: u64) -> Result<GeneratedLayer> {
        let temp = self.root.join("blobs/sha256/layer.partial");
        let file = File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        let compressed =
            HashingWriter::new(BufWriter::with_capacity(1 << 20, file), Algorithm::Sha256);
        let gzip = flate2::write::GzEncoder::new(compressed, flate2::Compression::none());
        let mut builder = tar::Builder::new(HashingWriter::new(gzip, Algorithm::Sha256));
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(
                &mut header,
                name,
                BufReader::with_capacity(1 << 20, content),
            )
            .context("writing the layer tar")?;
        let (gzip, diff_id, _) = builder
            .into_inner()
            .context("ending the layer tar")?
            .finish();
        let (buffered, digest, compressed_size) =
            gzip.finish().context("ending the gzip")?.finish();
        buffered
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)
            .context("writing the layer")?;
        let blob = self.root.join(digest.blob_path());
        fs::rename(&temp, &blob).with_context(|| format!("naming {}", blob.display()))?;
        Ok(GeneratedLayer {
            descriptor: descriptor(LAYER_GZIP, digest, compressed_size),
            diff_id,
        })
    }

    fn json(&self, media_type: &str, value: &Value) -> Result<Value> {
        self.blob(media_type, &serde_json::to_vec(value)?)
    }

    fn index(&self, manifests: &[Value]) -> Result<()> {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests
        });
        let path = self.root.join("index.json");
        fs::write(&path, serde_json::to_vec(&index)?)
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// A layer [`LayoutWriter::gzip_layer`] stored.
struct GeneratedLayer {
    descriptor: Value,
    diff_id: Digest,
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Value {
    json!({ "mediaType": media_type, "digest": digest.to_string(), "size": size })
}

/// An index entry for a manifest descriptor: its ref name and the platform.
fn tagged(mut manifest: Value, name: &str) -> Value {
    manifest["annotations"] = json!({ REF_NAME: name });
    manifest["platform"] = json!({ "architecture": "amd64", "os": "linux" });
    manifest
}

/// The generated layouts must pass our own fsck before any row uses them.
fn fsck(cli: &Path, layout: &Path) -> Result<()> {
    let mut command = Command::new(cli);
    command.arg("fsck").arg(layout);
    run_quiet(command).with_context(|| format!("the generated {} is not sound", layout.display()))
}

/// Deterministic random bytes: the blake3 XOF under a fixed key, one stream per input.
struct Random(blake3::OutputReader);

impl Random {
    fn new(stream: &str) -> Random {
        let mut hasher = blake3::Hasher::new_derive_key("oci-layout cargo xtask bench inputs v1");
        hasher.update(stream.as_bytes());
        Random(hasher.finalize_xof())
    }

    fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill(buf);
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.fill(&mut buf);
        buf
    }

    fn below(&mut self, bound: usize) -> usize {
        let mut word = [0u8; 8];
        self.fill(&mut word);
        (u64::from_le_bytes(word) % bound as u64) as usize
    }
}

/// `size` random bytes (stream `name`) written to `path` via a temp file; returns the sha256.
fn random_file(path: &Path, size: u64, name: &str) -> Result<Digest> {
    let temp = path.with_extension("partial");
    let file = File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
    let mut out = HashingWriter::new(file, Algorithm::Sha256);
    let mut random = Random::new(name);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        random.fill(&mut buf[..n]);
        out.write_all(&buf[..n])
            .with_context(|| format!("writing {}", temp.display()))?;
        left -= n as u64;
    }
    let (_, digest, _) = out.finish();
    fs::rename(&temp, path).with_context(|| format!("naming {}", path.display()))?;
    Ok(digest)
}

/// The stamp of input `name` when it is current and `target` exists.
fn stamp(data: &Path, name: &str, target: &Path) -> Option<Value> {
    if !target.exists() {
        return None;
    }
    let bytes = fs::read(data.join(format!("{name}.stamp.json"))).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    (value["generator"] == GENERATOR).then_some(value)
}

fn clear_stamp(data: &Path, name: &str) -> Result<()> {
    remove(&data.join(format!("{name}.stamp.json")))
}

fn write_stamp(data: &Path, name: &str, mut value: Value) -> Result<()> {
    value["generator"] = json!(GENERATOR);
    let path = data.join(format!("{name}.stamp.json"));
    fs::write(&path, serde_json::to_vec_pretty(&value)?)
        .with_context(|| format!("writing {}", path.display()))
}
