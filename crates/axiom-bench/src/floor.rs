//! The memcpy floor: what copying the damaged bytes once costs on this machine,
//! measured in the same run as everything else.

use std::time::Instant;

/// Bytes per second of `copy_from_slice` on a buffer of `len` bytes (best of several rounds).
pub fn memcpy_bandwidth(len: usize) -> f64 {
    let src = vec![0x5au8; len];
    let mut dst = vec![0u8; len];
    let mut best = f64::MAX;
    for _ in 0..20 {
        let start = Instant::now();
        dst.copy_from_slice(&src);
        std::hint::black_box(&mut dst);
        best = best.min(start.elapsed().as_secs_f64());
    }
    len as f64 / best
}
