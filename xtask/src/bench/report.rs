//! The report: machine facts, the tables, and the generated block of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{Measured, Outcome, Row, Target};

const BEGIN: &str = "<!-- cargo xtask bench: begin";
const BEGIN_LINE: &str =
    "<!-- cargo xtask bench: begin (generated: edit xtask/src/bench, not this block) -->";
const END: &str = "<!-- cargo xtask bench: end -->";

/// What the numbers were measured on.
pub struct Machine {
    nproc: usize,
    cpu: String,
    memory: String,
    kernel: String,
    date: String,
    commit: String,
    load_before: String,
    pub load_after: String,
    tools: Vec<(&'static str, String)>,
}

impl Machine {
    pub fn probe() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or_else(
                || "unknown".to_owned(),
                |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
            );
        // The report itself is about to change: that is not a change to what was measured.
        let dirty = first_line(
            "git",
            &[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ":/",
                ":(top,exclude)docs/benchmarks.md",
            ],
        );
        let commit = format!(
            "{}{}",
            first_line("git", &["rev-parse", "--short", "HEAD"]),
            if dirty.is_empty() {
                ""
            } else {
                " (with uncommitted changes in the work tree)"
            }
        );
        let tools = [
            ("openssl", &["version"][..]),
            ("skopeo", &["--version"][..]),
            ("umoci", &["--version"][..]),
            ("zstd", &["--version"][..]),
            ("tar", &["--version"][..]),
            ("rustc", &["--version"][..]),
        ]
        .into_iter()
        .map(|(tool, args)| {
            let version = first_line(tool, args);
            let version = if version.is_empty() {
                "not installed".to_owned()
            } else {
                version.trim_matches('*').trim().to_owned()
            };
            (tool, version)
        })
        .collect();
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, usize::from),
            cpu,
            memory,
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned()),
            date: first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            commit,
            load_before: load_average(),
            load_after: String::new(),
            tools,
        }
    }

    /// Whether the 1-minute load at the start says other work shared the machine.
    fn busy(&self) -> bool {
        let one_minute: f64 = self
            .load_before
            .split_whitespace()
            .next()
            .and_then(|load| load.parse().ok())
            .unwrap_or(0.0);
        one_minute > self.nproc as f64 / 2.0
    }
}

/// The 1, 5 and 15-minute load averages.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The first line a command prints (stdout, else stderr), or "" when it cannot run.
fn first_line(program: &str, args: &[&str]) -> String {
    let Ok(output) = Command::new(program).args(args).output() else {
        return String::new();
    };
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// How the run went, for the report's header.
pub struct Run {
    pub quick: bool,
    pub boost: bool,
    pub runs: usize,
    pub tag_runs: usize,
    pub only: Vec<String>,
    pub elapsed: Duration,
    pub machine: Machine,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.is_empty() {
        f64::NAN
    } else if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// `Some(true)` pass, `Some(false)` miss, `None` when there is no verdict.
fn verdict(target: Target, outcome: &Outcome) -> Option<bool> {
    match (target, outcome) {
        (Target::AtMost(x), Outcome::Timed { ours, reference }) => {
            Some(median(ours) / median(reference) <= x)
        }
        (Target::FasterBy(x), Outcome::Timed { ours, reference }) => {
            Some(median(reference) / median(ours) >= x)
        }
        (Target::RssMib(mib), Outcome::Rss(kib)) => {
            Some(kib.iter().copied().max().unwrap_or(u64::MAX) <= mib * 1024)
        }
        (Target::SentKib(kib), Outcome::Sent(bytes)) => {
            Some(bytes.iter().copied().max().unwrap_or(u64::MAX) <= kib * 1024)
        }
        _ => None,
    }
}

fn result_cell(row: &Row, outcome: &Outcome) -> String {
    match (outcome, verdict(row.target, outcome)) {
        (Outcome::Skipped(why), _) => why.clone(),
        (Outcome::Failed(why), _) => format!("failed: {}", cell(why)),
        (_, Some(true)) => "pass".to_owned(),
        (_, Some(false)) => "**miss**".to_owned(),
        (_, None) => "no verdict".to_owned(),
    }
}

/// Text fit for one table cell: no pipes, no newlines, not too long.
fn cell(text: &str) -> String {
    let flat = text.replace('|', "\\|").replace('\n', " ");
    if flat.chars().count() > 300 {
        format!("{}…", flat.chars().take(300).collect::<String>())
    } else {
        flat
    }
}

fn ratio_cell(outcome: &Outcome, target: Target) -> String {
    let Outcome::Timed { ours, reference } = outcome else {
        return "—".to_owned();
    };
    let ratio = median(ours) / median(reference);
    match target {
        Target::FasterBy(_) if ratio < 1.0 => format!("{ratio:.2}x ({:.1}x faster)", 1.0 / ratio),
        Target::FasterBy(_) => format!("{ratio:.2}x (slower)"),
        _ => format!("{ratio:.2}x"),
    }
}

/// One line of progress for a finished row.
pub fn summary(row: &Row, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Timed { ours, reference } => format!(
            "ours {:.3} s, reference {:.3} s, ratio {} (target {}): {}",
            median(ours),
            median(reference),
            ratio_cell(outcome, row.target),
            row.target.shown(),
            result_cell(row, outcome)
        ),
        Outcome::Rss(kib) => format!(
            "peak RSS {:.1} MiB (target {}): {}",
            kib.iter().copied().max().unwrap_or_default() as f64 / 1024.0,
            row.target.shown(),
            result_cell(row, outcome)
        ),
        Outcome::Sent(_) => format!(
            "{} (target {}): {}",
            measured_cell(outcome),
            row.target.shown(),
            result_cell(row, outcome)
        ),
        Outcome::Skipped(_) | Outcome::Failed(_) => result_cell(row, outcome),
    }
}

/// The highest run of a row measured in units other than time.
fn measured_cell(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Rss(kib) => format!(
            "{:.1} MiB",
            kib.iter().copied().max().unwrap_or_default() as f64 / 1024.0
        ),
        Outcome::Sent(bytes) => format!(
            "{:.1} KiB sent",
            bytes.iter().copied().max().unwrap_or_default() as f64 / 1024.0
        ),
        _ => "—".to_owned(),
    }
}

/// The two tables: timed rows against their references, and peak RSS.
pub fn table(results: &[Measured]) -> String {
    let mut out = String::new();
    let (rss, timed): (Vec<&Measured>, Vec<&Measured>) = results
        .iter()
        .partition(|m| matches!(m.row.target, Target::RssMib(_) | Target::SentKib(_)));
    if !timed.is_empty() {
        out.push_str(
            "| operation | ours (median s) | reference | reference (median s) | ratio ours/ref | target | result |\n\
             |---|---:|---|---:|---:|---|---|\n",
        );
        for m in timed {
            let (ours, reference) = match &m.outcome {
                Outcome::Timed { ours, reference } => (
                    format!("{:.3}", median(ours)),
                    format!("{:.3}", median(reference)),
                ),
                _ => ("—".to_owned(), "—".to_owned()),
            };
            let _ = writeln!(
                out,
                "| {} | {ours} | {} | {reference} | {} | {} | {} |",
                cell(m.row.operation),
                cell(m.row.reference),
                ratio_cell(&m.outcome, m.row.target),
                m.row.target.shown(),
                result_cell(m.row, &m.outcome)
            );
        }
    }
    if !rss.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(
            "| operation | measured (highest run) | target | result |\n|---|---:|---|---|\n",
        );
        for m in rss {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(m.row.operation),
                measured_cell(&m.outcome),
                m.row.target.shown(),
                result_cell(m.row, &m.outcome)
            );
        }
    }
    out
}

pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    format!("{} min {:02} s", secs / 60, secs % 60)
}

/// The generated block, markers included.
pub fn render(run: &Run, results: &[Measured]) -> String {
    let machine = &run.machine;
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN_LINE}");
    let _ = writeln!(
        out,
        "## The performance targets (issues 6, 13, 14, 15, 16): ours against the references, side by side\n"
    );
    if run.quick {
        let _ = writeln!(
            out,
            "> **Quick, noisy run** ({}): `cargo xtask bench --quick`, {} runs a side ({} for \
             `tag`), one per peak-RSS row. A smoke test of the harness, not the numbers to \
             judge the targets by: run `cargo xtask bench` for those.\n",
            machine.date, run.runs, run.tag_runs
        );
    } else {
        let _ = writeln!(
            out,
            "Full run ({}): `cargo xtask bench`, {} runs a side ({} for `tag`), medians; peak \
             RSS is the highest of 3 runs.\n",
            machine.date, run.runs, run.tag_runs
        );
    }
    if run.boost {
        let _ = writeln!(
            out,
            "Run with `--boost`: the run's session had scheduling priority over the other \
             sessions on the machine (both sides alike).\n"
        );
    }
    if !run.only.is_empty() {
        let _ = writeln!(out, "Only the rows `{}`.\n", run.only.join("`, `"));
    }
    if machine.busy() {
        let _ = writeln!(
            out,
            "The machine was busy: load average {} at the start ({} at the end) on {} cores, so \
             these numbers are noisy.\n",
            machine.load_before, machine.load_after, machine.nproc
        );
    }
    out.push_str(&table(results));

    out.push_str("\n### Every run\n\nSeconds, in the order taken (ours and the reference alternate); peak RSS in MiB.\n\n");
    for m in results {
        let line = match &m.outcome {
            Outcome::Timed { ours, reference } => {
                format!("ours {}; reference {}", seconds(ours), seconds(reference))
            }
            Outcome::Rss(kib) => kib
                .iter()
                .map(|k| format!("{:.1}", *k as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", "),
            Outcome::Sent(bytes) => bytes
                .iter()
                .map(|b| format!("{b} bytes sent"))
                .collect::<Vec<_>>()
                .join(", "),
            Outcome::Skipped(why) => why.clone(),
            Outcome::Failed(why) => format!("failed: {}", cell(why)),
        };
        let _ = writeln!(out, "- `{}`: {line}", m.row.id);
    }

    let _ = writeln!(out, "\n### Machine\n");
    let _ = writeln!(out, "- CPU: {} (`nproc`: {})", machine.cpu, machine.nproc);
    let _ = writeln!(out, "- memory: {}", machine.memory);
    let _ = writeln!(out, "- kernel: {}", machine.kernel);
    let _ = writeln!(out, "- date: {}", machine.date);
    let _ = writeln!(out, "- commit: {}", machine.commit);
    let _ = writeln!(
        out,
        "- load average (1, 5, 15 min): {} at the start, {} at the end",
        machine.load_before, machine.load_after
    );
    let _ = writeln!(out, "- the run took {}", duration(run.elapsed));
    for (tool, version) in &machine.tools {
        let _ = writeln!(out, "- {tool}: {version}");
    }

    out.push_str(METHOD);
    let _ = writeln!(out, "{END}");
    out
}

fn seconds(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const METHOD: &str = "
### How it is measured

- Ours is `target/release/oci-layout`, built by the run; writes are durable (the default)
  unless a row says otherwise. Wall time is that of the process (`Instant` around `Command`),
  ratios are of medians (ours / reference).
- Each row runs ours, then the reference, then ours again, and so on: a change in machine load
  hits both sides. Setup and cleanup (a fresh `oci-layout init`, a copy of the input layout,
  removing outputs) are outside the timed span, and an untimed `sync` follows the setup, so
  no run pays for writing back what setup or an earlier run left dirty. Inputs are read once
  before a row starts, so they are page-cached.
- Inputs (`target/bench-data`, kept between runs; deterministic bytes from the blake3 XOF):
  a 1 GiB random file; a layout holding it as a blob; a real image whose one layer is a tar of
  that file, gzip-framed (random data does not compress; stored deflate blocks are still gzip,
  and the config's `diff_id` is right), tagged `bench`; a layout of 10,000 blobs: 1,000 tagged
  images (manifest, config, five layers and one of 100 shared base layers) and 3,000 layers
  nothing refers to; an index of 10,000 entries (`t00000` ...) over one small image.
  Every generated layout passes `oci-layout fsck` before it is used.
- `blob put`: a fresh layout per run (an existing blob is not rewritten). The `cp` reference
  syncs the copy with `sync DEST` (an fsync of that file, as ours fsyncs its blob) rather than
  a bare `sync`, which would also flush whatever other processes left dirty; the copy is
  deleted between runs.
- `pack` / `unpack`: skopeo runs with `--insecure-policy`; both sides unpack the same archive
  (made by our `pack`, untimed) into a new directory.
- `gc`: each run on a fresh `cp -a` copy of the 10,000-blob layout; ours with `--grace 0s`
  (the copies are new). After each run both must have left exactly the 7,000 live blobs.
- `tag`: ours into the 10,000-entry layout, `umoci tag --image L:t00000 bench` into a copy of
  it (made once, untimed); one untimed round first adds the entry, which every timed run
  then replaces. Both replace the index file (on this machine's `discard` mount the freed
  blocks of the old one wait for a trim; both pay it), and ours fsyncs it.
- `image create`: into a fresh layout per run; `umoci insert` into a fresh copy of an empty
  image made by `umoci init` + `umoci new`.
- Peak RSS: `/usr/bin/time -f %M` around the CLI on a 4 GiB random file, generated for these
  rows and deleted after them.

### Reproduce

```sh
cargo xtask bench                    # every row: about 15 minutes on 2 cores
cargo xtask bench --quick            # 3 runs a side: a smoke test
cargo xtask bench --only gc,tag      # some rows (prefixes work: put, image, rss); the report
                                     # goes to target/bench-data/benchmarks.md, not here
cargo xtask bench --boost            # as root on a shared machine: this session's autogroup at
                                     # nice -20 for the run (sched_autogroup ignores plain nice)
```

Missing references (openssl, skopeo, umoci, zstd, tar) make their row say `skipped`;
`apt-get install -y openssl skopeo umoci zstd tar time` brings them all.
";

/// Writes `block` to `path`. When `merge`, the rest of an existing file is kept: the block
/// replaces an earlier one, or goes under the file's title.
pub fn write(path: &Path, block: &str, merge: bool) -> Result<()> {
    let existing = if merge {
        fs::read_to_string(path).ok()
    } else {
        None
    };
    let text = match existing {
        Some(old) => match (old.find(BEGIN), old.find(END)) {
            (Some(begin), Some(end)) if end > begin => {
                let rest = &old[end + END.len()..];
                let rest = rest.strip_prefix('\n').unwrap_or(rest);
                format!("{}{block}{rest}", &old[..begin])
            }
            _ => match old.split_once('\n') {
                Some((title, rest)) if title.starts_with("# ") => {
                    format!("{title}\n\n{block}\n{}", rest.trim_start())
                }
                _ => format!("# Benchmarks\n\n{block}\n{old}"),
            },
        },
        None => format!("# Benchmarks\n\n{block}"),
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
