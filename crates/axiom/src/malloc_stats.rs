//! What the C allocator holds, for the counters. A leak test compares the process's
//! resident memory less what malloc keeps free for reuse: that free memory is no leak,
//! but it grows with fragmentation and with the most buffers ever alive at once.

/// Bytes malloc has handed out and not had back, and bytes it holds free in its
/// arenas (resident, kept for reuse), over all arenas; (0, 0) where glibc is not
/// the allocator.
pub fn malloc_bytes() -> (u64, u64) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        ((info.uordblks + info.hblkhd) as u64, info.fordblks as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        (0, 0)
    }
}
