//! Hashing throughput per algorithm, from one 4 KiB block (a manifest) to 64 MiB (a layer).
//!
//! `cargo bench -p oci-digest --bench hashing`; `cargo xtask bench` measures the whole
//! commands against their references.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use oci_digest::Algorithm;

const SIZES: [(usize, &str); 4] = [
    (4 << 10, "4KiB"),
    (64 << 10, "64KiB"),
    (1 << 20, "1MiB"),
    (64 << 20, "64MiB"),
];

fn hashing(c: &mut Criterion) {
    let data = pseudo_random(SIZES[SIZES.len() - 1].0);
    let mut group = c.benchmark_group("digest");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (size, label) in SIZES {
        let input = &data[..size];
        group.throughput(Throughput::Bytes(size as u64));
        // A 64 MiB sample takes up to 100 ms: flat sampling keeps that to ten of them.
        group.sampling_mode(if size >= 1 << 20 {
            SamplingMode::Flat
        } else {
            SamplingMode::Auto
        });
        for algorithm in Algorithm::ALL {
            group.bench_with_input(
                BenchmarkId::new(algorithm.name(), label),
                input,
                |b, input| b.iter(|| algorithm.digest(black_box(input))),
            );
        }
    }
    group.finish();
}

/// Deterministic bytes that no hasher can shortcut (splitmix64).
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

criterion_group!(benches, hashing);
criterion_main!(benches);
