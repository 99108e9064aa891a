//! Micro-benchmarks of the CPU import step: the damaged rows of a 1080p
//! XRGB8888 plane copied into an upload staging buffer (what wgpu's
//! write_texture does with them), read through a fresh or a kept read-only
//! mapping (sealed memfd, as for real dma-bufs) or through pread (unsealed
//! memfd), against a plain memcpy of the same bytes.

use std::os::fd::AsFd;

use axiom::dmabuf::cpu::{read_rows, Mapping, RowSpan};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rustix::fs::{fcntl_add_seals, memfd_create, MemfdFlags, SealFlags};

const WIDTH: u64 = 1920;
const HEIGHT: u64 = 1080;
const STRIDE: u64 = WIDTH * 4;

fn memfd(sealed: bool) -> std::os::fd::OwnedFd {
    let fd = memfd_create("bench", MemfdFlags::ALLOW_SEALING).expect("memfd");
    rustix::fs::ftruncate(&fd, STRIDE * HEIGHT).expect("ftruncate");
    if sealed {
        fcntl_add_seals(&fd, SealFlags::SHRINK).expect("seal");
    }
    fd
}

fn reads(c: &mut Criterion) {
    for (label, rows) in [("full frame", HEIGHT), ("10% rows", HEIGHT / 10)] {
        let span = RowSpan { offset: 0, stride: STRIDE, row_bytes: WIDTH * 4, first: 0, count: rows };
        let mut group = c.benchmark_group(format!("1080p XRGB8888 CPU read, {label}"));
        group.throughput(Throughput::Bytes(STRIDE * rows));
        let mut staging = vec![0u8; (STRIDE * rows) as usize];
        let sealed = memfd(true);
        group.bench_function("fresh mmap + DMA_BUF_IOCTL_SYNC (sealed memfd)", |b| {
            b.iter(|| {
                read_rows(sealed.as_fd(), None, span, |_, bytes| {
                    staging[..bytes.len()].copy_from_slice(bytes);
                    true
                })
                .expect("read")
            })
        });
        let mapping = Mapping::new(sealed.as_fd(), (0, STRIDE * HEIGHT)).expect("a sealed memfd maps");
        group.bench_function("kept mapping + DMA_BUF_IOCTL_SYNC (sealed memfd)", |b| {
            b.iter(|| {
                read_rows(sealed.as_fd(), Some(&mapping), span, |_, bytes| {
                    staging[..bytes.len()].copy_from_slice(bytes);
                    true
                })
                .expect("read")
            })
        });
        let unsealed = memfd(false);
        group.bench_function("pread (unsealed memfd)", |b| {
            b.iter(|| {
                read_rows(unsealed.as_fd(), None, span, |_, bytes| {
                    staging[..bytes.len()].copy_from_slice(bytes);
                    true
                })
                .expect("read")
            })
        });
        black_box(&staging);
        let src = vec![1u8; (STRIDE * rows) as usize];
        let mut dst = vec![0u8; src.len()];
        group.bench_function("memcpy floor", |b| {
            b.iter(|| {
                dst.copy_from_slice(&src);
                black_box(&dst);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, reads);
criterion_main!(benches);
