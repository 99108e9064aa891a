//! A display's scanout buffers allocated with GBM on its KMS device (smithay's
//! `GbmAllocator`), with a modifier that both the primary plane and the renderer
//! take, and imported into the renderer as render targets. Where GBM has no driver
//! for the device, or nothing is shared, the display keeps dumb buffers (`mod.rs`).

use anyhow::Context;
use smithay::backend::allocator::gbm::{GbmAllocator, GbmBuffer, GbmBufferFlags, GbmDevice};
use smithay::backend::allocator::{Format, Fourcc, Modifier};
use smithay::backend::drm::gbm::{framebuffer_from_bo, GbmFramebuffer};
use smithay::backend::drm::DrmDeviceFd;
use smithay::reexports::drm::control::{framebuffer, Device as _};
use std::os::fd::AsFd;

use crate::render::scanout_target::{ScanoutTarget, SharedScanoutBuffer};
use crate::render::Renderer;

/// One GBM buffer the display scans out, with its framebuffer (removed when dropped).
pub(super) struct GbmScanoutBuffer {
    framebuffer: GbmFramebuffer,
    /// Freed when dropped, after the framebuffer.
    _buffer: GbmBuffer,
}

impl GbmScanoutBuffer {
    pub(super) fn fb(&self) -> framebuffer::Handle {
        *self.framebuffer.as_ref()
    }
}

/// `count` LINEAR XRGB8888 buffers of `size` for the primary plane whose formats are
/// `plane_formats`, each with the renderer's import of it as a render target. The
/// error says why not (no GBM driver, no layout both take).
pub(super) fn allocate(
    fd: &DrmDeviceFd,
    plane_formats: &smithay::backend::allocator::format::FormatSet,
    size: (u32, u32),
    count: usize,
    renderer: &Renderer,
) -> anyhow::Result<Vec<(GbmScanoutBuffer, ScanoutTarget)>> {
    // The renderer renders into LINEAR buffers (`Renderer::renders_into_dmabufs`); the
    // plane must scan LINEAR out, or list XRGB8888 without modifiers (implicit).
    let linear = Format { code: Fourcc::Xrgb8888, modifier: Modifier::Linear };
    let implicit = Format { code: Fourcc::Xrgb8888, modifier: Modifier::Invalid };
    anyhow::ensure!(
        plane_formats.contains(&linear) || plane_formats.contains(&implicit),
        "the primary plane takes no LINEAR XRGB8888, the only layout the renderer renders into"
    );
    anyhow::ensure!(renderer.renders_into_dmabufs(), "the renderer cannot render into dma-bufs");
    let device = GbmDevice::new(fd.clone()).context("GBM has no driver for the device")?;
    let flags = GbmBufferFlags::SCANOUT | GbmBufferFlags::RENDERING | GbmBufferFlags::LINEAR;
    let mut allocator = GbmAllocator::new(device, flags);
    let mut buffers = Vec::with_capacity(count);
    for _ in 0..count {
        let buffer = allocator
            .create_buffer_with_flags(size.0, size.1, Fourcc::Xrgb8888, &[Modifier::Linear], flags)
            .context("GBM allocation")?;
        // Shared through PRIME from our own handle, writable: GBM's own export is not
        // always, and the renderer draws into it.
        let handle = smithay::reexports::drm::buffer::Buffer::handle(&*buffer);
        let shared = fd
            .buffer_to_prime_fd(handle, smithay::reexports::drm::CLOEXEC | smithay::reexports::drm::RDWR)
            .context("sharing the GBM buffer as a dma-buf")?;
        let target = renderer.import_scanout_target(SharedScanoutBuffer {
            fd: shared.as_fd(),
            width: size.0,
            height: size.1,
            offset: buffer.offset(0),
            stride: buffer.stride(),
        })?;
        let framebuffer =
            framebuffer_from_bo(fd, &buffer, true).map_err(|err| anyhow::anyhow!("framebuffer: {err}"))?;
        buffers.push((GbmScanoutBuffer { framebuffer, _buffer: buffer }, target));
    }
    Ok(buffers)
}
