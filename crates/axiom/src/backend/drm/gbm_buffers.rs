//! A display's scanout buffers allocated with GBM on its KMS device (smithay's
//! `GbmAllocator`), with a modifier that both the primary plane and the renderer
//! take, and imported into the renderer as render targets. Where GBM has no driver
//! for the device, or nothing is shared, the display keeps dumb buffers (`mod.rs`).

use anyhow::Context;
use smithay::backend::allocator::format::FormatSet;
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
    /// The device stays open until both are gone, whatever is dropped first elsewhere.
    _device: DrmDeviceFd,
}

impl GbmScanoutBuffer {
    pub(super) fn fb(&self) -> framebuffer::Handle {
        *self.framebuffer.as_ref()
    }
}

/// The layouts of XRGB8888 that both the primary plane (its `formats`) and the
/// renderer (`renders_into`: its render-target modifiers) take. A plane that lists
/// XRGB8888 with no modifier but the implicit one (no IN_FORMATS) takes LINEAR.
/// (smithay lists the implicit modifier beside a plane's explicit ones.)
fn shared_modifiers(formats: &FormatSet, renders_into: &[u64]) -> Vec<Modifier> {
    let mut xrgb = formats.iter().filter(|f| f.code == Fourcc::Xrgb8888);
    let implicit = xrgb.all(|f| f.modifier == Modifier::Invalid)
        && formats.contains(&Format { code: Fourcc::Xrgb8888, modifier: Modifier::Invalid });
    let plane_takes = |m: Modifier| formats.contains(&Format { code: Fourcc::Xrgb8888, modifier: m });
    let mut shared: Vec<Modifier> = renders_into
        .iter()
        .map(|&m| Modifier::from(m))
        .filter(|&m| plane_takes(m) || (implicit && m == Modifier::Linear))
        .collect();
    shared.dedup();
    shared
}

/// `count` XRGB8888 buffers of `size` for the primary plane whose formats are
/// `plane_formats`, each with the renderer's import of it as a render target. GBM
/// picks the layout among those both take (a tiled one where it can); LINEAR where
/// that fails. The error says why none (no GBM driver, no layout both take).
pub(super) fn allocate(
    fd: &DrmDeviceFd,
    plane_formats: &FormatSet,
    size: (u32, u32),
    count: usize,
    renderer: &Renderer,
) -> anyhow::Result<(Vec<(GbmScanoutBuffer, ScanoutTarget)>, Modifier)> {
    let modifiers = shared_modifiers(plane_formats, &renderer.scanout_target_modifiers());
    anyhow::ensure!(!modifiers.is_empty(), "no layout of XRGB8888 that both the primary plane and the renderer take");
    let device = GbmDevice::new(fd.clone()).context("GBM has no driver for the device")?;
    let mut allocator = GbmAllocator::new(device, GbmBufferFlags::SCANOUT | GbmBufferFlags::RENDERING);
    let tiled: Vec<Modifier> = modifiers.iter().copied().filter(|&m| m != Modifier::Linear).collect();
    if !tiled.is_empty() {
        match allocate_with(fd, &mut allocator, size, count, renderer, &tiled) {
            Ok(buffers) => return Ok(buffers),
            Err(why) if modifiers.contains(&Modifier::Linear) => {
                tracing::info!("GBM: no tiled scanout buffers ({why:#}); LINEAR ones")
            }
            Err(why) => return Err(why),
        }
    }
    allocate_with(fd, &mut allocator, size, count, renderer, &[Modifier::Linear])
}

/// `allocate` with the layouts `modifiers` (LINEAR alone, or tiled ones).
fn allocate_with(
    fd: &DrmDeviceFd,
    allocator: &mut GbmAllocator<DrmDeviceFd>,
    size: (u32, u32),
    count: usize,
    renderer: &Renderer,
    modifiers: &[Modifier],
) -> anyhow::Result<(Vec<(GbmScanoutBuffer, ScanoutTarget)>, Modifier)> {
    let linear = modifiers == [Modifier::Linear];
    // LINEAR asked as a flag too: a driver without modifiers (vkms's kms_swrast) then
    // still lays it out so.
    let mut flags = GbmBufferFlags::SCANOUT | GbmBufferFlags::RENDERING;
    if linear {
        flags |= GbmBufferFlags::LINEAR;
    }
    let mut buffers = Vec::with_capacity(count);
    let mut chosen = Modifier::Linear;
    for _ in 0..count {
        let buffer = allocator
            .create_buffer_with_flags(size.0, size.1, Fourcc::Xrgb8888, modifiers, flags)
            .context("GBM allocation")?;
        // What GBM chose; a driver without modifiers says none (its LINEAR flag held).
        let modifier = match buffer.modifier() {
            Modifier::Invalid if linear => Modifier::Linear,
            m if modifiers.contains(&m) => m,
            other => anyhow::bail!("GBM laid the buffer out by {other:?}, none of {modifiers:?}"),
        };
        anyhow::ensure!(buffer.plane_count() == 1, "the GBM buffer has more than one plane");
        chosen = modifier;
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
            modifier: modifier.into(),
        })?;
        let framebuffer =
            framebuffer_from_bo(fd, &buffer, true).map_err(|err| anyhow::anyhow!("framebuffer: {err}"))?;
        // smithay falls back to a framebuffer without a modifier where the kernel refuses
        // one with it: a tiled buffer would then be scanned out as if it were not.
        let fb_modifier = smithay::backend::drm::Framebuffer::format(&framebuffer).modifier;
        anyhow::ensure!(
            modifier == Modifier::Linear || fb_modifier == modifier,
            "the display took the buffer's framebuffer without its modifier {modifier:?}"
        );
        buffers.push((GbmScanoutBuffer { framebuffer, _buffer: buffer, _device: fd.clone() }, target));
    }
    Ok((buffers, chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    const X_TILED: u64 = (1 << 56) | 1; // I915_FORMAT_MOD_X_TILED
    const Y_TILED: u64 = (1 << 56) | 2;

    fn formats(modifiers: &[Modifier]) -> FormatSet {
        modifiers.iter().map(|&modifier| Format { code: Fourcc::Xrgb8888, modifier }).collect()
    }

    #[test]
    fn the_shared_layouts_are_those_both_the_plane_and_the_renderer_take() {
        let plane = formats(&[Modifier::Linear, Modifier::from(X_TILED), Modifier::from(Y_TILED)]);
        assert_eq!(shared_modifiers(&plane, &[0, X_TILED]), [Modifier::Linear, Modifier::from(X_TILED)]);
        assert_eq!(shared_modifiers(&plane, &[0]), [Modifier::Linear], "lavapipe renders into LINEAR alone");
        assert!(shared_modifiers(&formats(&[Modifier::from(Y_TILED)]), &[0, X_TILED]).is_empty());
    }

    #[test]
    fn a_plane_whose_modifiers_leave_linear_out_does_not_take_it() {
        // smithay adds the implicit modifier beside the explicit ones.
        let plane = formats(&[Modifier::Invalid, Modifier::from(X_TILED)]);
        assert_eq!(shared_modifiers(&plane, &[0, X_TILED]), [Modifier::from(X_TILED)]);
        assert!(shared_modifiers(&plane, &[0]).is_empty());
    }

    #[test]
    fn a_plane_without_modifiers_takes_linear() {
        let implicit = formats(&[Modifier::Invalid]);
        assert_eq!(shared_modifiers(&implicit, &[0, X_TILED]), [Modifier::Linear]);
        assert!(shared_modifiers(&implicit, &[X_TILED]).is_empty());
    }
}
