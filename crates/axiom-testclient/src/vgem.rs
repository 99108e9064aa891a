//! Buffers of the kernel's vgem driver (the VM rig has it): real dma-bufs to
//! which a test can attach a write fence that signals when it says, as a
//! client's GPU would still be rendering into them.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::Context;
use drm::buffer::{Buffer as _, DrmFourcc};
use drm::control::{dumbbuffer::DumbBuffer, Device as ControlDevice};

struct Card(File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl drm::Device for Card {}
impl ControlDevice for Card {}

/// `struct drm_vgem_fence_attach` and `struct drm_vgem_fence_signal` of drm/vgem_drm.h.
#[repr(C)]
struct FenceAttach {
    handle: u32,
    flags: u32,
    out_fence: u32,
    pad: u32,
}
#[repr(C)]
struct FenceSignal {
    fence: u32,
    flags: u32,
}
/// DRM_IOWR(DRM_COMMAND_BASE + 1, struct drm_vgem_fence_attach)
const VGEM_FENCE_ATTACH: libc::c_ulong = 0xc010_6441;
/// DRM_IOW(DRM_COMMAND_BASE + 2, struct drm_vgem_fence_signal)
const VGEM_FENCE_SIGNAL: libc::c_ulong = 0x4008_6442;
const VGEM_FENCE_WRITE: u32 = 1;

/// An XRGB8888 vgem buffer, mapped, and exported as a dma-buf.
pub struct VgemBuffer {
    card: Card,
    buffer: DumbBuffer,
    pub dmabuf: OwnedFd,
}

/// A write fence on a vgem buffer; it signals when `signal` is called (or vgem's own
/// timeout, 10 s, passes).
pub struct WriteFence(u32);

impl VgemBuffer {
    pub fn new(width: u32, height: u32) -> anyhow::Result<Self> {
        let card = open_vgem()?;
        let buffer = card.create_dumb_buffer((width, height), DrmFourcc::Xrgb8888, 32).context("vgem dumb buffer")?;
        let flags = (libc::O_CLOEXEC | libc::O_RDWR) as u32;
        let dmabuf = card.buffer_to_prime_fd(buffer.handle(), flags).context("PRIME export of the vgem buffer")?;
        Ok(Self { card, buffer, dmabuf })
    }

    pub fn pitch(&self) -> u32 {
        self.buffer.pitch()
    }

    /// Overwrites the buffer's bytes from the start.
    pub fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let mut mapping = self.card.map_dumb_buffer(&mut self.buffer).context("mapping the vgem buffer")?;
        let len = bytes.len().min(mapping.len());
        mapping[..len].copy_from_slice(&bytes[..len]);
        Ok(())
    }

    /// Marks the buffer as being written until the fence signals: readers that honour
    /// implicit sync (DMA_BUF_IOCTL_EXPORT_SYNC_FILE) wait for it.
    pub fn attach_write_fence(&self) -> anyhow::Result<WriteFence> {
        let mut attach =
            FenceAttach { handle: self.buffer.handle().into(), flags: VGEM_FENCE_WRITE, out_fence: 0, pad: 0 };
        // SAFETY: the ioctl reads and writes the struct vgem_drm.h defines.
        let rc = unsafe { libc::ioctl(self.card.0.as_raw_fd(), VGEM_FENCE_ATTACH, &mut attach) };
        anyhow::ensure!(rc == 0, "VGEM_FENCE_ATTACH: {}", std::io::Error::last_os_error());
        Ok(WriteFence(attach.out_fence))
    }

    /// Signals the fence. ETIMEDOUT means vgem signalled it itself, its 10 s being up:
    /// signalled either way.
    pub fn signal(&self, fence: WriteFence) -> anyhow::Result<()> {
        let signal = FenceSignal { fence: fence.0, flags: 0 };
        // SAFETY: as above.
        let rc = unsafe { libc::ioctl(self.card.0.as_raw_fd(), VGEM_FENCE_SIGNAL, &signal) };
        let err = std::io::Error::last_os_error();
        anyhow::ensure!(rc == 0 || err.raw_os_error() == Some(libc::ETIMEDOUT), "VGEM_FENCE_SIGNAL: {err}");
        Ok(())
    }
}

/// The vgem card among /dev/dri/card*.
fn open_vgem() -> anyhow::Result<Card> {
    for entry in std::fs::read_dir("/dev/dri").context("/dev/dri")?.flatten() {
        if !entry.file_name().to_string_lossy().starts_with("card") {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(entry.path()) else { continue };
        let card = Card(file);
        if drm::Device::get_driver(&card).is_ok_and(|d| d.name() == "vgem") {
            return Ok(card);
        }
    }
    anyhow::bail!("no vgem device in /dev/dri (the VM rig loads vgem)")
}
