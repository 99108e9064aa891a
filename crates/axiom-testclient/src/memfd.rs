//! Anonymous shared memory for client buffers.

use std::os::fd::{AsFd, OwnedFd};

use anyhow::Context;
use rustix::fs::{ftruncate, MemfdFlags};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

/// A memfd mapped read-write into this process.
pub struct SharedMemory {
    fd: OwnedFd,
    ptr: *mut u8,
    len: usize,
}

impl SharedMemory {
    pub fn new(len: usize) -> anyhow::Result<Self> {
        let fd = rustix::fs::memfd_create("axiom-testclient", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .context("memfd_create")?;
        ftruncate(&fd, len as u64).context("ftruncate")?;
        // SAFETY: a fresh shared mapping of a file we own; unmapped in Drop.
        let ptr = unsafe {
            mmap(std::ptr::null_mut(), len.max(1), ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &fd, 0)
        }
        .context("mmap")?;
        Ok(Self { fd, ptr: ptr.cast(), len })
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes and lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self gives exclusive access on our side.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Shrinks (or grows) the file under the mapping, as a hostile client would.
    pub fn truncate(&self, len: usize) -> anyhow::Result<()> {
        ftruncate(&self.fd, len as u64).context("ftruncate")
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: ptr/len come from our own mmap.
        unsafe {
            let _ = munmap(self.ptr.cast(), self.len.max(1));
        }
    }
}

// SAFETY: the mapping is plain shared memory; access goes through &/&mut self.
unsafe impl Send for SharedMemory {}
