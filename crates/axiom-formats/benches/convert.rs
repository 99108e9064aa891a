//! Micro-benchmarks of the reference converters and encoders (used by tests and
//! the benchmark client; the compositor converts on the GPU).

use axiom_formats::convert::{rgb_to_yuv, yuv_to_rgb, YuvMatrix, YuvRange};
use axiom_formats::encode::{block_pattern, encode, Options};
use axiom_formats::fourcc;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn converters(c: &mut Criterion) {
    let mut group = c.benchmark_group("reference converters");
    group.throughput(Throughput::Elements(256));
    group.bench_function("rgb_to_yuv BT.709 limited 10-bit, 256 pixels", |b| {
        b.iter(|| {
            for v in 0..=255u8 {
                black_box(rgb_to_yuv(black_box([v, 255 - v, v / 2]), YuvMatrix::Bt709, YuvRange::Limited, 10));
            }
        })
    });
    group.bench_function("yuv_to_rgb BT.601 limited 8-bit, 256 pixels", |b| {
        b.iter(|| {
            for v in 0..=255u16 {
                black_box(yuv_to_rgb(black_box(v), 128, 255 - v, YuvMatrix::Bt601, YuvRange::Limited, 8));
            }
        })
    });
    group.finish();

    let image = block_pattern(1280, 720);
    let mut group = c.benchmark_group("encode 720p");
    group.throughput(Throughput::Elements(1280 * 720));
    group.sample_size(10);
    for (name, code) in [("XRGB8888", fourcc::XRGB8888), ("NV12", fourcc::NV12), ("P010", fourcc::P010)] {
        group.bench_function(name, |b| b.iter(|| black_box(encode(code, &image, Options::default()))));
    }
    group.finish();
}

criterion_group!(benches, converters);
criterion_main!(benches);
