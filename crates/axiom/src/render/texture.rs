//! Surface textures: what the shader reads for each surface's current buffer:
//! the client's memory imported in place (the Vulkan steps of the ladder), else a
//! copy, one texture per plane, updated from the damaged rows only.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use smithay::backend::allocator::Buffer as _;
use smithay::backend::renderer::utils::{CommitCounter, RendererSurfaceState};
use smithay::backend::renderer::{buffer_type, BufferType};
use smithay::reexports::wayland_server::Resource;
use smithay::utils::Transform;
use smithay::wayland::compositor::SurfaceData;
use smithay::wayland::dmabuf::get_dmabuf;
use smithay::wayland::shm::with_buffer_contents;
use smithay::wayland::single_pixel_buffer::get_single_pixel_buffer;

use super::formats::{shm_format, SampleMode};
use super::Renderer;
use crate::dmabuf::cpu::{read_rows, RowSpan};
use crate::dmabuf::formats::{dmabuf_format, PlaneLayout};
use crate::dmabuf::ImportStats;

pub struct SurfaceTexture {
    /// One texture per plane (empty when the planes are read from an imported buffer).
    planes: Vec<wgpu::Texture>,
    /// The planes are the client's own memory (ladder step 1): never written to.
    client_memory: bool,
    /// Where the shader reads planes from an imported buffer: offsets, strides, kinds.
    buffer_planes: Option<[[u32; 4]; 3]>,
    /// That imported buffer.
    words: Option<wgpu::Buffer>,
    /// The host memory the imported buffer aliases (wl_shm read in place), if any.
    pub(super) host: Option<std::sync::Arc<super::buffer_source::HostImport>>,
    pub bind_group: wgpu::BindGroup,
    pub mode: SampleMode,
    pub opaque: bool,
    /// Buffer size in pixels.
    pub size: (u32, u32),
    pub y_invert: bool,
    /// The surface commit whose contents the texture holds.
    commit: CommitCounter,
    /// The buffer those contents came from, kept (unreleased) while the texture reads it
    /// in place: a later import that fails leaves the texture showing it.
    source: Option<smithay::backend::renderer::utils::Buffer>,
}

/// Surface textures alive now, for the counters (a leak shows as a count that stays up).
static LIVE_TEXTURES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn live_textures() -> usize {
    LIVE_TEXTURES.load(std::sync::atomic::Ordering::Relaxed)
}

impl SurfaceTexture {
    /// Whether the shader reads the client's own memory (ladder steps 1 to 3), which
    /// must then stay as it is until the GPU is done with a frame.
    pub fn reads_client_memory(&self) -> bool {
        self.client_memory || self.buffer_planes.is_some()
    }

    /// The client memory a frame drawing this texture reads in place, if any.
    pub fn in_place_read(&self) -> Option<super::InPlaceRead> {
        let buffer = self.source.clone().filter(|_| self.reads_client_memory())?;
        Some(super::InPlaceRead { buffer, host: self.host.clone() })
    }

    /// Counts the texture; every one is made through here.
    fn counted(self) -> Self {
        LIVE_TEXTURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self
    }
}

impl Drop for SurfaceTexture {
    fn drop(&mut self) {
        LIVE_TEXTURES.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Where the shader finds a surface's planes in an imported buffer.
#[cfg_attr(not(feature = "dmabuf-vulkan"), allow(dead_code))]
pub(super) struct BufferPlanes {
    /// Offsets, strides and texel kinds of up to three planes.
    pub planes: [[u32; 4]; 3],
    pub mode: SampleMode,
    pub opaque: bool,
    pub size: (u32, u32),
    pub y_invert: bool,
    pub host: Option<std::sync::Arc<super::buffer_source::HostImport>>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// The surface has no buffer: nothing to draw.
    Nothing,
    /// The texture already holds this commit (or the import failed and the previous contents stay).
    Unchanged,
    /// These buffer rows (first, count) were uploaded.
    Updated(Vec<(u32, u32)>),
}

/// Per-surface slot for its texture, kept in the surface's data map so that
/// it is dropped with the surface.
pub type SurfaceTextureSlot = Mutex<Option<SurfaceTexture>>;

pub fn texture_slot(states: &SurfaceData) -> &SurfaceTextureSlot {
    states.data_map.insert_if_missing_threadsafe(|| Mutex::new(None::<SurfaceTexture>));
    states.data_map.get::<SurfaceTextureSlot>().expect("inserted just above")
}

/// What a texture must look like to hold a buffer.
struct TextureShape<'a> {
    size: (u32, u32),
    planes: &'a [PlaneLayout],
    mode: SampleMode,
    opaque: bool,
}

impl Renderer {
    /// Brings the surface's texture up to date with its current buffer.
    pub fn import_surface(
        &self,
        surface_state: &RendererSurfaceState,
        slot: &mut Option<SurfaceTexture>,
        stats: &mut ImportStats,
    ) -> Imported {
        let Some(buffer) = surface_state.buffer() else {
            *slot = None;
            return Imported::Nothing;
        };
        // A client may make a buffer larger than the device can draw (wl_shm allows any
        // size); its surface is not drawn, and nothing of it reaches the frame, where the
        // device would reject every other surface's draws with it.
        if let Some(size) = smithay::backend::renderer::buffer_dimensions(buffer) {
            let max = self.max_texture_dimension();
            if size.w > max as i32 || size.h > max as i32 {
                if slot.take().is_some() || stats.too_large == 0 {
                    tracing::debug!(
                        "buffer of {}x{} is larger than the renderer's {max}x{max}: not drawn",
                        size.w,
                        size.h
                    );
                }
                stats.too_large += 1;
                return Imported::Nothing;
            }
        }
        let commit = surface_state.current_commit();
        let host = slot.as_ref().and_then(|t| t.host.as_ref());
        if host.is_some_and(|h| h.is_retired())
            || (host.is_some() && slot.as_ref().is_some_and(|t| self.host_range_moved(buffer, t)))
        {
            // The pool was remapped: the old import must never be drawn again.
            *slot = None;
        }
        if slot.as_ref().is_some_and(|t| t.commit == commit) {
            return Imported::Unchanged;
        }
        let since = slot.as_ref().map(|t| t.commit);
        // smithay turns wl_surface.damage into buffer rows with the quarter turns the other
        // way round from how they are drawn (render/source_map.rs): under one, every row
        // is read again.
        let quarter_turn = matches!(
            surface_state.buffer_transform(),
            Transform::_90 | Transform::_270 | Transform::Flipped90 | Transform::Flipped270
        );
        let rows: Vec<(i32, i32)> = match quarter_turn {
            true => vec![(0, i32::MAX)],
            false => surface_state.damage_since(since).iter().map(|r| (r.loc.y, r.size.h)).collect(),
        };
        let damaged_rows = || rows.iter().copied();
        let imported = match buffer_type(buffer) {
            Some(BufferType::Shm) if self.import_shm_in_place(buffer, slot, stats).is_some() => {
                let height = slot.as_ref().map_or(0, |t| t.size.1);
                Some(merge_rows(damaged_rows(), height))
            }
            Some(BufferType::Shm) => with_buffer_contents(buffer, |ptr, len, info| {
                let format = shm_format(info.format)?;
                let layout = PlaneLayout {
                    block_w: 1,
                    block_h: 1,
                    bytes_per_block: format.bytes_per_pixel,
                    texture: format.texture,
                };
                let (Ok(w), Ok(h), Ok(stride), Ok(offset)) = (
                    u32::try_from(info.width),
                    u32::try_from(info.height),
                    u64::try_from(info.stride),
                    u64::try_from(info.offset),
                ) else {
                    return None;
                };
                let shape = TextureShape {
                    size: (w, h),
                    planes: std::slice::from_ref(&layout),
                    mode: format.mode,
                    opaque: format.opaque,
                };
                let rows = self.prepare(slot, &shape, damaged_rows());
                // SAFETY: smithay maps the pool for the duration of this closure and turns a
                // SIGBUS (a client shrinking its pool) into an error instead of a crash.
                let pool = unsafe { std::slice::from_raw_parts(ptr, len) };
                let uploaded = rows.iter().all(|&(first, count)| {
                    let span = RowSpan {
                        offset,
                        stride,
                        row_bytes: layout.row_bytes(w),
                        first: u64::from(first),
                        count: u64::from(count),
                    };
                    let bytes = span_slice(pool, span);
                    bytes.is_some_and(|bytes| self.write_rows(slot, 0, &layout, span, bytes))
                });
                if uploaded {
                    stats.shm_cpu_uploads += 1;
                }
                uploaded.then_some(rows)
            })
            .unwrap_or_else(|err| {
                tracing::debug!("shm buffer unreadable: {err:?}");
                None
            }),
            Some(BufferType::SinglePixel) => match get_single_pixel_buffer(buffer) {
                Ok(pixel) => {
                    // The protocol gives premultiplied 32-bit channels; keep the top 8 bits.
                    let rgba = [pixel.r, pixel.g, pixel.b, pixel.a].map(|c| (c >> 24) as u8);
                    let layout = PlaneLayout {
                        block_w: 1,
                        block_h: 1,
                        bytes_per_block: 4,
                        texture: wgpu::TextureFormat::Rgba8Unorm,
                    };
                    let shape = TextureShape {
                        size: (1, 1),
                        planes: std::slice::from_ref(&layout),
                        mode: SampleMode::Direct,
                        opaque: false,
                    };
                    self.prepare(slot, &shape, std::iter::empty());
                    let span = RowSpan { offset: 0, stride: 4, row_bytes: 4, first: 0, count: 1 };
                    self.write_rows(slot, 0, &layout, span, &rgba).then(|| vec![(0, 1)])
                }
                Err(_) => None,
            },
            Some(BufferType::Dma) => match get_dmabuf(buffer) {
                Ok(dmabuf) => {
                    let writers = pending_writers(dmabuf);
                    match self.import_dmabuf_vulkan((buffer.id(), buffer.is_alive()), dmabuf, slot, stats) {
                        Some(()) => {
                            self.wait_for_writers_on_gpu(writers, stats);
                            Some(merge_rows(damaged_rows(), dmabuf.height()))
                        }
                        None => {
                            wait_for_writers_on_cpu(writers, stats);
                            self.import_dmabuf_cpu(
                                (buffer.id(), buffer.is_alive()),
                                dmabuf,
                                damaged_rows(),
                                slot,
                                stats,
                            )
                        }
                    }
                }
                Err(_) => None,
            },
            _ => None,
        };
        match (slot, imported) {
            (Some(texture), Some(rows)) => {
                texture.commit = commit;
                texture.source = texture.reads_client_memory().then(|| buffer.clone());
                Imported::Updated(rows)
            }
            // Keep showing the previous contents if this import failed.
            (Some(_), None) => Imported::Unchanged,
            (None, _) => Imported::Nothing,
        }
    }

    /// The Vulkan steps of the ladder for a dma-buf: step 1 (an image per plane by its
    /// modifier), else step 2 (the memory as a buffer the shader reads in place). Each
    /// wl_buffer is imported once; later commits of it cost nothing. None if no step
    /// takes this buffer (the caller falls back to the CPU), which is then not tried again.
    #[cfg(feature = "dmabuf-vulkan")]
    fn import_dmabuf_vulkan(
        &self,
        (id, alive): (smithay::reexports::wayland_server::backend::ObjectId, bool),
        dmabuf: &smithay::backend::allocator::dmabuf::Dmabuf,
        slot: &mut Option<SurfaceTexture>,
        stats: &mut ImportStats,
    ) -> Option<()> {
        use super::buffer_source::{Import, ImportedMemory};
        let importer = self.vulkan.as_ref()?;
        let format = dmabuf_format(dmabuf.format().code as u32)?;
        let size = dmabuf.size();
        let (w, h) = (u32::try_from(size.w).ok()?, u32::try_from(size.h).ok()?);
        let buffer = match self.imports.get(&id).map(|import| import.memory) {
            Some(ImportedMemory::Images(planes)) => {
                self.sample_planes(slot, planes, (format.mode, format.opaque), (w, h), dmabuf.y_inverted(), None);
                return Some(());
            }
            Some(ImportedMemory::Buffer(buffer)) => buffer,
            // The device reads this memory for as long as the buffer lives; a file its client
            // can still shrink would fault under it (on lavapipe, a SIGBUS in the compositor).
            // Real dma-bufs never shrink, and memfds sealed with F_SEAL_SHRINK (as udmabuf
            // requires) cannot, nor can seals be removed: checked once, before importing.
            // Others take the CPU path, which reads them safely.
            None if !dmabuf.handles().all(crate::dmabuf::cpu::can_map_safely) => return None,
            // Tried at an earlier commit: neither step takes this buffer.
            None if self.imports.is_refused(&id) => return None,
            None => match self.import_dmabuf_images(importer, dmabuf, format, (w, h)) {
                Ok(planes) => {
                    tracing::info!(
                        "DMA-BUF: zero-copy Vulkan import succeeded for {w}x{h} buffer (fourcc: {}, {} image plane(s), modifier 0x{:016x})",
                        crate::dmabuf::protocol::fourcc_hex(format.fourcc),
                        planes.len(),
                        u64::from(dmabuf.format().modifier)
                    );
                    stats.vulkan_image += 1;
                    let import = Import { memory: ImportedMemory::Images(planes.clone()), host: None };
                    self.imports.insert(id, alive, import);
                    self.sample_planes(slot, planes, (format.mode, format.opaque), (w, h), dmabuf.y_inverted(), None);
                    return Some(());
                }
                // Only the texture unit knows a tiled layout: no other step can read one.
                Err(err) if u64::from(dmabuf.format().modifier) != crate::dmabuf::params::MODIFIER_LINEAR => {
                    tracing::warn!(
                        "DMA-BUF: Vulkan image import of a tiled buffer failed; it cannot be shown: {err:#}"
                    );
                    stats.vulkan_failed += 1;
                    self.imports.refuse(id, alive);
                    return None;
                }
                Err(err) => {
                    if importer.has_image_step() {
                        tracing::info!("DMA-BUF: VkImage import refused, trying a VkBuffer: {err:#}");
                    }
                    match self.import_dmabuf_buffer(importer, (id.clone(), alive), dmabuf, format, (w, h), stats) {
                        Some(buffer) => buffer,
                        None => {
                            self.imports.refuse(id, alive);
                            return None;
                        }
                    }
                }
            },
        };
        // Every plane's last byte must lie inside the (word-rounded) imported range.
        let mut planes = [[0u32; 4]; 3];
        for (index, ((offset, stride), layout)) in dmabuf.offsets().zip(dmabuf.strides()).zip(format.planes).enumerate()
        {
            let (_, rows) = layout.size(w, h);
            let end = u64::from(offset) + u64::from(stride) * u64::from(rows.saturating_sub(1)) + layout.row_bytes(w);
            if end > buffer.size() || index >= 3 {
                return None;
            }
            planes[0][index] = offset;
            planes[1][index] = stride;
            planes[2][index] = super::buffer_source::plane_kind(layout.texture);
        }
        let source = BufferPlanes {
            planes,
            mode: format.mode,
            opaque: format.opaque,
            size: (w, h),
            y_invert: dmabuf.y_inverted(),
            host: None,
        };
        self.read_planes_from(slot, &buffer, source);
        Some(())
    }

    /// Step 1: every plane as an image of its texel format with the buffer's modifier
    /// and the plane's offset and stride, aliasing the client's memory.
    #[cfg(feature = "dmabuf-vulkan")]
    fn import_dmabuf_images(
        &self,
        importer: &super::vulkan::VulkanImporter,
        dmabuf: &smithay::backend::allocator::dmabuf::Dmabuf,
        format: &crate::dmabuf::formats::DmabufFormat,
        (w, h): (u32, u32),
    ) -> anyhow::Result<Vec<wgpu::Texture>> {
        let modifier = u64::from(dmabuf.format().modifier);
        let planes = dmabuf.handles().zip(dmabuf.offsets()).zip(dmabuf.strides()).zip(format.planes);
        planes
            .map(|(((fd, offset), stride), layout)| {
                let (width, height) = layout.size(w, h);
                let plane =
                    super::vulkan::ImagePlane { format: layout.texture, width, height, offset, stride, modifier };
                importer.import_dmabuf_image(&self.device, fd, plane, super::vulkan::ImageRole::Sampled)
            })
            .collect()
    }

    /// Step 2: the dma-buf's memory as one buffer the shader reads every plane from.
    #[cfg(feature = "dmabuf-vulkan")]
    fn import_dmabuf_buffer(
        &self,
        importer: &super::vulkan::VulkanImporter,
        (id, alive): (smithay::reexports::wayland_server::backend::ObjectId, bool),
        dmabuf: &smithay::backend::allocator::dmabuf::Dmabuf,
        format: &crate::dmabuf::formats::DmabufFormat,
        (w, h): (u32, u32),
        stats: &mut ImportStats,
    ) -> Option<wgpu::Buffer> {
        if !importer.dmabuf_buffers {
            return None;
        }
        // One buffer holds every plane: planes must share the fd (the usual layout of
        // multi-plane memfd and GPU buffers); otherwise the CPU path takes it.
        let mut handles = dmabuf.handles();
        let first = handles.next()?;
        let first_file = crate::dmabuf::file_identity(first);
        if first_file.is_none() || !handles.all(|fd| crate::dmabuf::file_identity(fd) == first_file) {
            return None;
        }
        let result = crate::dmabuf::fd_size(first)
            .filter(|&size| size <= self.device.limits().max_storage_buffer_binding_size)
            .ok_or_else(|| anyhow::anyhow!("buffer too large to bind"))
            .and_then(|size| importer.import_dmabuf(&self.device, first, size));
        match result {
            Ok(buffer) => {
                tracing::info!(
                    "DMA-BUF: zero-copy Vulkan import succeeded for {w}x{h} buffer (fourcc: {}, read in place as a buffer)",
                    crate::dmabuf::protocol::fourcc_hex(format.fourcc)
                );
                stats.vulkan_buffer += 1;
                let memory = super::buffer_source::ImportedMemory::Buffer(buffer.clone());
                self.imports.insert(id, alive, super::buffer_source::Import { memory, host: None });
                Some(buffer)
            }
            Err(err) => {
                tracing::info!("DMA-BUF: Vulkan import failed, falling back to CPU copy: {err:#}");
                stats.vulkan_failed += 1;
                None
            }
        }
    }

    /// Points `slot` at textures of a buffer's planes, its (`mode`, `opaque`): the
    /// imported images (ladder step 1) or those its planes were copied into (step 2,
    /// `host` the memory a wl_shm import aliases); the slot keeps the commit it held.
    #[cfg(feature = "dmabuf-vulkan")]
    fn sample_planes(
        &self,
        slot: &mut Option<SurfaceTexture>,
        planes: Vec<wgpu::Texture>,
        (mode, opaque): (SampleMode, bool),
        size: (u32, u32),
        y_invert: bool,
        host: Option<std::sync::Arc<super::buffer_source::HostImport>>,
    ) {
        let views: Vec<wgpu::TextureView> = planes.iter().map(|t| t.create_view(&Default::default())).collect();
        let bind_group = self.planes_bind_group(&views, self.no_words.as_ref());
        let commit = slot.as_ref().map(|t| t.commit).unwrap_or_default();
        *slot = Some(SurfaceTexture::counted(SurfaceTexture {
            planes,
            buffer_planes: None,
            words: None,
            // The client's memory: the images are it, or the copies read it until done.
            client_memory: true,
            host,
            bind_group,
            mode,
            opaque,
            size,
            y_invert,
            commit,
            source: None,
        }));
    }

    /// Points `slot` at planes the shader reads from the imported `buffer` (ladder
    /// steps 2 and 3); the slot keeps the commit it held.
    #[cfg(feature = "dmabuf-vulkan")]
    pub(super) fn read_planes_from(
        &self,
        slot: &mut Option<SurfaceTexture>,
        buffer: &wgpu::Buffer,
        source: BufferPlanes,
    ) {
        let reuse = slot.as_ref().map_or(&[][..], |t| t.planes.as_slice());
        if let Some(planes) = self.copy_planes(buffer, &source, reuse) {
            let look = (source.mode, source.opaque);
            return self.sample_planes(slot, planes, look, source.size, source.y_invert, source.host);
        }
        let commit = slot.as_ref().map(|t| t.commit).unwrap_or_default();
        let empty = self.empty_view();
        let bind_group = self.planes_bind_group(&[empty], Some(buffer));
        *slot = Some(SurfaceTexture::counted(SurfaceTexture {
            planes: Vec::new(),
            client_memory: true,
            buffer_planes: Some(source.planes),
            words: Some(buffer.clone()),
            bind_group,
            mode: source.mode,
            opaque: source.opaque,
            size: source.size,
            y_invert: source.y_invert,
            host: source.host,
            commit,
            source: None,
        }));
    }

    #[cfg(not(feature = "dmabuf-vulkan"))]
    fn import_dmabuf_vulkan(
        &self,
        _id: (smithay::reexports::wayland_server::backend::ObjectId, bool),
        _dmabuf: &smithay::backend::allocator::dmabuf::Dmabuf,
        _slot: &mut Option<SurfaceTexture>,
        _stats: &mut ImportStats,
    ) -> Option<()> {
        None
    }

    /// The CPU step of the ladder: read the damaged rows of every plane and upload them.
    fn import_dmabuf_cpu(
        &self,
        (id, alive): (smithay::reexports::wayland_server::backend::ObjectId, bool),
        dmabuf: &smithay::backend::allocator::dmabuf::Dmabuf,
        damaged_rows: impl Iterator<Item = (i32, i32)>,
        slot: &mut Option<SurfaceTexture>,
        stats: &mut ImportStats,
    ) -> Option<Vec<(u32, u32)>> {
        // The CPU reads rows; a tiled layout is not rows.
        if u64::from(dmabuf.format().modifier) != crate::dmabuf::params::MODIFIER_LINEAR {
            return None;
        }
        let format = dmabuf_format(dmabuf.format().code as u32)?;
        let size = dmabuf.size();
        let (w, h) = (u32::try_from(size.w).ok()?, u32::try_from(size.h).ok()?);
        let shape = TextureShape { size: (w, h), planes: format.planes, mode: format.mode, opaque: format.opaque };
        let rows = self.prepare(slot, &shape, damaged_rows);
        if let Some(texture) = slot.as_mut() {
            texture.y_invert = dmabuf.y_inverted();
        }
        let planes = dmabuf.handles().zip(dmabuf.offsets()).zip(dmabuf.strides());
        for (index, ((fd, offset), stride)) in planes.enumerate() {
            let layout = format.planes.get(index)?;
            // The file bytes the plane spans, as validated at create.
            let (_, plane_rows) = layout.size(w, h);
            let plane_end = u64::from(offset) + u64::from(stride) * u64::from(plane_rows);
            let mapping = self.mappings.get_or_map(&id, alive, index, fd, (u64::from(offset), plane_end));
            for &(first, count) in &rows {
                // Luma rows first..first+count touch these rows of a subsampled plane.
                let plane_first = first / layout.block_h;
                let plane_end = (first + count).div_ceil(layout.block_h);
                let span = RowSpan {
                    offset: u64::from(offset),
                    stride: u64::from(stride),
                    row_bytes: layout.row_bytes(w),
                    first: u64::from(plane_first),
                    count: u64::from(plane_end - plane_first),
                };
                match read_rows(fd.as_fd(), mapping.as_deref(), span, |chunk, bytes| {
                    self.write_rows(slot, index, layout, chunk, bytes)
                }) {
                    Ok(true) => stats.cpu_bytes += span.len_bytes(),
                    Ok(false) => return None,
                    Err(err) => {
                        tracing::warn!("DMA-BUF: CPU import skipped a frame: {err}");
                        stats.cpu_skipped += 1;
                        return None;
                    }
                }
            }
        }
        stats.cpu_imports += 1;
        Some(rows)
    }

    /// Makes `slot` hold textures of `shape`, and returns the luma row ranges
    /// (first, count) to upload: all of them for a new texture.
    fn prepare(
        &self,
        slot: &mut Option<SurfaceTexture>,
        shape: &TextureShape<'_>,
        damaged_rows: impl Iterator<Item = (i32, i32)>,
    ) -> Vec<(u32, u32)> {
        let (w, h) = shape.size;
        let fits = slot.as_ref().is_some_and(|t| {
            !t.client_memory
                && t.size == shape.size
                && t.mode == shape.mode
                && t.planes.len() == shape.planes.len()
                && t.planes.iter().zip(shape.planes).all(|(tex, layout)| tex.format() == layout.texture)
        });
        if fits {
            if let Some(t) = slot.as_mut() {
                t.opaque = shape.opaque;
            }
            return merge_rows(damaged_rows, h);
        }
        let planes: Vec<wgpu::Texture> = shape
            .planes
            .iter()
            .map(|layout| {
                let (pw, ph) = layout.size(w, h);
                self.device.create_texture(&wgpu::TextureDescriptor {
                    label: Some("surface plane"),
                    size: wgpu::Extent3d { width: pw, height: ph, depth_or_array_layers: 1 },
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    format: layout.texture,
                    // COPY_SRC: paints copy an opaque plane texel for texel (paint.rs).
                    usage: wgpu::TextureUsages::TEXTURE_BINDING
                        | wgpu::TextureUsages::COPY_DST
                        | wgpu::TextureUsages::COPY_SRC,
                    view_formats: &[],
                })
            })
            .collect();
        let views: Vec<wgpu::TextureView> = planes.iter().map(|t| t.create_view(&Default::default())).collect();
        let bind_group = self.planes_bind_group(&views, self.no_words.as_ref());
        *slot = Some(SurfaceTexture::counted(SurfaceTexture {
            planes,
            buffer_planes: None,
            words: None,
            client_memory: false,
            bind_group,
            mode: shape.mode,
            opaque: shape.opaque,
            size: shape.size,
            y_invert: false,
            host: None,
            commit: CommitCounter::default(),
            source: None,
        }));
        vec![(0, h)]
    }

    /// Uploads the rows of `span` (whose bytes start at the first row) into plane `index`.
    fn write_rows(
        &self,
        slot: &Option<SurfaceTexture>,
        index: usize,
        layout: &PlaneLayout,
        span: RowSpan,
        bytes: &[u8],
    ) -> bool {
        let Some(texture) = slot.as_ref().and_then(|t| t.planes.get(index)) else { return false };
        let (Ok(stride), Ok(first), Ok(count)) =
            (u32::try_from(span.stride), u32::try_from(span.first), u32::try_from(span.count))
        else {
            return false;
        };
        let width = texture.width();
        let row_bytes = span.row_bytes as usize;
        // wgpu wants bytes_per_row to be a whole number of texels; otherwise upload row by row.
        let chunks: Vec<(u32, u32)> =
            if stride % layout.bytes_per_block == 0 { vec![(0, count)] } else { (0..count).map(|r| (r, 1)).collect() };
        for (row, n) in chunks {
            let start = row as usize * stride as usize;
            let end = start + (n as usize - 1) * stride as usize + row_bytes;
            let Some(data) = bytes.get(start..end) else { return false };
            self.queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d { x: 0, y: first + row, z: 0 },
                    aspect: wgpu::TextureAspect::All,
                },
                data,
                wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(stride), rows_per_image: None },
                wgpu::Extent3d { width, height: n, depth_or_array_layers: 1 },
            );
        }
        true
    }
}

/// Implicit sync: the client's GPU may still be writing a newly committed dma-buf.
/// The fences of its pending writes, one sync file per distinct file among its planes.
fn pending_writers(dmabuf: &smithay::backend::allocator::dmabuf::Dmabuf) -> Vec<OwnedFd> {
    use crate::dmabuf::sync::Writers;
    let mut files = Vec::new();
    let mut pending = Vec::new();
    for fd in dmabuf.handles() {
        let file = crate::dmabuf::file_identity(fd);
        if file.is_some() && files.contains(&file) {
            continue;
        }
        files.push(file);
        if let Writers::Pending(sync_file) = crate::dmabuf::sync::pending_writers(fd) {
            pending.push(sync_file);
        }
    }
    pending
}

/// Before the CPU reads a buffer: waits for its writers, bounded so that one slow
/// client cannot stall every other.
fn wait_for_writers_on_cpu(writers: Vec<OwnedFd>, stats: &mut ImportStats) {
    use crate::dmabuf::sync::{signalled_within, WRITER_WAIT_LIMIT};
    for sync_file in writers {
        if !signalled_within(&sync_file, WRITER_WAIT_LIMIT) {
            tracing::warn!("DMA-BUF: writers still busy after {WRITER_WAIT_LIMIT:?}; reading the buffer anyway");
            stats.sync_timeouts += 1;
        }
    }
}

impl Renderer {
    /// Before the GPU reads a buffer in place: the next submission (the frame) waits on
    /// each writer's fence as a semaphore, where the driver imports sync files; the
    /// CPU waits for the others.
    fn wait_for_writers_on_gpu(&self, writers: Vec<OwnedFd>, stats: &mut ImportStats) {
        #[cfg(feature = "dmabuf-vulkan")]
        let writers: Vec<OwnedFd> = match self.vulkan.as_ref().filter(|v| v.waits_on_gpu()) {
            Some(importer) => writers
                .into_iter()
                .filter(|sync_file| match importer.wait_on_gpu(&self.queue, sync_file) {
                    Ok(()) => {
                        tracing::debug!("DMA-BUF: the frame waits on the GPU for the buffer's writers");
                        stats.gpu_fence_waits += 1;
                        false
                    }
                    Err(err) => {
                        tracing::warn!("DMA-BUF: cannot wait for the writers on the GPU, waiting here: {err:#}");
                        true
                    }
                })
                .collect(),
            None => writers,
        };
        wait_for_writers_on_cpu(writers, stats);
    }
}

impl SurfaceTexture {
    /// Where a paint may copy this surface's texels from (`paint.rs`): its one plane,
    /// a texture or rows of an imported buffer, where that holds the output's format
    /// (BGRA8) and a copy may read it.
    pub fn texels(&self) -> Option<super::paint::Texels> {
        use super::paint::Texels;
        match (&self.words, self.buffer_planes, self.planes.as_slice()) {
            (Some(buffer), Some([offsets, strides, kinds]), _) => {
                let bgra8 = kinds[0] == super::buffer_source::TEXTURE_BGRA8;
                let copyable = bgra8 && buffer.usage().contains(wgpu::BufferUsages::COPY_SRC);
                copyable.then(|| Texels::Buffer { buffer: buffer.clone(), offset: offsets[0], stride: strides[0] })
            }
            (None, None, [plane]) => {
                let copyable =
                    plane.format() == super::OUTPUT_FORMAT && plane.usage().contains(wgpu::TextureUsages::COPY_SRC);
                copyable.then(|| Texels::Texture(plane.clone()))
            }
            _ => None,
        }
    }

    /// The uniform fields that say where the shader reads this texture's planes.
    pub fn source_uniform(&self) -> super::DrawUniform {
        let mut uniform = <super::DrawUniform as bytemuck::Zeroable>::zeroed();
        if let Some([offsets, strides, kinds]) = self.buffer_planes {
            uniform.source = 1;
            uniform.plane_offset = offsets;
            uniform.plane_stride = strides;
            uniform.plane_kind = kinds;
        } else if let Some(plane) = self.planes.first() {
            // The pipeline key reads the first plane's texel kind (pipelines.rs).
            uniform.plane_kind[0] = super::buffer_source::plane_kind(plane.format());
        }
        uniform
    }
}

/// The bytes of `span` inside `pool`, if they lie inside it.
fn span_slice(pool: &[u8], span: RowSpan) -> Option<&[u8]> {
    let start = usize::try_from(span.stride.checked_mul(span.first)?.checked_add(span.offset)?).ok()?;
    let len = usize::try_from(span.len_bytes()).ok()?;
    pool.get(start..start.checked_add(len)?)
}

/// Turns damage rectangles (y, height) into sorted, merged row ranges (start, count)
/// clamped to the buffer.
pub fn merge_rows(damage: impl Iterator<Item = (i32, i32)>, height: u32) -> Vec<(u32, u32)> {
    let mut spans: Vec<(u32, u32)> = damage
        .filter_map(|(y, h)| {
            let start = y.max(0) as i64;
            let end = (y as i64 + h.max(0) as i64).min(height as i64);
            (end > start).then_some((start as u32, end as u32))
        })
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged.into_iter().map(|(s, e)| (s, e - s)).collect()
}

#[cfg(test)]
mod tests {
    use super::merge_rows;

    #[test]
    fn damage_rows_merge_and_clamp() {
        let rows = merge_rows([(10, 5), (0, 2), (12, 10), (-5, 3), (90, 100)].into_iter(), 100);
        assert_eq!(rows, vec![(0, 2), (10, 12), (90, 10)]);
        assert!(merge_rows([(200, 5), (3, 0), (i32::MAX, i32::MAX)].into_iter(), 100).is_empty());
    }
}
