//! The registry rows (issue 14): `copy` to and from Debian's `docker-registry` on loopback,
//! side by side with `skopeo copy` of the same image to the same registry.
//!
//! One registry serves every row of a run, started on a free port with its storage under
//! scratch and no blob-descriptor cache (so a wiped storage is really empty), and killed when
//! the run ends. What would let a side skip work is cleared before each push, for both sides
//! alike: the registry's storage, our record of where blobs were pushed (`XDG_CACHE_HOME`
//! points into scratch), and skopeo's blob-info cache, through which it would mount blobs it
//! pushed before instead of sending them.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use std::{fs, thread};

use anyhow::{Context, Result, bail};

use super::{Ctx, Outcome, Side, TAG, TIME, alternate, missing, peak_rss, remove, warm};

/// skopeo's blob-info cache when run as root (`~/.local/share/containers/cache` otherwise).
const SKOPEO_CACHE: &str = "/var/lib/containers/cache";

/// A `docker-registry` process, killed on drop.
pub struct BenchRegistry {
    process: Child,
    /// `127.0.0.1:PORT`.
    host: String,
    storage: PathBuf,
}

impl BenchRegistry {
    fn start(dir: &Path) -> Result<BenchRegistry> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let port = free_port()?;
        let host = format!("127.0.0.1:{port}");
        let storage = dir.join("storage");
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {host}\n",
                storage.display()
            ),
        )
        .with_context(|| format!("writing {}", config.display()))?;
        let log = fs::File::create(dir.join("registry.log"))?;
        let process = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry")?;
        let registry = BenchRegistry {
            process,
            host,
            storage,
        };
        registry.wait_until_serving()?;
        Ok(registry)
    }

    fn wait_until_serving(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut stream) = TcpStream::connect(&self.host) {
                let _ = stream.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not answer on {} within 15 s",
                    self.host
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Forgets every repository and blob (no cache is configured, so nothing is remembered).
    fn wipe(&self) -> Result<()> {
        remove(&self.storage)
    }
}

impl Drop for BenchRegistry {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// The run's registry, started by the first row that needs it.
fn ensure_registry(ctx: &mut Ctx) -> Result<()> {
    if ctx.registry.is_none() {
        eprintln!("   starting docker-registry (untimed)");
        ctx.registry = Some(BenchRegistry::start(&ctx.data.join("registry"))?);
    }
    Ok(())
}

/// `oci-layout copy FROM TO`, its record of pushed blobs kept in `cache`.
fn our_copy(ctx: &Ctx, cache: &Path, from: &str, to: &str) -> Command {
    let mut command = ctx.ours(["copy", from, to]);
    command.env("XDG_CACHE_HOME", cache);
    command
}

fn skopeo_copy(from: &str, to: &str) -> Command {
    let mut command = Command::new("skopeo");
    command.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        from,
        to,
    ]);
    command
}

fn oci(layout: &Path) -> Result<String> {
    Ok(format!(
        "oci:{}:{TAG}",
        layout.to_str().context("bench-data path is not UTF-8")?
    ))
}

/// Which image a push or pull row moves.
#[derive(Clone, Copy)]
enum Image {
    OneGib,
    ManyLayers,
}

impl Image {
    fn layout(self, ctx: &Ctx) -> Result<PathBuf> {
        let path = match self {
            Image::OneGib => super::inputs::layer_layout(&ctx.data, &ctx.cli)?.path,
            Image::ManyLayers => super::inputs::many_layers_layout(&ctx.data, &ctx.cli)?.path,
        };
        warm(&path)?;
        Ok(path)
    }
}

fn skip_without_tools() -> Option<Outcome> {
    missing(&["docker-registry", "skopeo"])
}

/// Push to an empty registry: ours against skopeo.
fn push(ctx: &mut Ctx, image: Image) -> Result<Outcome> {
    if let Some(skip) = skip_without_tools() {
        return Ok(skip);
    }
    let layout = oci(&image.layout(ctx)?)?;
    ensure_registry(ctx)?;
    let ctx = &*ctx;
    let registry = ctx.registry.as_ref().context("the registry is running")?;
    let cache = ctx.scratch.join("cache");
    let host = registry.host.clone();
    let ours = first_push(ctx, registry, &cache, &layout, &host);
    let reference = Side::new(
        "reference",
        || {
            registry.wipe()?;
            remove(Path::new(SKOPEO_CACHE))?;
            Ok(skopeo_copy(
                &layout,
                &format!("docker://{host}/skopeo:{TAG}"),
            ))
        },
        || Ok(()),
    );
    alternate(ctx.runs, 0, ours, reference)
}

pub(super) fn push_1g(ctx: &mut Ctx) -> Result<Outcome> {
    push(ctx, Image::OneGib)
}

pub(super) fn push_64(ctx: &mut Ctx) -> Result<Outcome> {
    push(ctx, Image::ManyLayers)
}

/// Our push of the 1 GiB layer against the registry's own floor: one monolithic `curl -T`
/// upload of the layer blob (a POST for the upload URL, then the PUT with the digest).
pub(super) fn push_floor(ctx: &mut Ctx) -> Result<Outcome> {
    floor(ctx, Image::OneGib)
}

/// The same for the 64 layers: every blob of the layout by `curl -T`, as many at once as our
/// `copy` pushes by default. On two cores the registry's hashing and file work is most of
/// either side's time, so this says how much of the ratio to skopeo any client can reach.
pub(super) fn push_64_floor(ctx: &mut Ctx) -> Result<Outcome> {
    floor(ctx, Image::ManyLayers)
}

fn floor(ctx: &mut Ctx, image: Image) -> Result<Outcome> {
    if let Some(skip) = missing(&["docker-registry", "curl", "xargs"]) {
        return Ok(skip);
    }
    let layout_path = image.layout(ctx)?;
    let layout = oci(&layout_path)?;
    let blobs = match image {
        Image::OneGib => vec![largest_blob(&layout_path)?],
        Image::ManyLayers => every_blob(&layout_path)?,
    };
    let list = ctx.scratch.join("floor-blobs");
    let lines: String = blobs
        .iter()
        .map(|(path, digest)| format!("{} {digest}\n", path.display()))
        .collect();
    fs::write(&list, lines).with_context(|| format!("writing {}", list.display()))?;
    ensure_registry(ctx)?;
    let ctx = &*ctx;
    let registry = ctx.registry.as_ref().context("the registry is running")?;
    let cache = ctx.scratch.join("cache");
    let host = registry.host.clone();
    let ours = first_push(ctx, registry, &cache, &layout, &host);
    let floor = Side::new(
        "reference",
        || {
            registry.wipe()?;
            let mut command = Command::new("xargs");
            command
                .args(["-P", PARALLEL_UPLOADS, "-L", "1", "-a"])
                .arg(&list)
                .args(["bash", "-c", FLOOR_UPLOAD, "bash", &host]);
            Ok(command)
        },
        || Ok(()),
    );
    alternate(ctx.runs, 0, ours, floor)
}

/// How many blobs `copy` sends at once by default (its `-j`).
const PARALLEL_UPLOADS: &str = "4";

/// `bash -c FLOOR_UPLOAD bash HOST FILE DIGEST`: the monolithic upload of the distribution
/// spec, by curl.
const FLOOR_UPLOAD: &str = r#"set -eo pipefail
location=$(curl -fsS -o /dev/null -D - -X POST "http://$1/v2/floor/blobs/uploads/" \
    | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
case $location in http*) ;; *) location="http://$1$location" ;; esac
case $location in *\?*) separator='&' ;; *) separator='?' ;; esac
curl -fsS -o /dev/null -H 'Content-Type: application/octet-stream' -T "$2" \
    "$location${separator}digest=$3""#;

/// Every blob of a layout, and its digest.
fn every_blob(layout: &Path) -> Result<Vec<(PathBuf, String)>> {
    let dir = layout.join("blobs/sha256");
    let mut blobs = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        blobs.push((entry.path(), format!("sha256:{name}")));
    }
    Ok(blobs)
}

/// The biggest blob of a layout (the layer), and its digest.
fn largest_blob(layout: &Path) -> Result<(PathBuf, String)> {
    let dir = layout.join("blobs/sha256");
    let mut best: Option<(u64, PathBuf, String)> = None;
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let size = entry.metadata()?.len();
        if best.as_ref().is_none_or(|(biggest, _, _)| size > *biggest) {
            let name = entry.file_name().to_string_lossy().into_owned();
            best = Some((size, entry.path(), format!("sha256:{name}")));
        }
    }
    let (_, path, digest) = best.with_context(|| format!("{} holds no blob", dir.display()))?;
    Ok((path, digest))
}

/// Our push of `layout` to an emptied registry, with no record of earlier pushes.
fn first_push<'a>(
    ctx: &'a Ctx,
    registry: &'a BenchRegistry,
    cache: &'a Path,
    layout: &'a str,
    host: &'a str,
) -> Side<'a> {
    Side::new(
        "ours",
        move || {
            registry.wipe()?;
            remove(cache)?;
            Ok(our_copy(
                ctx,
                cache,
                layout,
                &format!("docker://{host}/ours:{TAG}"),
            ))
        },
        || Ok(()),
    )
}

/// Pull into a new layout (ours durable, as by default): ours against skopeo.
fn pull(ctx: &mut Ctx, image: Image) -> Result<Outcome> {
    if let Some(skip) = skip_without_tools() {
        return Ok(skip);
    }
    let layout = oci(&image.layout(ctx)?)?;
    ensure_registry(ctx)?;
    let ctx = &*ctx;
    let registry = ctx.registry.as_ref().context("the registry is running")?;
    let cache = ctx.scratch.join("cache");
    let source = format!("docker://{}/pulled:{TAG}", registry.host);
    eprintln!("   pushing the image to pull (untimed)");
    registry.wipe()?;
    super::run_quiet(our_copy(ctx, &cache, &layout, &source))?;
    let ours_out = ctx.scratch.join("ours-pulled");
    let skopeo_out = ctx.scratch.join("skopeo-pulled");
    let ours_dest = oci(&ours_out)?;
    let skopeo_dest = oci(&skopeo_out)?;
    let ours = Side::new(
        "ours",
        || Ok(our_copy(ctx, &cache, &source, &ours_dest)),
        || remove(&ours_out),
    );
    let reference = Side::new(
        "reference",
        || {
            remove(Path::new(SKOPEO_CACHE))?;
            Ok(skopeo_copy(&source, &skopeo_dest))
        },
        || remove(&skopeo_out),
    );
    alternate(ctx.runs, 0, ours, reference)
}

pub(super) fn pull_1g(ctx: &mut Ctx) -> Result<Outcome> {
    pull(ctx, Image::OneGib)
}

pub(super) fn pull_64(ctx: &mut Ctx) -> Result<Outcome> {
    pull(ctx, Image::ManyLayers)
}

/// Push again to a repository that has every blob, against our first push to an empty
/// registry: the blobs the registry has must not even be read.
pub(super) fn repush(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&["docker-registry"]) {
        return Ok(skip);
    }
    let layout = oci(&Image::OneGib.layout(ctx)?)?;
    ensure_registry(ctx)?;
    let ctx = &*ctx;
    let registry = ctx.registry.as_ref().context("the registry is running")?;
    let cache = ctx.scratch.join("cache");
    let destination = format!("docker://{}/again:{TAG}", registry.host);
    eprintln!("   first push (untimed)");
    registry.wipe()?;
    remove(&cache)?;
    super::run_quiet(our_copy(ctx, &cache, &layout, &destination))?;
    let again = Side::new(
        "ours",
        || Ok(our_copy(ctx, &cache, &layout, &destination)),
        || Ok(()),
    );
    // The first push leaves the registry holding everything, for the next `again`.
    let first = Side::new(
        "reference",
        || {
            registry.wipe()?;
            remove(&cache)?;
            Ok(our_copy(ctx, &cache, &layout, &destination))
        },
        || Ok(()),
    );
    alternate(ctx.runs, 0, again, first)
}

/// Bytes sent to the registry by a push of the 1 GiB image to a second repository, after a
/// push to a first one: counted by a proxy between the CLI and the registry (request bytes
/// of every connection, headers included), not taken from our own report.
pub(super) fn mount(ctx: &mut Ctx) -> Result<Outcome> {
    if let Some(skip) = missing(&["docker-registry"]) {
        return Ok(skip);
    }
    let layout = oci(&Image::OneGib.layout(ctx)?)?;
    ensure_registry(ctx)?;
    let ctx = &*ctx;
    let registry = ctx.registry.as_ref().context("the registry is running")?;
    let cache = ctx.scratch.join("cache");
    // Both pushes go through the proxy: to the client it is the registry (the record of
    // where blobs went is kept per registry host).
    let proxy = CountingProxy::start(&registry.host)?;
    let mut sent = Vec::new();
    for run in 0..super::rows::rss_runs(ctx) {
        registry.wipe()?;
        remove(&cache)?;
        super::run_quiet(our_copy(
            ctx,
            &cache,
            &layout,
            &format!("docker://{}/first:{TAG}", proxy.host),
        ))?;
        proxy.reset();
        super::run_quiet(our_copy(
            ctx,
            &cache,
            &layout,
            &format!("docker://{}/second:{TAG}", proxy.host),
        ))?;
        let bytes = proxy.sent();
        eprintln!(
            "   run {}/{}: {bytes} bytes sent",
            run + 1,
            super::rows::rss_runs(ctx)
        );
        sent.push(bytes);
    }
    Ok(Outcome::Sent(sent))
}

/// Peak RSS of our push or pull of an image.
fn rss(ctx: &mut Ctx, image: Image, pull: bool) -> Result<Outcome> {
    if let Some(skip) = missing(&["docker-registry", TIME]) {
        return Ok(skip);
    }
    let layout = oci(&image.layout(ctx)?)?;
    ensure_registry(ctx)?;
    let ctx = &*ctx;
    let registry = ctx.registry.as_ref().context("the registry is running")?;
    let cache = ctx.scratch.join("cache");
    let remote = format!("docker://{}/rss:{TAG}", registry.host);
    let pulled = ctx.scratch.join("rss-pulled");
    let pulled_name = oci(&pulled)?;
    if pull {
        registry.wipe()?;
        super::run_quiet(our_copy(ctx, &cache, &layout, &remote))?;
    }
    let mut peaks = Vec::new();
    for run in 0..super::rows::rss_runs(ctx) {
        let command = if pull {
            remove(&pulled)?;
            our_copy(ctx, &cache, &remote, &pulled_name)
        } else {
            registry.wipe()?;
            remove(&cache)?;
            our_copy(ctx, &cache, &layout, &remote)
        };
        let (kib, _) = peak_rss(&command, false)?;
        eprintln!(
            "   run {}/{}: {:.1} MiB",
            run + 1,
            super::rows::rss_runs(ctx),
            kib as f64 / 1024.0
        );
        peaks.push(kib);
    }
    remove(&pulled)?;
    Ok(Outcome::Rss(peaks))
}

pub(super) fn rss_push_1g(ctx: &mut Ctx) -> Result<Outcome> {
    rss(ctx, Image::OneGib, false)
}

pub(super) fn rss_pull_1g(ctx: &mut Ctx) -> Result<Outcome> {
    rss(ctx, Image::OneGib, true)
}

pub(super) fn rss_push_64(ctx: &mut Ctx) -> Result<Outcome> {
    rss(ctx, Image::ManyLayers, false)
}

pub(super) fn rss_pull_64(ctx: &mut Ctx) -> Result<Outcome> {
    rss(ctx, Image::ManyLayers, true)
}

/// A TCP proxy on loopback that counts the bytes clients send through it.
struct CountingProxy {
    host: String,
    sent: Arc<AtomicU64>,
}

impl CountingProxy {
    fn start(upstream: &str) -> Result<CountingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the counting proxy")?;
        let host = listener.local_addr()?.to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        let upstream = upstream.to_owned();
        // Accepts until the process ends; a bench run is one process.
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let counter = Arc::clone(&counter);
                thread::spawn(move || relay(client, server, &counter));
            }
        });
        Ok(CountingProxy { host, sent })
    }

    fn reset(&self) {
        self.sent.store(0, Ordering::SeqCst);
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

/// Copies both ways until either side closes; counts what the client sends.
fn relay(client: TcpStream, server: TcpStream, sent: &AtomicU64) {
    let (Ok(mut client_reader), Ok(mut server_writer)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    thread::scope(|scope| {
        scope.spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match client_reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        sent.fetch_add(n as u64, Ordering::SeqCst);
                        if server_writer.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = server_writer.shutdown(Shutdown::Write);
        });
        let (mut server_reader, mut client_writer) = (server, client);
        let _ = std::io::copy(&mut server_reader, &mut client_writer);
        let _ = client_writer.shutdown(Shutdown::Both);
    });
}
