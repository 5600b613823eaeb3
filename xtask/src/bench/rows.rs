//! The rows: what each side runs, and the untimed setup and cleanup around it.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use oci_digest::Digest;

use super::{
    Ctx, IMAGE_SOURCE, Outcome, Side, TAG, TIME, alternate, copy_tree, inputs, missing, output_of,
    peak_rss, remove, run_quiet, shell, tag_runs, warm,
};

/// `blob put` (sha256, durable) of the 1 GiB file against `openssl dgst -sha256` of it.
pub(super) fn put_sha256(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&["openssl"]) {
        return Ok(skip);
    }
    let input = inputs::random_1g(&ctx.data)?;
    warm(&input.path)?;
    let ctx = &*ctx;
    // A fresh layout per run: an existing blob is not rewritten.
    let layout = ctx.scratch.join("put");
    let ours = Side::new(
        "ours",
        || {
            ctx.fresh_layout(&layout)?;
            Ok(ctx.ours([os("blob"), os("put"), os(&layout), os(&input.path)]))
        },
        || remove(&layout),
    );
    let reference = Side::new(
        "reference",
        || {
            let mut command = Command::new("openssl");
            command.args(["dgst", "-sha256"]).arg(&input.path);
            Ok(command)
        },
        || Ok(()),
    );
    alternate(ctx.runs, 0, ours, reference)
}

/// `blob put --algorithm blake3` (durable) against a copy of the file that is then synced.
///
/// The copy is synced with `sync DEST` (an fsync of that file, as ours fsyncs its blob), not a
/// bare `sync`, which would also flush whatever other processes on the machine left dirty.
pub(super) fn put_blake3(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&["cp", "sync"]) {
        return Ok(skip);
    }
    let input = inputs::random_1g(&ctx.data)?;
    warm(&input.path)?;
    let ctx = &*ctx;
    let layout = ctx.scratch.join("put");
    let copy = ctx.scratch.join("copy.bin");
    let ours = Side::new(
        "ours",
        || {
            ctx.fresh_layout(&layout)?;
            Ok(ctx.ours([
                os("blob"),
                os("put"),
                os("--algorithm"),
                os("blake3"),
                os(&layout),
                os(&input.path),
            ]))
        },
        || remove(&layout),
    );
    let reference = Side::new(
        "reference",
        || Ok(shell(r#"cp "$1" "$2" && sync "$2""#, &[&input.path, &copy])),
        || remove(&copy),
    );
    alternate(ctx.runs, 0, ours, reference)
}

/// `blob get` (verified) of the 1 GiB blob to /dev/null against `openssl dgst -sha256` of it.
pub(super) fn get(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&["openssl"]) {
        return Ok(skip);
    }
    let (layout, digest) = inputs::blob_layout(&ctx.data, &ctx.cli)?;
    let blob = layout.join(digest.blob_path());
    warm(&blob)?;
    let ctx = &*ctx;
    let ours = Side::new(
        "ours",
        || Ok(ctx.ours([os("blob"), os("get"), os(&layout), os(digest.to_string())])),
        || Ok(()),
    );
    let reference = Side::new(
        "reference",
        || {
            let mut command = Command::new("openssl");
            command.args(["dgst", "-sha256"]).arg(&blob);
            Ok(command)
        },
        || Ok(()),
    );
    alternate(ctx.runs, 0, ours, reference)
}

/// `pack` of the 1 GiB-layer layout against `skopeo copy oci:… oci-archive:…`.
pub(super) fn pack(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&["skopeo"]) {
        return Ok(skip);
    }
    let layer = inputs::layer_layout(&ctx.data, &ctx.cli)?;
    warm(&layer.path)?;
    let ctx = &*ctx;
    let ours_out = ctx.scratch.join("ours.tar");
    let skopeo_out = ctx.scratch.join("skopeo.tar");
    let ours = Side::new(
        "ours",
        || Ok(ctx.ours([os("pack"), os(&layer.path), os(&ours_out)])),
        || remove(&ours_out),
    );
    let reference = Side::new(
        "reference",
        || {
            Ok(skopeo_copy(
                &format!("oci:{}:{TAG}", utf8(&layer.path)?),
                &format!("oci-archive:{}:{TAG}", utf8(&skopeo_out)?),
            ))
        },
        || remove(&skopeo_out),
    );
    alternate(ctx.runs, 0, ours, reference)
}

/// `unpack` of our archive of the 1 GiB-layer layout against `skopeo copy oci-archive:… oci:…`
/// of the same archive.
pub(super) fn unpack(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&["skopeo"]) {
        return Ok(skip);
    }
    let layer = inputs::layer_layout(&ctx.data, &ctx.cli)?;
    let archive = ctx.data.join("layer-1g.tar");
    eprintln!("   packing {} (untimed)", archive.display());
    run_quiet(ctx.ours([os("pack"), os(&layer.path), os(&archive)]))?;
    warm(&archive)?;
    let outcome = {
        let ctx = &*ctx;
        let ours_out = ctx.scratch.join("ours-unpacked");
        let skopeo_out = ctx.scratch.join("skopeo-unpacked");
        let ours = Side::new(
            "ours",
            || Ok(ctx.ours([os("unpack"), os(&archive), os(&ours_out)])),
            || remove(&ours_out),
        );
        let reference = Side::new(
            "reference",
            || {
                Ok(skopeo_copy(
                    &format!("oci-archive:{}:{TAG}", utf8(&archive)?),
                    &format!("oci:{}:{TAG}", utf8(&skopeo_out)?),
                ))
            },
            || remove(&skopeo_out),
        );
        alternate(ctx.runs, 0, ours, reference)
    };
    remove(&archive)?;
    outcome
}

/// `gc` against `umoci gc`, each on a fresh copy of the 10,000-blob layout (copy untimed).
/// Both must leave exactly the live blobs.
pub(super) fn gc(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&["umoci", "cp"]) {
        return Ok(skip);
    }
    let many = inputs::many_layout(&ctx.data, &ctx.cli)?;
    let ctx = &*ctx;
    let ours_copy = ctx.scratch.join("gc-ours");
    let umoci_copy = ctx.scratch.join("gc-umoci");
    let ours = Side::new(
        "ours",
        || {
            copy_tree(&many.path, &ours_copy)?;
            Ok(ctx.ours([os("gc"), os(&ours_copy), os("--grace"), os("0s")]))
        },
        || {
            check_blob_count(&ours_copy, many.live)?;
            remove(&ours_copy)
        },
    );
    let reference = Side::new(
        "reference",
        || {
            copy_tree(&many.path, &umoci_copy)?;
            let mut command = Command::new("umoci");
            command.args(["gc", "--layout"]).arg(&umoci_copy);
            Ok(command)
        },
        || {
            check_blob_count(&umoci_copy, many.live)?;
            remove(&umoci_copy)
        },
    );
    alternate(ctx.runs, 0, ours, reference)
}

/// `tag` into the 10,000-entry index against `umoci tag` into a copy of the same index (copied
/// once, untimed). One warm-up round adds the entry both then replace, so every timed run does
/// the same work on an index of the same size.
pub(super) fn tag(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&["umoci", "cp"]) {
        return Ok(skip);
    }
    let layout = inputs::tag_layout(&ctx.data, &ctx.cli)?;
    let umoci_layout = ctx.scratch.join("tag-umoci");
    remove(&umoci_layout)?;
    copy_tree(&layout.path, &umoci_layout)?;
    let ctx = &*ctx;
    let ours = Side::new(
        "ours",
        || {
            Ok(ctx.ours([
                os("tag"),
                os(&layout.path),
                os(layout.manifest.to_string()),
                os(TAG),
            ]))
        },
        || Ok(()),
    );
    let reference = Side::new(
        "reference",
        || {
            let mut command = Command::new("umoci");
            command
                .args(["tag", "--image"])
                .arg(format!("{}:t00000", utf8(&umoci_layout)?))
                .arg(TAG);
            Ok(command)
        },
        || Ok(()),
    );
    let outcome = alternate(tag_runs(ctx), 1, ours, reference);
    remove(&umoci_layout)?;
    outcome
}

/// `image create --compression zstd` against `tar | zstd -T2 -3` of the same tree.
pub(super) fn image_zstd(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = image_skip(ctx).or_else(|| missing(&["tar", "zstd"])) {
        return Ok(skip);
    }
    let source = Path::new(IMAGE_SOURCE);
    warm(source)?;
    let ctx = &*ctx;
    let layout = ctx.scratch.join("image");
    let ours = Side::new(
        "ours",
        || image_create(ctx, &layout, "zstd"),
        || remove(&layout),
    );
    let reference = Side::new(
        "reference",
        || {
            Ok(shell(
                r#"tar -C "$1" -cf - . | zstd -q -T2 -3 > /dev/null"#,
                &[source],
            ))
        },
        || Ok(()),
    );
    alternate(ctx.runs, 0, ours, reference)
}

/// `image create --compression gzip` against `umoci insert` of the same tree into a fresh copy
/// of an empty umoci image (copy untimed).
pub(super) fn image_gzip(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = image_skip(ctx).or_else(|| missing(&["umoci", "cp"])) {
        return Ok(skip);
    }
    let source = Path::new(IMAGE_SOURCE);
    let base = inputs::umoci_base(&ctx.data)?;
    warm(source)?;
    let ctx = &*ctx;
    let layout = ctx.scratch.join("image");
    let umoci_copy = ctx.scratch.join("umoci-image");
    let ours = Side::new(
        "ours",
        || image_create(ctx, &layout, "gzip"),
        || remove(&layout),
    );
    let reference = Side::new(
        "reference",
        || {
            copy_tree(&base, &umoci_copy)?;
            let mut command = Command::new("umoci");
            command
                .arg("insert")
                .arg("--image")
                .arg(format!("{}:{TAG}", utf8(&umoci_copy)?))
                .arg(source)
                .arg("/");
            Ok(command)
        },
        || remove(&umoci_copy),
    );
    alternate(ctx.runs, 0, ours, reference)
}

/// Peak RSS of `blob put` of the 4 GiB file into a fresh layout; the last layout is kept for
/// the `get` and `pack` rows.
pub(super) fn rss_put(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&[TIME]) {
        return Ok(skip);
    }
    let input = inputs::random_4g(&ctx.data)?;
    let layout = ctx.scratch.join("rss-put");
    let mut peaks = Vec::new();
    for run in 0..rss_runs(ctx) {
        ctx.fresh_layout(&layout)?;
        let (kib, out) = peak_rss(
            &ctx.ours([os("blob"), os("put"), os(&layout), os(&input)]),
            true,
        )?;
        eprintln!("   run {}/{}: {}", run + 1, rss_runs(ctx), mib(kib));
        peaks.push(kib);
        if ctx.rss_layout.is_none() {
            let kept = ctx.data.join("rss-layout");
            remove(&kept)?;
            fs::rename(&layout, &kept).with_context(|| format!("keeping {}", kept.display()))?;
            ctx.rss_layout = Some((kept, parse_digest(&out)?));
        } else {
            remove(&layout)?;
        }
    }
    Ok(Outcome::Rss(peaks))
}

/// Peak RSS of `blob get` of the 4 GiB blob to /dev/null.
pub(super) fn rss_get(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&[TIME]) {
        return Ok(skip);
    }
    let (layout, digest) = rss_layout(ctx)?;
    let mut peaks = Vec::new();
    for run in 0..rss_runs(ctx) {
        let command = ctx.ours([os("blob"), os("get"), os(&layout), os(digest.to_string())]);
        let (kib, _) = peak_rss(&command, false)?;
        eprintln!("   run {}/{}: {}", run + 1, rss_runs(ctx), mib(kib));
        peaks.push(kib);
    }
    Ok(Outcome::Rss(peaks))
}

/// Peak RSS of `pack` of the layout holding the 4 GiB blob; the last archive is kept for the
/// `unpack` row.
pub(super) fn rss_pack(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&[TIME]) {
        return Ok(skip);
    }
    let (layout, _) = rss_layout(ctx)?;
    let archive = ctx.scratch.join("rss.tar");
    let mut peaks = Vec::new();
    for run in 0..rss_runs(ctx) {
        remove(&archive)?;
        let (kib, _) = peak_rss(&ctx.ours([os("pack"), os(&layout), os(&archive)]), false)?;
        eprintln!("   run {}/{}: {}", run + 1, rss_runs(ctx), mib(kib));
        peaks.push(kib);
    }
    if ctx.rss_archive.is_none() {
        let kept = ctx.data.join("rss.tar");
        fs::rename(&archive, &kept).with_context(|| format!("keeping {}", kept.display()))?;
        ctx.rss_archive = Some(kept);
    } else {
        remove(&archive)?;
    }
    Ok(Outcome::Rss(peaks))
}

/// Peak RSS of `unpack` of the archive holding the 4 GiB blob into a new layout.
pub(super) fn rss_unpack(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&[TIME]) {
        return Ok(skip);
    }
    let archive = match ctx.rss_archive.clone() {
        Some(archive) => archive,
        None => {
            let (layout, _) = rss_layout(ctx)?;
            let archive = ctx.data.join("rss.tar");
            eprintln!("   packing {} (untimed)", archive.display());
            run_quiet(ctx.ours([os("pack"), os(&layout), os(&archive)]))?;
            ctx.rss_archive = Some(archive.clone());
            archive
        }
    };
    let target = ctx.scratch.join("rss-unpacked");
    let mut peaks = Vec::new();
    for run in 0..rss_runs(ctx) {
        remove(&target)?;
        let (kib, _) = peak_rss(&ctx.ours([os("unpack"), os(&archive), os(&target)]), false)?;
        eprintln!("   run {}/{}: {}", run + 1, rss_runs(ctx), mib(kib));
        peaks.push(kib);
        remove(&target)?;
    }
    Ok(Outcome::Rss(peaks))
}

/// Peak RSS of `image create --compression zstd` (issue 4's bound: 128 MiB).
pub(super) fn rss_image_zstd(ctx: &mut Ctx) -> Result<Outcome> {
    rss_image(ctx, "zstd")
}

/// Peak RSS of `image create --compression gzip` (issue 4's bound: 128 MiB).
pub(super) fn rss_image_gzip(ctx: &mut Ctx) -> Result<Outcome> {
    rss_image(ctx, "gzip")
}

fn rss_image(ctx: &mut Ctx, compression: &str) -> Result<Outcome> {
    if let Some(skip) = image_skip(ctx).or_else(|| missing(&[TIME])) {
        return Ok(skip);
    }
    let layout = ctx.scratch.join("rss-image");
    let mut peaks = Vec::new();
    // One run: a full tree takes long, and its peak does not wander.
    let command = image_create(ctx, &layout, compression)?;
    let (kib, _) = peak_rss(&command, false)?;
    eprintln!("   {}", mib(kib));
    peaks.push(kib);
    remove(&layout)?;
    Ok(Outcome::Rss(peaks))
}

/// `init` a fresh layout (untimed) and return the `image create` command to time.
fn image_create(ctx: &Ctx, layout: &Path, compression: &str) -> Result<Command> {
    ctx.fresh_layout(layout)?;
    Ok(ctx.ours([
        os("image"),
        os("create"),
        os(layout),
        os("--tag"),
        os(TAG),
        os("--from-dir"),
        os(IMAGE_SOURCE),
        os("--compression"),
        os(compression),
    ]))
}

fn image_skip(ctx: &Ctx) -> Option<Outcome> {
    if !ctx.image_create {
        return Some(Outcome::Skipped(
            "skipped: image create not built yet".to_owned(),
        ));
    }
    if !Path::new(IMAGE_SOURCE).is_dir() {
        return Some(Outcome::Skipped(format!(
            "skipped: {IMAGE_SOURCE} not on this machine"
        )));
    }
    None
}

/// The layout holding the 4 GiB blob: the one `rss-put` kept, else one made now (untimed).
fn rss_layout(ctx: &mut Ctx) -> Result<(PathBuf, Digest)> {
    if let Some(kept) = &ctx.rss_layout {
        return Ok(kept.clone());
    }
    let input = inputs::random_4g(&ctx.data)?;
    let layout = ctx.data.join("rss-layout");
    eprintln!(
        "   storing {} in {} (untimed)",
        input.display(),
        layout.display()
    );
    ctx.fresh_layout(&layout)?;
    let out = output_of(ctx.ours([
        os("--relaxed"),
        os("blob"),
        os("put"),
        os(&layout),
        os(&input),
    ]))?;
    let kept = (layout, parse_digest(&out)?);
    ctx.rss_layout = Some(kept.clone());
    Ok(kept)
}

pub(super) fn rss_runs(ctx: &Ctx) -> usize {
    if ctx.quick { 1 } else { 3 }
}

fn skopeo_copy(from: &str, to: &str) -> Command {
    let mut command = Command::new("skopeo");
    command.args(["--insecure-policy", "copy", "--quiet", from, to]);
    command
}

/// The blobs left in `blobs/sha256` must be exactly the live ones.
fn check_blob_count(layout: &Path, expected: usize) -> Result<()> {
    let dir = layout.join("blobs/sha256");
    let count = fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .count();
    if count != expected {
        bail!(
            "{} holds {count} blobs after gc, not the {expected} live ones",
            dir.display()
        );
    }
    Ok(())
}

fn parse_digest(out: &str) -> Result<Digest> {
    Digest::parse(out.trim()).with_context(|| format!("`blob put` printed {:?}", out.trim()))
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

fn os(value: impl Into<OsString>) -> OsString {
    value.into()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `image unpack` of the three-layer image against `umoci unpack` of the same layout.
pub(super) fn rootfs_umoci(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = rootfs_skip(ctx).or_else(|| missing(&["umoci"])) {
        return Ok(skip);
    }
    let layout = inputs::rootfs_layout(&ctx.data, &ctx.cli)?;
    let ctx = &*ctx;
    let trees = FreshTrees::new(&ctx.scratch.join("rootfs-trees"))?;
    let ours = Side::new(
        "ours",
        || Ok(ours_unpack(ctx, &layout.path, &trees.next("ours"))),
        || Ok(()),
    );
    let reference = Side::new(
        "reference",
        || {
            let mut command = Command::new("umoci");
            command
                .args(["unpack", "--image"])
                .arg(format!("{}:{TAG}", utf8(&layout.path)?))
                .arg(trees.next("umoci"));
            Ok(command)
        },
        || Ok(()),
    );
    let outcome = alternate(ctx.runs, 0, ours, reference);
    trees.remove()?;
    outcome
}

/// `image unpack` of the three-layer image against `tar -xzf` of its three blobs, one after
/// another, into one directory (no digests, no confinement, no whiteouts).
pub(super) fn rootfs_tar(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = rootfs_skip(ctx).or_else(|| missing(&["tar", "sh"])) {
        return Ok(skip);
    }
    let layout = inputs::rootfs_layout(&ctx.data, &ctx.cli)?;
    let ctx = &*ctx;
    let trees = FreshTrees::new(&ctx.scratch.join("rootfs-trees"))?;
    let ours = Side::new(
        "ours",
        || Ok(ours_unpack(ctx, &layout.path, &trees.next("ours"))),
        || Ok(()),
    );
    let reference = Side::new(
        "reference",
        || {
            let dir = trees.next("tar");
            let mut args: Vec<&Path> = vec![&dir];
            args.extend(layout.layers.iter().map(PathBuf::as_path));
            Ok(shell(
                r#"dir="$1"; shift; mkdir "$dir" && for blob; do tar -xzf "$blob" -C "$dir" || exit 1; done"#,
                &args,
            ))
        },
        || Ok(()),
    );
    let outcome = alternate(ctx.runs, 0, ours, reference);
    trees.remove()?;
    outcome
}

/// Peak RSS of `image unpack` of the three-layer image.
pub(super) fn rss_rootfs(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = rootfs_skip(ctx).or_else(|| missing(&[TIME])) {
        return Ok(skip);
    }
    let layout = inputs::rootfs_layout(&ctx.data, &ctx.cli)?;
    let trees = FreshTrees::new(&ctx.scratch.join("rootfs-trees"))?;
    // One run: it takes long, and its peak does not wander.
    let command = ours_unpack(ctx, &layout.path, &trees.next("rss"));
    let (kib, _) = peak_rss(&command, false)?;
    eprintln!("   {}", mib(kib));
    trees.remove()?;
    Ok(Outcome::Rss(vec![kib]))
}

fn ours_unpack(ctx: &Ctx, layout: &Path, target: &Path) -> Command {
    ctx.ours([os("image"), os("unpack"), os(layout), os(TAG), os(target)])
}

/// Where the rootfs rows unpack: a new directory for every run, none removed until the row
/// ends. ext4 without a journal (this machine's root) will not hand out an inode freed within
/// the last `vm.dirty_expire_centisecs` (`recently_deleted`), and checks each candidate in the
/// inode table: creating 50,000 files right after removing the previous run's 50,000 spent
/// most of its time there (perf: 60% of `image unpack`, in `ext4_create`), and made every
/// tool of the row several times slower, whichever ran after a removal. So nothing is removed
/// while a row runs, and a row starts only once the removals before it are that old.
struct FreshTrees {
    root: PathBuf,
    made: std::cell::Cell<usize>,
}

impl FreshTrees {
    fn new(root: &Path) -> Result<FreshTrees> {
        remove(root)?;
        fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let centisecs = fs::read_to_string("/proc/sys/vm/dirty_expire_centisecs")
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(3000);
        let wait = std::time::Duration::from_millis(centisecs * 10 + 2000);
        eprintln!(
            "   waiting {} s for earlier removals to age (untimed)",
            wait.as_secs()
        );
        std::thread::sleep(wait);
        Ok(FreshTrees {
            root: root.to_path_buf(),
            made: std::cell::Cell::new(0),
        })
    }

    /// A path no run has used yet.
    fn next(&self, side: &str) -> PathBuf {
        let n = self.made.get() + 1;
        self.made.set(n);
        self.root.join(format!("{side}-{n}"))
    }

    fn remove(self) -> Result<()> {
        remove(&self.root)
    }
}

fn rootfs_skip(ctx: &Ctx) -> Option<Outcome> {
    if !ctx.image_create {
        return Some(Outcome::Skipped(
            "skipped: image create not built yet".to_owned(),
        ));
    }
    inputs::ROOTFS_SOURCES
        .iter()
        .find(|source| !Path::new(source).is_dir())
        .map(|source| Outcome::Skipped(format!("skipped: {source} not on this machine")))
}

/// `copy oci:L:bench docker-archive:F` of the 1 GiB-layer image (its gzip layer decompressed
/// into the archive as it streams) against skopeo's same copy.
pub(super) fn docker_archive_write(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&["skopeo"]) {
        return Ok(skip);
    }
    let layer = inputs::layer_layout(&ctx.data, &ctx.cli)?;
    warm(&layer.path)?;
    let source = format!("oci:{}:{TAG}", utf8(&layer.path)?);
    copy_against_skopeo(ctx, &source, "docker.tar", |out| {
        Ok(format!("docker-archive:{}:bench:{TAG}", utf8(out)?))
    })
}

/// The docker archive of the 1 GiB-layer image the read rows read, written by our `copy`
/// (untimed; skopeo's holds the same layer file under the same name).
fn docker_archive_input(ctx: &Ctx) -> Result<PathBuf> {
    let layer = inputs::layer_layout(&ctx.data, &ctx.cli)?;
    let archive = ctx.data.join("docker-1g.tar");
    remove(&archive)?;
    eprintln!("   writing {} (untimed)", archive.display());
    run_quiet(ctx.ours([
        os("copy"),
        os(format!("oci:{}:{TAG}", utf8(&layer.path)?)),
        os(format!("docker-archive:{}:bench:{TAG}", utf8(&archive)?)),
    ]))?;
    warm(&archive)?;
    Ok(archive)
}

/// `copy docker-archive:F oci:L` of that archive into a new layout (ours durable, as by
/// default) against skopeo's same copy.
pub(super) fn docker_archive_read(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&["skopeo"]) {
        return Ok(skip);
    }
    let archive = docker_archive_input(ctx)?;
    let source = format!("docker-archive:{}", utf8(&archive)?);
    let outcome = copy_against_skopeo(ctx, &source, "from-docker", |out| {
        Ok(format!("oci:{}:{TAG}", utf8(out)?))
    });
    remove(&archive)?;
    outcome
}

/// Our `copy SOURCE DEST` against `skopeo copy SOURCE DEST`, each into an output of its own
/// in the scratch directory (`ours-NAME`, `skopeo-NAME`) that `destination` names, removed
/// after each run.
fn copy_against_skopeo(
    ctx: &Ctx,
    source: &str,
    name: &str,
    destination: impl Fn(&Path) -> Result<String>,
) -> Result<Outcome> {
    let ours_out = ctx.scratch.join(format!("ours-{name}"));
    let skopeo_out = ctx.scratch.join(format!("skopeo-{name}"));
    let destination = &destination;
    let ours = Side::new(
        "ours",
        || Ok(ctx.ours([os("copy"), os(source), os(destination(&ours_out)?)])),
        || remove(&ours_out),
    );
    let reference = Side::new(
        "reference",
        || Ok(skopeo_copy(source, &destination(&skopeo_out)?)),
        || remove(&skopeo_out),
    );
    alternate(ctx.runs, 0, ours, reference)
}

/// Peak RSS of `copy oci:L:bench docker-archive:F` of the 1 GiB-layer image.
pub(super) fn rss_docker_archive_write(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&[TIME]) {
        return Ok(skip);
    }
    let layer = inputs::layer_layout(&ctx.data, &ctx.cli)?;
    let archive = ctx.scratch.join("rss-docker.tar");
    let mut peaks = Vec::new();
    for run in 0..rss_runs(ctx) {
        remove(&archive)?;
        let command = ctx.ours([
            os("copy"),
            os(format!("oci:{}:{TAG}", utf8(&layer.path)?)),
            os(format!("docker-archive:{}", utf8(&archive)?)),
        ]);
        let (kib, _) = peak_rss(&command, false)?;
        eprintln!("   run {}/{}: {}", run + 1, rss_runs(ctx), mib(kib));
        peaks.push(kib);
    }
    remove(&archive)?;
    Ok(Outcome::Rss(peaks))
}

/// Peak RSS of `copy docker-archive:F oci:L` of that archive into a new layout.
pub(super) fn rss_docker_archive_read(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&[TIME]) {
        return Ok(skip);
    }
    let archive = docker_archive_input(ctx)?;
    let target = ctx.scratch.join("rss-from-docker");
    let mut peaks = Vec::new();
    for run in 0..rss_runs(ctx) {
        remove(&target)?;
        let command = ctx.ours([
            os("copy"),
            os(format!("docker-archive:{}", utf8(&archive)?)),
            os(format!("oci:{}:{TAG}", utf8(&target)?)),
        ]);
        let (kib, _) = peak_rss(&command, false)?;
        eprintln!("   run {}/{}: {}", run + 1, rss_runs(ctx), mib(kib));
        peaks.push(kib);
        remove(&target)?;
    }
    remove(&archive)?;
    Ok(Outcome::Rss(peaks))
}
