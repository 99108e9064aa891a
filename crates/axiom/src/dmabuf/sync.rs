//! Implicit synchronisation with a real dma-buf's writers. A commit that
//! attaches a dma-buf whose writes are still pending is held (not applied)
//! until they finish, watched in the event loop: the surface keeps showing
//! its previous buffer, and neither the compositor nor any other client
//! waits. As a backstop, before the renderer reads a buffer it exports the
//! fence of every write still pending as a sync file
//! (DMA_BUF_IOCTL_EXPORT_SYNC_FILE): the GPU waits on it where the driver
//! imports sync files as semaphores, the CPU (bounded) otherwise. Memfds and
//! other non-dma-buf fds have no fences and answer ENOTTY.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smithay::reexports::calloop::Interest;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::Resource;
use smithay::wayland::compositor::{self, BufferAssignment, CompositorHandler, SurfaceAttributes};
use smithay::wayland::dmabuf::get_dmabuf;

use crate::Axiom;

/// How long a frame waits for a client's GPU at most; past it the buffer is
/// read anyway, so that one slow client cannot stall every other.
pub const WRITER_WAIT_LIMIT: Duration = Duration::from_millis(100);

#[repr(C)]
struct DmaBufExportSyncFile {
    flags: u32,
    fd: i32,
}

const DMA_BUF_SYNC_READ: u32 = 1;
/// _IOWR('b', 2, struct dma_buf_export_sync_file)
const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: libc::c_ulong = 0xC008_6202;

/// The writes still pending on one dma-buf fd.
#[derive(Debug)]
pub enum Writers {
    /// Not a dma-buf (a memfd, say): nothing to wait for.
    NotDmabuf,
    /// Every write has finished.
    Done,
    /// A sync file that signals when the writes pending now have finished.
    Pending(OwnedFd),
}

/// Exports the fence of the writes pending on `fd` (DMA_BUF_IOCTL_EXPORT_SYNC_FILE).
pub fn pending_writers(fd: BorrowedFd<'_>) -> Writers {
    let mut request = DmaBufExportSyncFile { flags: DMA_BUF_SYNC_READ, fd: -1 };
    // SAFETY: the ioctl reads and writes the struct we pass, nothing else.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &mut request) };
    if rc != 0 || request.fd < 0 {
        // ENOTTY: not a dma-buf; EINVAL/ENOSYS: a kernel without sync-file export (< 5.20).
        return Writers::NotDmabuf;
    }
    // SAFETY: on success the kernel gave us a new sync-file fd, which we now own.
    let sync_file = unsafe { OwnedFd::from_raw_fd(request.fd) };
    if signalled_within(&sync_file, Duration::ZERO) {
        Writers::Done
    } else {
        Writers::Pending(sync_file)
    }
}

/// Whether `sync_file` signals within `limit`.
pub fn signalled_within(sync_file: &OwnedFd, limit: Duration) -> bool {
    let mut fds = [rustix::event::PollFd::new(sync_file, rustix::event::PollFlags::IN)];
    let timeout = rustix::event::Timespec::try_from(limit).ok();
    matches!(rustix::event::poll(&mut fds, timeout.as_ref()), Ok(n) if n > 0)
}

/// Per surface: a commit of it is held for its buffer's writers. One at a time: later
/// commits queue behind it anyway, and the backstop covers their own fences.
#[derive(Default)]
struct CommitHeld(Arc<AtomicBool>);

/// Holds the commit being made on `surface` while the dma-buf it attaches has writes
/// pending; the event loop applies it once they finish. Call from a pre-commit hook.
pub fn hold_commit_for_writers(state: &mut Axiom, surface: &WlSurface) {
    // An acquire point (explicit sync) stands for the buffer's writes instead.
    if crate::handlers::drm_syncobj::has_acquire_point(surface) {
        return;
    }
    let (dmabuf, held) = compositor::with_states(surface, |states| {
        let mut attributes = states.cached_state.get::<SurfaceAttributes>();
        let dmabuf = match attributes.pending().buffer.as_ref() {
            Some(BufferAssignment::NewBuffer(buffer)) => get_dmabuf(buffer).ok().cloned(),
            _ => None,
        };
        states.data_map.insert_if_missing_threadsafe(CommitHeld::default);
        let held = states.data_map.get::<CommitHeld>().map(|h| h.0.clone());
        (dmabuf, held)
    });
    let (Some(dmabuf), Some(held), Some(client)) = (dmabuf, held, surface.client()) else { return };
    if held.load(Ordering::Acquire) {
        return;
    }
    // AlreadyReady (every write done, or no fence at all): nothing to hold.
    let Ok((blocker, source)) = dmabuf.generate_blocker(Interest::READ) else { return };
    let released = held.clone();
    let inserted = state.loop_handle.insert_source(source, move |_, _, state| {
        released.store(false, Ordering::Release);
        let dh = state.display_handle.clone();
        state.client_compositor_state(&client).blocker_cleared(state, &dh);
        Ok(())
    });
    if inserted.is_ok() {
        held.store(true, Ordering::Release);
        compositor::add_blocker(surface, blocker);
        state.dmabuf_state.stats.held_commits += 1;
        tracing::debug!("DMA-BUF: commit held until the buffer's writers finish");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn memfds_and_pipes_have_nothing_to_wait_for() {
        let memfd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::empty()).unwrap();
        assert!(matches!(pending_writers(memfd.as_fd()), Writers::NotDmabuf));
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert!(matches!(pending_writers(r.as_fd()), Writers::NotDmabuf));
    }
}
