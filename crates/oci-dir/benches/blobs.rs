//! Blob writes (durable and relaxed) and verified reads through [`DirLayout`], 64 MiB each.
//!
//! The layouts live under the target directory (`CARGO_TARGET_TMPDIR`), not `/tmp`, which may
//! be a tmpfs where an fsync costs nothing. `cargo bench -p oci-dir --bench blobs`.

use std::hint::black_box;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use oci_core::{Algorithm, ContentKind, Store, copy_stream, seed};
use oci_dir::{DirLayout, DirOptions, Durability};

const SIZE: usize = 64 << 20;
const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Blake3];

fn layout(durability: Durability) -> (tempfile::TempDir, DirLayout) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temp dir in target/");
    let options = DirOptions {
        durability,
        ..DirOptions::default()
    };
    let layout = DirLayout::create_with(
        dir.path().join("layout"),
        options,
        &seed::InitOptions::default(),
    )
    .expect("a new layout");
    (dir, layout)
}

fn write(c: &mut Criterion) {
    let mut data = pseudo_random(SIZE);
    let mut group = c.benchmark_group("dir_blob_write");
    configure(&mut group);
    for (durability, name) in [
        (Durability::Durable, "durable"),
        (Durability::Relaxed, "relaxed"),
    ] {
        let (_dir, layout) = layout(durability);
        for algorithm in ALGORITHMS {
            let mut generation = 0u64;
            group.bench_function(BenchmarkId::new(name, algorithm.name()), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // New content each time: an existing blob is not rewritten.
                        generation += 1;
                        data[..8].copy_from_slice(&generation.to_le_bytes());
                        let start = Instant::now();
                        let mut writer = layout.begin_blob(algorithm).expect("begin_blob");
                        copy_stream(&mut data.as_slice(), &mut writer).expect("write");
                        let digest = writer.commit(Some(SIZE as u64), None).expect("commit");
                        total += start.elapsed();
                        seed::delete_blob(&layout, digest).expect("delete the blob");
                    }
                    total
                });
            });
        }
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let data = pseudo_random(SIZE);
    let (_dir, layout) = layout(Durability::Relaxed);
    let mut group = c.benchmark_group("dir_blob_read_verified");
    configure(&mut group);
    for algorithm in ALGORITHMS {
        let mut writer = layout.begin_blob(algorithm).expect("begin_blob");
        writer.write_all(&data).expect("write");
        let digest = writer.commit(Some(SIZE as u64), None).expect("commit");
        group.bench_function(algorithm.name(), |b| {
            b.iter(|| {
                let mut reader = layout
                    .fetch(ContentKind::Blob, digest, Some(SIZE as u64))
                    .expect("fetch");
                black_box(copy_stream(&mut reader, &mut io::sink()).expect("a verified read"))
            });
        });
    }
    group.finish();
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(SIZE as u64));
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

criterion_group!(benches, write, read);
criterion_main!(benches);
