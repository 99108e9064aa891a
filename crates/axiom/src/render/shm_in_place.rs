//! Step 3 of the import ladder (`dmabuf-vulkan` feature): a wl_shm buffer's
//! bytes in the pool's mapping are imported as a host pointer
//! (VK_EXT_external_memory_host) and read in place by the shader, like the
//! dma-bufs of step 2. No CPU copy and no upload: the device reads the
//! client's memory.
//!
//! The device reads that memory outside any SIGBUS guard, so the step is only
//! taken for clients whose every pool is a memfd sealed against shrinking and
//! at least as long as the pool (`ClientState::shm_may_fault`), and an import
//! is only used while the pool is mapped at the address it was made from.
//! Everything else takes the CPU path, which reads pools safely.

#![cfg_attr(not(feature = "dmabuf-vulkan"), allow(dead_code))]

use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
#[cfg(feature = "dmabuf-vulkan")]
use smithay::reexports::wayland_server::Resource;
#[cfg(feature = "dmabuf-vulkan")]
use smithay::wayland::shm::with_buffer_contents;
use smithay::wayland::shm::BufferData;

#[cfg(feature = "dmabuf-vulkan")]
use super::buffer_source::HostImport;
use super::buffer_source::HostRange;
#[cfg(feature = "dmabuf-vulkan")]
use super::texture::BufferPlanes;
use super::texture::SurfaceTexture;
use super::Renderer;
use crate::dmabuf::ImportStats;

/// Where one shm buffer lies in host memory, as the device must import it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostSpan {
    /// The aligned range to import.
    range: HostRange,
    /// Offset of the buffer's first byte inside `range`.
    offset: u32,
    stride: u32,
}

/// The aligned range around the buffer's bytes in a pool mapped at `base` (`len`
/// bytes). None if it would reach past the mapping's last page.
fn host_span(base: *const u8, len: usize, info: &BufferData, alignment: u64, bytes_per_pixel: u32) -> Option<HostSpan> {
    let (offset, stride) = (u64::try_from(info.offset).ok()?, u64::try_from(info.stride).ok()?);
    let (width, height) = (u64::try_from(info.width).ok()?, u64::try_from(info.height).ok()?);
    if width == 0 || height == 0 {
        return None;
    }
    let end = offset.checked_add(stride.checked_mul(height - 1)?)?.checked_add(width * u64::from(bytes_per_pixel))?;
    if end > len as u64 {
        return None;
    }
    let base = base as u64;
    let page = rustix::param::page_size() as u64;
    let start = (base + offset) / alignment * alignment;
    let stop = (base + end).div_ceil(alignment) * alignment;
    // The mapping covers whole pages; past its last one lies someone else's memory.
    if stop > (base + len as u64).div_ceil(page) * page {
        return None;
    }
    Some(HostSpan {
        range: (usize::try_from(start).ok()?, stop - start),
        offset: u32::try_from(base + offset - start).ok()?,
        stride: u32::try_from(stride).ok()?,
    })
}

/// Where the shm `buffer` lies in its pool's mapping now, with its format and
/// layout. Only the pool's address is looked at: no byte is read.
#[cfg(feature = "dmabuf-vulkan")]
fn shm_span(buffer: &WlBuffer, alignment: u64) -> Option<(&'static super::formats::ShmFormat, HostSpan, BufferData)> {
    with_buffer_contents(buffer, |ptr, len, info| {
        let format = super::formats::shm_format(info.format)?;
        let span = host_span(ptr, len, &info, alignment, format.bytes_per_pixel)?;
        Some((format, span, info))
    })
    .ok()
    .flatten()
}

#[cfg(not(feature = "dmabuf-vulkan"))]
impl Renderer {
    pub(super) fn import_shm_in_place(
        &self,
        _buffer: &WlBuffer,
        _slot: &mut Option<SurfaceTexture>,
        _stats: &mut ImportStats,
    ) -> Option<()> {
        None
    }

    pub(super) fn host_range_moved(&self, _buffer: &WlBuffer, _texture: &SurfaceTexture) -> bool {
        true
    }
}

#[cfg(feature = "dmabuf-vulkan")]
impl Renderer {
    /// Reads the shm `buffer` in place through a host-pointer import, made once per
    /// wl_buffer. None if the step is unavailable or refused for this buffer.
    pub(super) fn import_shm_in_place(
        &self,
        buffer: &WlBuffer,
        slot: &mut Option<SurfaceTexture>,
        stats: &mut ImportStats,
    ) -> Option<()> {
        let importer = self.vulkan.as_ref().filter(|v| v.host_pointers)?;
        let client = buffer.client()?;
        let may_fault =
            client.get_data::<crate::state::ClientState>()?.shm_may_fault.load(std::sync::atomic::Ordering::Relaxed);
        if may_fault {
            return None;
        }
        let (format, span, info) = shm_span(buffer, importer.host_alignment)?;
        let (w, h) = (u32::try_from(info.width).ok()?, u32::try_from(info.height).ok()?);
        if span.range.1 > self.device.limits().max_storage_buffer_binding_size {
            return None;
        }
        let id = buffer.id();
        let cached = self.imports.get(&id).and_then(|import| import.host).filter(|host| host.range == span.range);
        let host = match cached {
            Some(host) => host,
            None => {
                // SAFETY: the range lies inside the pool's mapping, which the wl_buffer the
                // import holds keeps mapped; a resize, which remaps the pool, retires the import
                // first (`retire_host_imports`). The client's pools are sealed memfds covering
                // them, so the file cannot shrink under the device.
                let imported = unsafe { importer.import_host(&self.device, span.range.0 as *const u8, span.range.1) };
                let host = imported.and_then(|imported| {
                    HostImport::new(imported, span.range, buffer)
                        .ok_or_else(|| anyhow::anyhow!("the buffer has no client"))
                });
                match host {
                    Ok(host) => {
                        tracing::info!(
                            "SHM: zero-copy host-pointer import succeeded for {w}x{h} buffer (format: {:?})",
                            format.shm
                        );
                        stats.host_pointer += 1;
                        self.host_imports.register(&host);
                        let import = super::buffer_source::Import {
                            memory: super::buffer_source::ImportedMemory::Buffer(host.buffer.clone()),
                            host: Some(host.clone()),
                        };
                        self.imports.insert(id, buffer.is_alive(), import);
                        host
                    }
                    Err(err) => {
                        tracing::info!("SHM: host-pointer import failed, falling back to CPU copy: {err:#}");
                        stats.vulkan_failed += 1;
                        return None;
                    }
                }
            }
        };
        let imported = host.buffer.clone();
        let kind = super::buffer_source::plane_kind(format.texture);
        let source = BufferPlanes {
            planes: [[span.offset, 0, 0, 0], [span.stride, 0, 0, 0], [kind, 0, 0, 0]],
            mode: format.mode,
            opaque: format.opaque,
            size: (w, h),
            y_invert: false,
            host: Some(host),
        };
        self.read_planes_from(slot, &imported, source);
        Some(())
    }

    /// Whether the pool behind `texture`'s host import is no longer mapped where the
    /// import was made (a resize moved it, or the buffer is gone).
    pub(super) fn host_range_moved(&self, buffer: &WlBuffer, texture: &SurfaceTexture) -> bool {
        let Some(importer) = self.vulkan.as_ref() else { return true };
        shm_span(buffer, importer.host_alignment).map(|(_, span, _)| span.range)
            != texture.host.as_ref().map(|h| h.range)
    }
}

impl Renderer {
    /// Before a pool of `client` is remapped (a resize): frees the device memory of every
    /// host import of the client and forgets them, so that none outlives the mapping it
    /// aliases. Surfaces that showed one are imported again, on the CPU path, before
    /// they are drawn. Frames still on the GPU may read the mapping: they are waited
    /// for first (a pool resize of a client whose buffers are read in place is rare).
    /// Returns whether any was retired: the scene may draw one, and is not painted
    /// again until the next frame replaces it (`paint.rs`).
    pub fn retire_host_imports(&mut self, client: &smithay::reexports::wayland_server::backend::ClientId) -> bool {
        if self.host_imports.any_of(client) && self.completions.in_flight() > 0 {
            if let Err(err) = self.wait_for_gpu() {
                tracing::error!("waiting for the GPU before a pool resize failed: {err}");
            }
        }
        self.imports.forget_host_imports_of(client);
        if self.host_imports.retire(client) == 0 {
            return false;
        }
        let _ = self.device.poll(wgpu::PollType::Poll);
        self.scene_stale = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smithay::reexports::wayland_server::protocol::wl_shm;

    fn info(offset: i32, width: i32, height: i32, stride: i32) -> BufferData {
        BufferData { offset, width, height, stride, format: wl_shm::Format::Xrgb8888 }
    }

    #[test]
    fn spans_are_aligned_and_stay_inside_the_mapping() {
        let base = 0x10000 as *const u8;
        // A 16x4 buffer 100 bytes into a pool: the range starts at the pool's page.
        let span = host_span(base, 8192, &info(100, 16, 4, 64), 4096, 4).unwrap();
        assert_eq!(span, HostSpan { range: (0x10000, 4096), offset: 100, stride: 64 });
        // Its last row reaches into the second page.
        let span = host_span(base, 8192, &info(4000, 16, 2, 64), 4096, 4).unwrap();
        assert_eq!(span.range, (0x10000, 8192));
        // A pool of 5000 bytes is mapped as two pages: the range may end on the second.
        assert!(host_span(base, 5000, &info(4096, 16, 2, 64), 4096, 4).is_some());
        // Past the pool, or an alignment larger than the mapping: refused.
        assert!(host_span(base, 5000, &info(4096, 16, 20, 64), 4096, 4).is_none());
        assert!(host_span(base, 5000, &info(0, 16, 2, 64), 65536, 4).is_none());
        assert!(host_span(base, 5000, &info(-1, 16, 2, 64), 4096, 4).is_none());
        assert!(host_span(base, 5000, &info(0, 0, 2, 64), 4096, 4).is_none());
    }
}
