//! Running the binary, building layouts in temporary directories, reading the shared corpus.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_oci-layout");

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// One finished run of the binary.
pub struct Run {
    pub args: Vec<OsString>,
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// The command line as a readable string, for failure messages.
pub fn show(args: &[OsString]) -> String {
    args.iter()
        .map(|a| format!("{:?}", a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `Command` for the binary with `args`; stdin is empty unless the caller changes it, and
/// `SOURCE_DATE_EPOCH` is unset whatever the environment of the test run (tests that want it
/// use [`run_env`]).
pub fn command(args: &[OsString]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs the binary with an empty stdin.
pub fn run(args: Vec<OsString>) -> Run {
    let output = command(&args).output().expect("cannot start oci-layout");
    finish(args, &output)
}

/// Runs the binary with `env` set on top of the test's environment.
pub fn run_env(args: Vec<OsString>, env: &[(&str, &str)]) -> Run {
    let output = command(&args)
        .envs(env.iter().copied())
        .output()
        .expect("cannot start oci-layout");
    finish(args, &output)
}

/// Runs the binary in `dir` (for relative paths).
pub fn run_in(dir: &Path, args: Vec<OsString>) -> Run {
    let output = command(&args)
        .current_dir(dir)
        .output()
        .expect("cannot start oci-layout");
    finish(args, &output)
}

/// Runs the binary with `input` on stdin. The binary may exit without reading it all (an
/// argument it refuses), so a failed write is not an error here.
pub fn run_stdin(args: Vec<OsString>, input: &[u8]) -> Run {
    let mut child = command(&args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("cannot start oci-layout");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    finish(args, &output)
}

/// Waits for a spawned child (see [`command`]) and checks it like [`run`] does.
pub fn wait(args: Vec<OsString>, child: Child) -> Run {
    let output = child.wait_with_output().unwrap();
    finish(args, &output)
}

/// Every run goes through here: no input may make the binary panic or die by a signal.
pub fn finish(args: Vec<OsString>, output: &Output) -> Run {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "`oci-layout {}` panicked:\n{stderr}",
        show(&args)
    );
    let code = output.status.code().unwrap_or_else(|| {
        panic!(
            "`oci-layout {}` was killed: {}\n{stderr}",
            show(&args),
            output.status
        )
    });
    Run {
        args,
        code,
        stdout: output.stdout.clone(),
        stderr,
    }
}

impl Run {
    fn context(&self) -> String {
        format!(
            "`oci-layout {}` exited {}\n--- stdout\n{}\n--- stderr\n{}",
            show(&self.args),
            self.code,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }

    /// Exit 0 and nothing on stderr.
    pub fn success(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {}", self.context());
        assert!(
            self.stderr.is_empty(),
            "success with output on stderr: {}",
            self.context()
        );
        self
    }

    /// Exit 0, and only `warning: ` lines on stderr.
    pub fn success_with_warnings(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {}", self.context());
        assert!(
            self.stderr
                .lines()
                .all(|line| line.starts_with("warning: ")),
            "success with something other than warnings on stderr: {}",
            self.context()
        );
        self
    }

    /// Exit 1 with exactly one line on stderr, starting with `error: `.
    pub fn failure(self) -> Run {
        assert_eq!(self.code, 1, "expected exit 1: {}", self.context());
        assert_one_error_line(&self.stderr, &self.context());
        self
    }

    /// Exit 1, one error line, which contains every one of `needles`.
    pub fn failure_naming(self, needles: &[&str]) -> Run {
        let run = self.failure();
        for needle in needles {
            assert!(
                run.stderr.contains(needle),
                "the error does not name {needle:?}: {}",
                run.context()
            );
        }
        run
    }

    /// Exit 2 (usage) from our own parsing: one error line, naming every one of `needles`.
    pub fn usage_error_naming(self, needles: &[&str]) -> Run {
        assert_eq!(self.code, 2, "expected a usage error: {}", self.context());
        assert_one_error_line(&self.stderr, &self.context());
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "the error does not name {needle:?}: {}",
                self.context()
            );
        }
        self
    }

    /// Exit 2 (usage), the message starting with `error: ` (clap adds a usage hint below it).
    pub fn usage_error(self) -> Run {
        assert_eq!(self.code, 2, "expected a usage error: {}", self.context());
        assert!(
            self.stderr.starts_with("error: "),
            "a usage error must start with `error: `: {}",
            self.context()
        );
        self
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8(self.stdout.clone())
            .unwrap_or_else(|_| panic!("stdout is not UTF-8: {}", self.context()))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.context()))
    }

    /// The one printed line (a digest), without its newline.
    pub fn line(&self) -> String {
        let out = self.stdout_str();
        let line = out
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("stdout does not end in a newline: {}", self.context()));
        assert!(
            !line.contains('\n'),
            "expected one line: {}",
            self.context()
        );
        line.to_owned()
    }
}

/// Exactly one line, `error: ` first, saying each cause once.
pub fn assert_one_error_line(stderr: &str, context: &str) {
    assert!(
        stderr.starts_with("error: "),
        "stderr must start with `error: `: {context}"
    );
    assert!(
        stderr.ends_with('\n') && stderr.matches('\n').count() == 1,
        "stderr must be exactly one line: {context}"
    );
    assert_causes_said_once(stderr, context);
}

/// The CLI prints an error and its causes joined with `: `; an error whose message also
/// says its cause would show that cause twice in a row.
fn assert_causes_said_once(line: &str, context: &str) {
    let mut said = std::collections::BTreeSet::new();
    for part in line.trim_end().split(": ").filter(|part| part.len() >= 8) {
        assert!(said.insert(part), "{part:?} is said twice: {context}");
    }
}

/// The first `n` characters of `s` as `{:?}` prints them (how errors quote their inputs).
pub fn quoted_prefix(s: &str, n: usize) -> String {
    s.escape_debug().take(n).collect()
}

// ---------------------------------------------------------------------------------------------
// Layouts
// ---------------------------------------------------------------------------------------------

/// A layout made by `oci-layout init` in a fresh temporary directory, with room beside it.
pub struct Layout {
    tmp: TempDir,
    pub dir: PathBuf,
}

/// An image manifest stored in a [`Layout`].
pub struct Image {
    pub digest: String,
    pub bytes: Vec<u8>,
    pub config: String,
}

impl Layout {
    pub fn new() -> Layout {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout");
        run(args!["init", dir]).success();
        Layout { tmp, dir }
    }

    /// An existing directory (copied from the corpus, made by another tool) in a temporary
    /// directory of its own.
    pub fn copy_of(src: &Path) -> Layout {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout");
        copy_dir(src, &dir);
        Layout { tmp, dir }
    }

    /// A scratch directory beside the layout (created on first use).
    pub fn scratch(&self) -> PathBuf {
        let dir = self.tmp.path().join("scratch");
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The temporary directory holding the layout and the scratch directory.
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// `blob put` from stdin with extra arguments; returns the printed digest.
    pub fn put_with(&self, bytes: &[u8], extra: &[&str]) -> String {
        let mut a = args!["blob", "put", self.dir];
        a.extend(extra.iter().map(OsString::from));
        run_stdin(a, bytes).success().line()
    }

    /// `blob put` from stdin; returns the printed digest.
    pub fn put(&self, bytes: &[u8]) -> String {
        self.put_with(bytes, &[])
    }

    /// Stores `value` as compact JSON; returns its descriptor as `blob put --json` prints it.
    pub fn put_json(&self, value: &Value, media_type: &str) -> (Value, Vec<u8>) {
        let bytes = serde_json::to_vec(value).unwrap();
        let run = run_stdin(
            args![
                "blob",
                "put",
                self.dir,
                "--json",
                "--media-type",
                media_type
            ],
            &bytes,
        )
        .success();
        (run.json(), bytes)
    }

    /// Stores a config, one small layer and a manifest referring to them (not tagged).
    pub fn image_with(
        &self,
        config: &Value,
        config_type: &str,
        manifest_type: Option<&str>,
    ) -> Image {
        let (config_desc, _) = self.put_json(config, config_type);
        let layer = format!("layer of {config}");
        let layer_digest = self.put(layer.as_bytes());
        let mut manifest = json!({
            "schemaVersion": 2,
            "config": config_desc,
            "layers": [{
                "mediaType": OCI_LAYER_GZIP,
                "digest": layer_digest,
                "size": layer.len(),
            }],
        });
        if let Some(media_type) = manifest_type {
            manifest["mediaType"] = json!(media_type);
        }
        let (desc, bytes) = self.put_json(&manifest, manifest_type.unwrap_or(OCI_MANIFEST));
        Image {
            digest: desc["digest"].as_str().unwrap().to_owned(),
            bytes,
            config: config_desc["digest"].as_str().unwrap().to_owned(),
        }
    }

    /// An OCI image for `architecture`/`os`, distinct per `tag_line`.
    pub fn image(&self, architecture: &str, os: &str, tag_line: &str) -> Image {
        let config = json!({
            "architecture": architecture,
            "os": os,
            "rootfs": { "type": "layers", "diff_ids": [] },
            "config": { "Labels": { "test": tag_line } },
        });
        self.image_with(&config, OCI_CONFIG, Some(OCI_MANIFEST))
    }

    pub fn tag(&self, digest: &str, reference: &str) {
        run(args!["tag", self.dir, digest, reference]).success();
    }

    pub fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    pub fn index_bytes(&self) -> Vec<u8> {
        fs::read(self.index_path()).unwrap()
    }

    pub fn index(&self) -> Value {
        serde_json::from_slice(&self.index_bytes()).unwrap_or_else(|e| {
            panic!(
                "index.json does not parse ({e}):\n{}",
                String::from_utf8_lossy(&self.index_bytes())
            )
        })
    }

    /// `ls --json`.
    pub fn ls(&self) -> Vec<Value> {
        match run(args!["ls", self.dir, "--json"]).success().json() {
            Value::Array(entries) => entries,
            other => panic!("ls --json printed {other}, not an array"),
        }
    }

    /// The `ls --json` entries named `reference`.
    pub fn entries_named(&self, reference: &str) -> Vec<Value> {
        self.ls()
            .into_iter()
            .filter(|e| e["ref"] == json!(reference))
            .collect()
    }

    /// `blob ls --json`.
    pub fn blobs(&self) -> Vec<Value> {
        match run(args!["blob", "ls", self.dir, "--json"])
            .success()
            .json()
        {
            Value::Array(entries) => entries,
            other => panic!("blob ls --json printed {other}, not an array"),
        }
    }

    /// Where a blob is stored.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (algorithm, encoded) = digest.split_once(':').unwrap();
        self.dir.join("blobs").join(algorithm).join(encoded)
    }

    /// Every path under the layout with its content (`None` for directories).
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        snapshot(&self.dir)
    }
}

/// Every path under `root` (relative) with its content; `None` for a directory.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(relative, None);
                walk(root, &path, out);
            } else {
                out.insert(relative, Some(fs::read(&path).unwrap_or_default()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Every non-directory under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    snapshot(dir)
        .into_iter()
        .filter(|(_, content)| content.is_some())
        .map(|(path, _)| path)
        .collect()
}

/// Names in a directory.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Copies a tree of directories and regular files. Directories get default (writable) modes,
/// so the copy of a read-only corpus can be changed and cleaned up.
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
            let mut perms = fs::metadata(&target).unwrap().permissions();
            perms.set_mode(perms.mode() | 0o200);
            fs::set_permissions(&target, perms).unwrap();
        }
    }
}

/// The permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Flips one bit of the byte at `offset` (from the end when negative).
pub fn flip_byte(path: &Path, offset: i64) {
    let mut bytes = fs::read(path).unwrap();
    let index = if offset < 0 {
        bytes.len() - offset.unsigned_abs() as usize
    } else {
        offset as usize
    };
    bytes[index] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

/// Deterministic, incompressible-looking test data.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The shared corpus and external tools
// ---------------------------------------------------------------------------------------------

/// `shared/conformance`, beside the workspace. Missing is a failure, never a skip.
pub fn corpus() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    assert!(
        path.join("README.md").is_file(),
        "the shared conformance corpus is missing: expected it at {} \
         (a copy of `shared/conformance` beside the workspace root); these tests do not skip",
        path.display()
    );
    path
}

/// The `cases` of a vector file in `shared/conformance/vectors`.
pub fn vectors(name: &str) -> Vec<Value> {
    let path = corpus().join("vectors").join(name);
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read conformance vectors {}: {e}", path.display()));
    let file: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    match &file["cases"] {
        Value::Array(cases) if !cases.is_empty() => cases.clone(),
        _ => panic!("{} has no cases", path.display()),
    }
}

/// The executable `tool` on `PATH`, if any.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether every tool in `tools` is on `PATH`. When one is not, says so on stderr (so the skip
/// of the test `test`, named with its module, is visible) and returns false, or fails when
/// `OCI_LAYOUT_REQUIRE_INTEROP` is set.
pub fn have(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "SKIPPED {test}: {} not on PATH (install skopeo and umoci to run it)",
        missing.join(", ")
    );
    assert!(
        std::env::var_os("OCI_LAYOUT_REQUIRE_INTEROP").is_none(),
        "{message}, and OCI_LAYOUT_REQUIRE_INTEROP is set"
    );
    eprintln!("{message}");
    // libtest captures `eprintln!` of passing tests; the raw handle is not captured, so the
    // skip shows in a plain `cargo test` run too.
    let _ = writeln!(std::io::stderr().lock(), "{message}");
    false
}

/// Runs an external tool; a failure to start or a non-zero exit fails the test.
pub fn tool(program: &str, args: &[&OsStr]) -> Vec<u8> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}\n{}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The digest of `path` computed by coreutils (`sha256sum`, `sha512sum`) or `b3sum`, when that
/// tool is installed.
pub fn external_digest(algorithm: &str, path: &Path) -> Option<String> {
    let program = match algorithm {
        "sha256" => "sha256sum",
        "sha512" => "sha512sum",
        "blake3" => "b3sum",
        other => panic!("no external tool for {other}"),
    };
    which(program)?;
    let out = String::from_utf8(tool(program, &[path.as_os_str()])).unwrap();
    let hex = out.split_whitespace().next().unwrap();
    Some(format!("{algorithm}:{hex}"))
}

// ---------------------------------------------------------------------------------------------
// Special files, small filesystems, hand-made archives
// ---------------------------------------------------------------------------------------------

/// A character device node at `path` (root only): `1 3` is `/dev/null`, `1 7` `/dev/full`.
/// A private copy, so that a test that fails cannot break the machine's own.
pub fn char_device(path: &Path, major: u32, minor: u32) {
    tool(
        "mknod",
        &[
            path.as_os_str(),
            OsStr::new("c"),
            OsStr::new(&major.to_string()),
            OsStr::new(&minor.to_string()),
        ],
    );
}

/// Whether `path` (not followed) is a character device.
pub fn is_char_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

/// A tmpfs of `bytes` mounted on a fresh directory, unmounted on drop. `None` (and a visible
/// SKIP line) where mounting is not permitted.
pub struct SmallFs {
    _tmp: TempDir,
    pub dir: PathBuf,
}

impl SmallFs {
    pub fn mount(bytes: u64, why: &str) -> Option<SmallFs> {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("small");
        fs::create_dir(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            println!("SKIP {why}: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(SmallFs { _tmp: tmp, dir })
    }

    /// Bytes in use on it.
    pub fn used(&self) -> u64 {
        let out = tool(
            "df",
            &[
                OsStr::new("-B1"),
                OsStr::new("--output=used"),
                self.dir.as_os_str(),
            ],
        );
        String::from_utf8(out)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A GNU tar header for a regular file `name` claiming `size` bytes (base-256 past 8 GiB, as
/// GNU tar writes it).
pub fn tar_header(name: &str, size: u64) -> [u8; 512] {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    if size < 8 << 30 {
        header[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        header[124] = 0x80;
        header[128..136].copy_from_slice(&size.to_be_bytes());
    }
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = b'0';
    header[257..265].copy_from_slice(b"ustar  \0");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    header
}

/// A zstd frame made by hand: `head` as a raw block, then `zeros` zero bytes as RLE blocks of
/// 128 KiB (4 bytes each: 32768:1), with no content size in the header.
pub fn zstd_rle_frame(head: &[u8], zeros: u64) -> Vec<u8> {
    const BLOCK: u64 = 128 << 10;
    fn block_header(out: &mut Vec<u8>, last: bool, kind: u32, size: u64) {
        let value = u32::from(last) | kind << 1 | (size as u32) << 3;
        out.extend_from_slice(&value.to_le_bytes()[..3]);
    }
    assert!(head.len() as u64 <= BLOCK);
    // Magic; frame header: no content size, no checksum, not single-segment; window 128 KiB.
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3];
    block_header(&mut frame, zeros == 0, 0, head.len() as u64);
    frame.extend_from_slice(head);
    let mut left = zeros;
    while left > 0 {
        let size = left.min(BLOCK);
        left -= size;
        block_header(&mut frame, left == 0, 1, size);
        frame.push(0);
    }
    frame
}
