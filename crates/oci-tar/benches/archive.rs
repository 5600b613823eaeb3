//! Pack and unpack of a layout holding one 64 MiB blob: to a stream (the tar framing and the
//! verified copy alone), to a synced file (what `oci-layout pack` does), and back into a new
//! directory layout, durable and relaxed.
//!
//! Everything lives under the target directory (`CARGO_TARGET_TMPDIR`), not a tmpfs `/tmp`.
//! `cargo bench -p oci-tar --bench archive`.

use std::fs::File;
use std::hint::black_box;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use oci_core::{Algorithm, Compression, Store, copy_stream, seed};
use oci_dir::{DirLayout, DirOptions, Durability};
use oci_tar::{ExpansionLimit, pack, pack_to_file, unpack};

const SIZE: usize = 64 << 20;

fn archive(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temp dir in target/");
    let source = DirLayout::create_with(
        dir.path().join("source"),
        relaxed(),
        &seed::InitOptions::default(),
    )
    .expect("a new layout");
    let mut writer = source.begin_blob(Algorithm::Sha256).expect("begin_blob");
    copy_stream(&mut pseudo_random(SIZE).as_slice(), &mut writer).expect("write");
    writer.commit(Some(SIZE as u64), None).expect("commit");
    let archive = dir.path().join("layout.tar");
    pack_to_file(&source, &archive, Compression::None).expect("pack");

    let mut group = c.benchmark_group("tar");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(SIZE as u64));

    group.bench_function("pack_to_stream", |b| {
        b.iter(|| {
            let (_, report) = pack(&source, io::sink(), Compression::None, Path::new("-"))
                .expect("pack to a stream");
            black_box(report)
        });
    });
    let packed = dir.path().join("packed.tar");
    group.bench_function("pack_to_file", |b| {
        b.iter(|| black_box(pack_to_file(&source, &packed, Compression::None).expect("pack")));
    });
    for (durability, name) in [
        (Durability::Durable, "unpack_durable"),
        (Durability::Relaxed, "unpack_relaxed"),
    ] {
        let options = DirOptions {
            durability,
            ..DirOptions::default()
        };
        let mut run = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    run += 1;
                    let target = dir.path().join(format!("unpacked-{run}"));
                    let start = Instant::now();
                    let layout =
                        DirLayout::create_with(&target, options, &seed::InitOptions::default())
                            .expect("a new layout");
                    let input = File::open(&archive).expect("the archive");
                    black_box(
                        unpack(
                            input,
                            std::path::Path::new("archive"),
                            &layout,
                            ExpansionLimit::default(),
                        )
                        .expect("unpack"),
                    );
                    total += start.elapsed();
                    std::fs::remove_dir_all(&target).expect("remove the unpacked layout");
                }
                total
            });
        });
    }
    group.finish();
}

fn relaxed() -> DirOptions {
    DirOptions {
        durability: Durability::Relaxed,
        ..DirOptions::default()
    }
}

/// Deterministic bytes that no hasher or filesystem can shortcut (splitmix64).
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

criterion_group!(benches, archive);
criterion_main!(benches);
