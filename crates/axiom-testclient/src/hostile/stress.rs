//! Load a compositor must absorb without growing: buffers made and dropped by
//! the thousand by clients that come and go, and a client that floods commits
//! while never reading its socket (so it never sees a release or a frame).

use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use super::requests::Globals;
use super::requests::{memfd, DRM_XRGB8888, XRGB8888};
use super::wire::{Arg, WireClient};

/// Which kind of buffer a churning client makes. Sealed memfds take the paths that
/// read the client's memory in place (host pointers for shm, the Vulkan steps for
/// dma-bufs) or keep it mapped (the CPU path); unsealed ones are copied or `pread`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferKind {
    /// A fresh memfd, wl_shm_pool and wl_buffer per cycle.
    Shm,
    /// As `Shm`, the memfd sealed against shrinking.
    SealedShm,
    /// A fresh memfd imported through linux-dmabuf per cycle.
    Dmabuf,
    /// As `Dmabuf`, the memfd sealed against shrinking.
    SealedDmabuf,
    /// A real dma-buf of a sealed memfd's pages through /dev/udmabuf (the VM
    /// rig's kernel): the Vulkan image step, or the CPU step's mapping.
    Udmabuf,
}

impl BufferKind {
    /// The kinds every machine can make.
    pub const ALL: [BufferKind; 4] = [Self::Shm, Self::SealedShm, Self::Dmabuf, Self::SealedDmabuf];

    fn is_dmabuf(self) -> bool {
        matches!(self, Self::Dmabuf | Self::SealedDmabuf | Self::Udmabuf)
    }

    fn is_sealed(self) -> bool {
        matches!(self, Self::SealedShm | Self::SealedDmabuf | Self::Udmabuf)
    }
}

const SIZE: i32 = 32;

/// One client's life: connect, map a window, then `cycles` times create a
/// buffer, attach it with damage, commit, and destroy the buffer it replaced
/// (the one the compositor may still be sampling); then disconnect. Every
/// eighth cycle waits for a frame, so that the compositor really reads many
/// of the buffers.
pub fn churn(socket: &Path, kind: BufferKind, cycles: usize) -> anyhow::Result<()> {
    let mut c = WireClient::connect(socket)?;
    let g = c.bind_common()?;
    let dmabuf = if kind.is_dmabuf() { Some(c.bind("zwp_linux_dmabuf_v1", 3)?) } else { None };
    let (surface, _, _) = c.configured_toplevel(&g)?;
    let mut previous: Option<(u32, Option<u32>)> = None;
    for cycle in 0..cycles {
        let (buffer, pool) = new_buffer(&mut c, &g, dmabuf, kind)?;
        c.attach(surface, buffer, 0, 0)?;
        c.damage_buffer(surface, 0, 0, SIZE, SIZE)?;
        let frame = (cycle % 8 == 7).then(|| c.frame(surface)).transpose()?;
        c.commit(surface)?;
        if let Some((old_buffer, old_pool)) = previous.replace((buffer, pool)) {
            c.destroy(old_buffer)?;
            if let Some(old_pool) = old_pool {
                c.destroy_pool(old_pool)?;
            }
        }
        if let Some(frame) = frame {
            c.wait_event(frame, 0)?;
            c.events.clear();
        }
    }
    c.roundtrip()?;
    Ok(())
}

/// A buffer of `kind`, with its pool for shm, over a fresh memfd (closed here:
/// the compositor holds its own copy of the fd).
fn new_buffer(
    c: &mut WireClient,
    g: &Globals,
    dmabuf: Option<u32>,
    kind: BufferKind,
) -> anyhow::Result<(u32, Option<u32>)> {
    let bytes = SIZE * SIZE * 4;
    let fd = memfd(bytes as u64)?;
    if kind.is_sealed() {
        rustix::fs::fcntl_add_seals(&fd, rustix::fs::SealFlags::SHRINK)?;
    }
    let fd = if kind == BufferKind::Udmabuf { crate::dmabuf::udmabuf(fd.as_fd(), bytes as u64)? } else { fd };
    Ok(match dmabuf {
        Some(dmabuf) => (c.dmabuf_buffer(dmabuf, &fd, SIZE, SIZE, (SIZE * 4) as u32, DRM_XRGB8888)?, None),
        None => {
            let pool = c.create_pool(g, &fd, bytes)?;
            (c.create_buffer(pool, 0, SIZE, SIZE, SIZE * 4, XRGB8888)?, Some(pool))
        }
    })
}

/// A client that leaves in the middle of a frame: it maps a window, then attaches a
/// buffer of `kind`, asks for a frame callback and presentation feedback, commits,
/// and disconnects `linger` later without reading anything, so that the compositor
/// finds it gone before, while or after it imports and draws that buffer.
pub fn leave_mid_frame(socket: &Path, kind: BufferKind, linger: Duration) -> anyhow::Result<()> {
    let mut c = WireClient::connect(socket)?;
    let g = c.bind_common()?;
    let dmabuf = if kind.is_dmabuf() { Some(c.bind("zwp_linux_dmabuf_v1", 3)?) } else { None };
    let presentation = c.bind("wp_presentation", 1)?;
    let (surface, _, _) = c.configured_toplevel(&g)?;
    let (buffer, _) = new_buffer(&mut c, &g, dmabuf, kind)?;
    c.attach(surface, buffer, 0, 0)?;
    c.damage_buffer(surface, 0, 0, SIZE, SIZE)?;
    c.frame(surface)?;
    let feedback = c.new_id();
    c.send(presentation, 1, &[Arg::Uint(surface), Arg::Uint(feedback)])?;
    c.commit(surface)?;
    std::thread::sleep(linger);
    Ok(())
}

/// What a flood achieved.
#[derive(Debug, Clone, Copy)]
pub struct Flood {
    pub commits: usize,
    pub elapsed: Duration,
    /// Whether the server cut the connection (it may, for a client that
    /// leaves its events unread).
    pub cut_off: bool,
}

impl Flood {
    pub fn per_second(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How a flooding client treats the events it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Never reads its socket: no release and no frame callback is ever seen.
    Never,
    /// Reads and ignores them now and then, so that it can go on for long.
    Drains,
}

/// Commits `count` new buffers (each with a frame callback and damage) as fast
/// as the socket takes them, destroying the one before, without ever waiting
/// for a release or a frame.
pub fn flood(socket: &Path, count: usize, reading: Reading) -> anyhow::Result<Flood> {
    let mut c = WireClient::connect(socket)?;
    let g = c.bind_common()?;
    let (surface, _, _) = c.configured_toplevel(&g)?;
    // One pool; each buffer is a fresh wl_buffer over it.
    let bytes = SIZE * SIZE * 4;
    let fd = memfd(bytes as u64)?;
    let pool = c.create_pool(&g, &fd, bytes)?;
    let start = Instant::now();
    let mut commits = 0;
    let mut previous = None;
    let sent = (|| -> anyhow::Result<()> {
        while commits < count {
            let buffer = c.create_buffer(pool, 0, SIZE, SIZE, SIZE * 4, XRGB8888)?;
            c.attach(surface, buffer, 0, 0)?;
            c.damage_buffer(surface, 0, 0, SIZE, SIZE)?;
            c.frame(surface)?;
            c.commit(surface)?;
            commits += 1;
            if let Some(old) = previous.replace(buffer) {
                c.destroy(old)?;
            }
            if reading == Reading::Drains && commits % 64 == 0 {
                c.drain()?;
            }
        }
        Ok(())
    })();
    Ok(Flood { commits, elapsed: start.elapsed(), cut_off: sent.is_err() })
}
