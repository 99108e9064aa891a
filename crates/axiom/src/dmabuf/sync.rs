//! Implicit synchronisation with a real dma-buf's writers: before the
//! renderer reads a buffer, wait (bounded) for the fence of every pending
//! write, exported as a sync file (DMA_BUF_IOCTL_EXPORT_SYNC_FILE). Memfds
//! and other non-dma-buf fds have no fences and answer ENOTTY.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// How long a frame waits for a client's GPU at most; past it the buffer is
/// read anyway, so that one slow client cannot stall every other.
pub const WRITER_WAIT_LIMIT: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterWait {
    /// Not a dma-buf (a memfd, say): nothing to wait for.
    NotDmabuf,
    /// Every pending write had finished (or has now).
    Ready,
    /// Writes were still pending after the limit.
    TimedOut,
}

#[repr(C)]
struct DmaBufExportSyncFile {
    flags: u32,
    fd: i32,
}

const DMA_BUF_SYNC_READ: u32 = 1;
/// _IOWR('b', 2, struct dma_buf_export_sync_file)
const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: libc::c_ulong = 0xC008_6202;

/// Waits until the writes pending on `fd` are done, at most `limit`.
pub fn wait_for_writers(fd: BorrowedFd<'_>, limit: Duration) -> WriterWait {
    let mut request = DmaBufExportSyncFile { flags: DMA_BUF_SYNC_READ, fd: -1 };
    // SAFETY: the ioctl reads and writes the struct we pass, nothing else.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &mut request) };
    if rc != 0 || request.fd < 0 {
        // ENOTTY: not a dma-buf; EINVAL/ENOSYS: a kernel without sync-file export (< 5.20).
        return WriterWait::NotDmabuf;
    }
    // SAFETY: on success the kernel gave us a new sync-file fd, which we now own.
    let sync_file = unsafe { OwnedFd::from_raw_fd(request.fd) };
    let mut fds = [rustix::event::PollFd::new(&sync_file, rustix::event::PollFlags::IN)];
    let timeout = rustix::event::Timespec::try_from(limit).ok();
    match rustix::event::poll(&mut fds, timeout.as_ref()) {
        Ok(n) if n > 0 => WriterWait::Ready,
        _ => WriterWait::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn memfds_and_pipes_have_nothing_to_wait_for() {
        let memfd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::empty()).unwrap();
        assert_eq!(wait_for_writers(memfd.as_fd(), WRITER_WAIT_LIMIT), WriterWait::NotDmabuf);
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert_eq!(wait_for_writers(r.as_fd(), WRITER_WAIT_LIMIT), WriterWait::NotDmabuf);
    }
}
