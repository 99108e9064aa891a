//! The wgpu renderer: each frame's scene (every mapped surface, bottom to top in
//! stacking order) is painted into the targets that show it: the output texture
//! spanning all outputs (headless, nested, captures) or each display's scanout
//! buffers (`paint.rs`).

pub mod adapter;
pub mod buffer_source;
pub mod capture;
pub mod completion;
pub mod compose;
pub mod cursor;
pub mod damage;
pub mod formats;
pub mod occlusion;
pub(crate) mod paint;
pub mod pipelines;
#[cfg(feature = "dmabuf-vulkan")]
mod plane_copy;
pub mod present;
pub mod readback;
pub mod scanout_target;
mod shm_in_place;
pub mod source_map;
pub mod texture;
#[cfg(feature = "dmabuf-vulkan")]
pub mod vulkan;

use bytemuck::{Pod, Zeroable};
use smithay::reexports::wayland_server::backend::ObjectId;

use damage::{frame_damage, DrawKey, Rect};
use smithay::utils::{Physical, Size};

use crate::cli::{DmabufImport, GraphicsApi};

/// The output texture: B,G,R,A bytes in memory, i.e. DRM/wl_shm XRGB8888.
pub const OUTPUT_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Bgra8Unorm;
/// Colour of the output where no window is (opaque, 0x202020).
pub const BACKGROUND: [u8; 4] = [0x20, 0x20, 0x20, 0xff];
/// Dynamic uniform offsets must be multiples of this on every backend.
const UNIFORM_STRIDE: u64 = 256;

/// Per-draw uniform block; layout matches `Draw` in shader.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct DrawUniform {
    pub dst: [f32; 4],
    /// The map into the buffer (`source_map.rs`): origin and x axis, then y axis.
    pub src: [f32; 4],
    pub src_y_axis: [f32; 4],
    pub output_size: [f32; 2],
    pub buffer_size: [f32; 2],
    pub mode: u32,
    pub opaque: u32,
    /// 0: planes are textures; 1: planes are read from an imported buffer.
    pub source: u32,
    /// 1: bilinear filtering (the quad is scaled or between pixels); 0: the texel.
    pub filter: u32,
    /// (Y, Cb, Cr, 1) to R, G, B.
    pub yuv: [[f32; 4]; 3],
    /// For source 1: per plane byte offsets, strides and texel kinds.
    pub plane_offset: [u32; 4],
    pub plane_stride: [u32; 4],
    pub plane_kind: [u32; 4],
    /// Where 4:2:0 chroma samples sit in their 2x2 block, in pixels (x, y, unused, unused).
    pub chroma: [f32; 4],
}

/// One quad of a frame: a surface texture placed on the output.
#[derive(Clone)]
pub struct DrawItem {
    pub bind_group: wgpu::BindGroup,
    /// The texture a paint may copy the quad's texels from instead of drawing it
    /// (`SurfaceTexture::texels`).
    pub texels: Option<paint::Texels>,
    pub uniform: DrawUniform,
    pub surface: ObjectId,
    /// The surface of the window (toplevel or X11) whose tree or popup this is.
    pub window: ObjectId,
    /// The output area whose content changed since the previous frame (new rows uploaded).
    pub content_damage: Option<Rect>,
    /// The client memory the draw reads in place, kept until the frame's GPU work is done.
    pub in_place: Option<InPlaceRead>,
    /// A quad of the cursor (`cursor.rs`), above every window's.
    pub cursor: bool,
}

/// Client memory a frame reads in place (ladder steps 1 to 3): the client's buffer,
/// unreleased so that the client does not write it meanwhile, and a wl_shm host
/// import, whose pool mapping must outlive the GPU's reads.
#[derive(Clone)]
pub struct InPlaceRead {
    pub buffer: smithay::backend::renderer::utils::Buffer,
    pub host: Option<std::sync::Arc<buffer_source::HostImport>>,
}

pub struct Renderer {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_info: wgpu::AdapterInfo,
    pipelines: pipelines::Pipelines,
    uniform_layout: wgpu::BindGroupLayout,
    pub(crate) texture_layout: wgpu::BindGroupLayout,
    uniform_buffer: wgpu::Buffer,
    uniform_bind_group: wgpu::BindGroup,
    output_texture: wgpu::Texture,
    output_view: wgpu::TextureView,
    /// What a capture painted from the scene (a window, the cursor, an output without
    /// the cursor) is painted into before it is read or copied, kept for the next
    /// (`capture.rs`).
    painted_capture_texture: Option<(wgpu::Texture, wgpu::TextureView)>,
    output_size: Size<i32, Physical>,
    /// Canvas pixels per logical unit (`--scale`): surfaces are placed and sized in
    /// logical units and drawn this much larger.
    pub canvas_scale: f64,
    readback: Option<readback::ReadbackBuffer>,
    /// Bytes of composed output copied from the GPU to the CPU, for any reason.
    pub readback_bytes: u64,
    /// Times the event loop waited for the GPU to finish its work (`wait_for_gpu`).
    pub loop_gpu_waits: u64,
    /// Bound at binding 3 by draws whose planes are textures, when the shader can
    /// read planes from imported buffers.
    pub(crate) no_words: Option<wgpu::Buffer>,
    /// Gathers chroma samples (every plane bind group holds it).
    pub(crate) chroma_sampler: wgpu::Sampler,
    /// Buffer imports per wl_buffer.
    pub imports: buffer_source::ImportCache,
    /// CPU-path mappings per wl_buffer plane.
    pub(crate) mappings: crate::dmabuf::cpu::MappingCache,
    /// Every wl_shm host-pointer import alive (`shm_in_place.rs`).
    pub(crate) host_imports: buffer_source::HostImports,
    #[cfg(feature = "dmabuf-vulkan")]
    pub(crate) vulkan: Option<vulkan::VulkanImporter>,
    /// Plane bindings for draws that sample nothing (the background).
    empty_planes: wgpu::BindGroup,
    /// The compositor's cursor.
    arrow: cursor::Arrow,
    #[cfg(feature = "dmabuf-vulkan")]
    empty_texture: wgpu::Texture,
    /// The quads of the last frame, to find what changed.
    previous: Vec<DrawKey>,
    /// What the last frame changed, leaving the cursor out.
    damage_without_cursor: Option<Rect>,
    /// What the last frame draws, for each target to paint (`paint.rs`).
    scene: paint::Scene,
    /// The scene draws memory that is gone (a retired wl_shm host import): no target
    /// is painted from it; the next frame replaces it.
    pub(crate) scene_stale: bool,
    /// The frame of `history` the output texture holds, if any.
    canvas_holds: Option<u64>,
    /// Times the output texture was painted: on KMS, only for captures and where
    /// the renderer cannot write an output's scanout buffers.
    pub canvas_paints: u64,
    /// Captures painted straight into a client's dma-buf (`scanout_target.rs`).
    pub dmabuf_captures: u64,
    /// Paints of a display's scanout buffers that drew something, and of its cursor
    /// plane's buffers (`scanout_target.rs`).
    pub scanout_paints: u64,
    pub cursor_plane_paints: u64,
    /// Quads painted as a copy of their texels rather than drawn (`paint.rs`).
    pub texel_copies: u64,
    /// The next frame counts as changed everywhere (nothing shown yet, resized, or a
    /// frame was shown without composition).
    full_damage: bool,
    /// The windows captured alone (`capture.rs`), whose own damage `render` gathers.
    watched_windows: Vec<ObjectId>,
    /// What changed of each watched window since it was last taken (canvas pixels).
    window_damage: Vec<(ObjectId, Rect)>,
    /// What each recent frame changed, for each target to repaint only that.
    pub(crate) history: damage::History,
    /// The window each frame is presented into (nested backend only).
    window: Option<present::WindowSurface>,
    /// GPU work not known to be finished, and what it holds.
    pub completions: completion::Completions,
    /// 4:2:0 planes copied from imported buffers, to submit first (`plane_copy.rs`).
    #[cfg(feature = "dmabuf-vulkan")]
    plane_copies: std::sync::Mutex<plane_copy::PlaneCopies>,
}

impl Renderer {
    /// `window`: present each frame into this window, besides keeping it for screencopy.
    /// `display_gpu`: the PCI bus id of the GPU showing the frames, whose adapter is preferred.
    pub fn new(
        api: GraphicsApi,
        import: DmabufImport,
        output_size: Size<i32, Physical>,
        window: Option<&adapter::WindowTarget>,
        display_gpu: Option<&str>,
    ) -> anyhow::Result<Self> {
        let opened = adapter::open(api, window, display_gpu)?;
        let window = match opened.surface {
            Some(surface) => Some(present::WindowSurface::new(surface, &opened.adapter, &opened.device, output_size)?),
            None => None,
        };
        let (adapter, device, queue) = (opened.adapter, opened.device, opened.queue);
        let adapter_info = adapter.get_info();
        // A validation error is a bug of ours, never a reason to take every client down.
        device.on_uncaptured_error(std::sync::Arc::new(|err| tracing::error!("wgpu error: {err}")));

        #[cfg(feature = "dmabuf-vulkan")]
        let vulkan = match import {
            DmabufImport::Ladder => vulkan::VulkanImporter::new(&device, &opened.vulkan_extensions),
            DmabufImport::Cpu => None,
        };
        #[cfg(feature = "dmabuf-vulkan")]
        match (&vulkan, import) {
            (Some(importer), _) => tracing::info!("DMA-BUF import ladder: {}", importer.describe()),
            (None, DmabufImport::Cpu) => tracing::info!("DMA-BUF: --dmabuf-import cpu, using CPU copy"),
            (None, DmabufImport::Ladder) => tracing::info!("DMA-BUF: the renderer is not on Vulkan, using CPU copy"),
        }
        // A build without the ladder has the CPU step only (logged with the linux-dmabuf global).
        #[cfg(not(feature = "dmabuf-vulkan"))]
        let _ = import;
        #[cfg(feature = "dmabuf-vulkan")]
        let buffer_source = vulkan.as_ref().is_some_and(|v| v.dmabuf_buffers || v.host_pointers);
        #[cfg(not(feature = "dmabuf-vulkan"))]
        let buffer_source = false;

        // One module for each plane source the renderer has (render/buffer_source.rs).
        let sources = if buffer_source { 0..2 } else { 0..1 };
        let shaders = sources
            .map(|source| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some("axiom compose shader"),
                    source: wgpu::ShaderSource::Wgsl(buffer_source::shader_source(buffer_source, source).into()),
                })
            })
            .collect();
        let uniform_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("draw uniform"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(std::mem::size_of::<DrawUniform>() as u64),
                },
                count: None,
            }],
        });
        let texture_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("surface planes"),
            entries: &plane_layout_entries(buffer_source),
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("compose"),
            bind_group_layouts: &[Some(&uniform_layout), Some(&texture_layout)],
            immediate_size: 0,
        });
        let pipelines = pipelines::Pipelines::new(shaders, layout);

        let (uniform_buffer, uniform_bind_group) = create_uniforms(&device, &uniform_layout, 64);
        // Several outputs side by side can ask for more than the device can hold.
        let most = device.limits().max_texture_dimension_2d;
        anyhow::ensure!(
            output_size.w as u32 <= most && output_size.h as u32 <= most,
            "the outputs need a {}x{} canvas; this GPU holds at most {most}x{most}",
            output_size.w,
            output_size.h
        );
        let (output_texture, output_view) = create_output(&device, output_size);
        let no_words = buffer_source.then(|| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("no words"),
                size: 4,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        });
        let completions = completion::Completions::new(&device)?;
        let empty_texture = create_empty_texture(&device);
        // Gathers chroma samples, edges clamped (render/shader.wgsl, chroma_sampled).
        let chroma_sampler =
            device.create_sampler(&wgpu::SamplerDescriptor { label: Some("chroma"), ..Default::default() });
        let empty_planes = plane_bind_group(
            &device,
            &texture_layout,
            &[empty_texture.create_view(&Default::default())],
            no_words.as_ref(),
            &chroma_sampler,
        );
        let arrow = cursor::Arrow::new(&device, &queue, &texture_layout, no_words.as_ref(), &chroma_sampler);
        tracing::info!(
            adapter = %adapter_info.name,
            backend = ?adapter_info.backend,
            device_type = ?adapter_info.device_type,
            driver = %adapter_info.driver_info,
            "renderer ready"
        );
        Ok(Self {
            adapter,
            device,
            queue,
            adapter_info,
            pipelines,
            uniform_layout,
            texture_layout,
            uniform_buffer,
            uniform_bind_group,
            output_texture,
            output_view,
            output_size,
            canvas_scale: 1.0,
            readback: None,
            readback_bytes: 0,
            loop_gpu_waits: 0,
            no_words,
            chroma_sampler,
            imports: Default::default(),
            mappings: Default::default(),
            host_imports: Default::default(),
            #[cfg(feature = "dmabuf-vulkan")]
            vulkan,
            empty_planes,
            arrow,
            #[cfg(feature = "dmabuf-vulkan")]
            empty_texture,
            previous: Vec::new(),
            damage_without_cursor: None,
            scene: Default::default(),
            scene_stale: false,
            canvas_holds: None,
            painted_capture_texture: None,
            canvas_paints: 0,
            dmabuf_captures: 0,
            scanout_paints: 0,
            cursor_plane_paints: 0,
            texel_copies: 0,
            full_damage: true,
            watched_windows: Vec::new(),
            window_damage: Vec::new(),
            history: Default::default(),
            window,
            completions,
            #[cfg(feature = "dmabuf-vulkan")]
            plane_copies: Default::default(),
        })
    }

    pub fn output_size(&self) -> Size<i32, Physical> {
        self.output_size
    }

    /// Commits whose 4:2:0 planes were copied on the GPU into textures (`plane_copy.rs`).
    pub fn plane_copies(&self) -> u64 {
        #[cfg(feature = "dmabuf-vulkan")]
        return self.plane_copies.lock().map_or(0, |copies| copies.count);
        #[cfg(not(feature = "dmabuf-vulkan"))]
        0
    }

    /// Drops what was kept for a destroyed wl_buffer: its Vulkan import and CPU mappings.
    pub fn forget_buffer(&self, id: &ObjectId) {
        self.imports.forget(id);
        self.mappings.forget(id);
    }

    /// The largest texture side this device takes: buffers beyond it cannot be imported.
    pub fn max_texture_dimension(&self) -> u32 {
        self.device.limits().max_texture_dimension_2d
    }

    /// Makes `items` the scene every target paints (`paint.rs`) and records what
    /// changed since the last one. Draws nothing itself: each target (the canvas, a
    /// display's scanout buffer) is painted when it is wanted, with only what changed
    /// since the frame it holds. Returns the changed area, None if nothing changed.
    pub fn render(&mut self, items: &[DrawItem]) -> Option<Rect> {
        let next: Vec<(DrawKey, Option<Rect>)> = items
            .iter()
            .map(|i| {
                let key = DrawKey {
                    surface: i.surface.clone(),
                    window: i.window.clone(),
                    uniform: i.uniform,
                    cursor: i.cursor,
                };
                (key, i.content_damage)
            })
            .collect();
        self.note_window_damage(&next, self.full_damage);
        let (w, h) = (self.output_size.w, self.output_size.h);
        let mut damage = frame_damage(&self.previous, &next);
        // The cursor's quads come last: what changed without them, for captures that leave it out.
        let before = self.previous.iter().take_while(|k| !k.cursor).count();
        let after = next.iter().take_while(|(k, _)| !k.cursor).count();
        let mut without_cursor = frame_damage(&self.previous[..before], &next[..after]);
        if std::mem::take(&mut self.full_damage) {
            damage = Some(Rect { x0: 0, y0: 0, x1: w, y1: h });
            without_cursor = damage;
        }
        self.damage_without_cursor = without_cursor.and_then(|d| d.clamp(w, h));
        self.previous = next.into_iter().map(|(key, _)| key).collect();
        self.scene = paint::Scene::of(items);
        self.scene_stale = false;
        let damage = damage.and_then(|d| d.clamp(w, h));
        // Damage without the cursor lies within the whole damage; recorded whichever there is.
        let changed = damage.or(self.damage_without_cursor)?;
        self.history.record(changed, self.damage_without_cursor);
        damage
    }

    /// What the last frame (`render`) changed, leaving the cursor out.
    pub fn damage_without_cursor(&self) -> Option<Rect> {
        self.damage_without_cursor
    }

    /// Submits `encoder`'s work, which reads `in_place` until done, and the GPU waits
    /// handed out since the last submission; returns its id (`completion.rs`).
    pub(crate) fn submit(
        &mut self,
        encoder: wgpu::CommandEncoder,
        in_place: Vec<InPlaceRead>,
    ) -> completion::SubmissionId {
        // Whatever submission comes first takes the GPU waits handed out so far.
        #[cfg(feature = "dmabuf-vulkan")]
        let waits_on_client = self.vulkan.as_ref().is_some_and(|v| v.gpu_waits_handed());
        #[cfg(not(feature = "dmabuf-vulkan"))]
        let waits_on_client = false;
        #[cfg(feature = "dmabuf-vulkan")]
        let copies = self.plane_copies.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        #[cfg(not(feature = "dmabuf-vulkan"))]
        let copies: Option<wgpu::CommandBuffer> = None;
        let index = self.queue.submit(copies.into_iter().chain([encoder.finish()]));
        let id = self.completions.submitted(index, in_place, waits_on_client);
        #[cfg(feature = "dmabuf-vulkan")]
        if let Some(importer) = &self.vulkan {
            importer.gpu_waits_submitted(id);
        }
        id
    }

    /// The GPU has finished submission `id` and every one before it: the client memory
    /// they read in place is let go, and the semaphores they waited on destroyed.
    pub fn finished_through(&mut self, id: completion::SubmissionId) {
        self.completions.finished_through(id);
        #[cfg(feature = "dmabuf-vulkan")]
        if let Some(importer) = &self.vulkan {
            importer.retire_gpu_waits_through(id);
        }
    }

    /// Waits until the GPU has finished everything submitted so far.
    pub(crate) fn wait_for_gpu(&mut self) -> anyhow::Result<()> {
        self.loop_gpu_waits += 1;
        self.device.poll(wgpu::PollType::wait_indefinitely())?;
        self.finished_through(self.completions.last());
        Ok(())
    }

    /// The (fourcc, modifier) pairs beyond LINEAR that the import ladder samples in
    /// place (step 1 with tiled modifiers the driver reports); none without it.
    pub fn tiled_format_modifiers(&self) -> Vec<(u32, u64)> {
        #[cfg(feature = "dmabuf-vulkan")]
        if let Some(importer) = &self.vulkan {
            return importer.tiled_format_modifiers();
        }
        Vec::new()
    }

    /// A view of a 1x1 texture, for plane slots nothing reads.
    #[cfg(feature = "dmabuf-vulkan")]
    pub(crate) fn empty_view(&self) -> wgpu::TextureView {
        self.empty_texture.create_view(&Default::default())
    }

    fn ensure_uniform_capacity(&mut self, draws: usize) {
        let needed = (draws.max(1) as u64) * UNIFORM_STRIDE;
        if self.uniform_buffer.size() < needed {
            let capacity = needed.next_power_of_two() / UNIFORM_STRIDE;
            let (buffer, bind_group) = create_uniforms(&self.device, &self.uniform_layout, capacity);
            self.uniform_buffer = buffer;
            self.uniform_bind_group = bind_group;
        }
    }
}

fn create_uniforms(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    draws: u64,
) -> (wgpu::Buffer, wgpu::BindGroup) {
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("draw uniforms"),
        size: draws * UNIFORM_STRIDE,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("draw uniforms"),
        layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &buffer,
                offset: 0,
                size: wgpu::BufferSize::new(std::mem::size_of::<DrawUniform>() as u64),
            }),
        }],
    });
    (buffer, bind_group)
}

/// Three texture planes and the chroma sampler, and with `buffer_source` the storage
/// buffer planes are read from.
fn plane_layout_entries(buffer_source: bool) -> Vec<wgpu::BindGroupLayoutEntry> {
    // Plane 0 is sampled (fs_sampled) and planes 1 and 2 (chroma) gathered with
    // `chroma_sampler`: filterable formats.
    let mut entries: Vec<_> = [0, 1, 2]
        .map(|binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: true },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
            count: None,
        })
        .into();
    entries.push(wgpu::BindGroupLayoutEntry {
        binding: 4,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
        count: None,
    });
    if buffer_source {
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: 3,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: true },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
    }
    entries
}

impl Renderer {
    /// A surface texture's plane bind group (see `plane_bind_group`).
    pub(crate) fn planes_bind_group(
        &self,
        views: &[wgpu::TextureView],
        words: Option<&wgpu::Buffer>,
    ) -> wgpu::BindGroup {
        plane_bind_group(&self.device, &self.texture_layout, views, words, &self.chroma_sampler)
    }
}

/// The plane bind group: `views` for the three texture planes (the first repeated where
/// fewer), `words` for planes in a buffer (the placeholder where none), and the sampler
/// chroma planes are interpolated with.
pub(crate) fn plane_bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    views: &[wgpu::TextureView],
    words: Option<&wgpu::Buffer>,
    chroma_sampler: &wgpu::Sampler,
) -> wgpu::BindGroup {
    let view = |i: usize| views.get(i).unwrap_or(&views[0]);
    let mut entries: Vec<wgpu::BindGroupEntry<'_>> = (0..3)
        .map(|i| wgpu::BindGroupEntry { binding: i as u32, resource: wgpu::BindingResource::TextureView(view(i)) })
        .collect();
    entries.push(wgpu::BindGroupEntry { binding: 4, resource: wgpu::BindingResource::Sampler(chroma_sampler) });
    if let Some(words) = words {
        entries.push(wgpu::BindGroupEntry { binding: 3, resource: words.as_entire_binding() });
    }
    device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some("surface planes"), layout, entries: &entries })
}

/// A 1x1 texture for plane slots that nothing samples.
fn create_empty_texture(device: &wgpu::Device) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some("empty plane"),
        size: wgpu::Extent3d { width: 1, height: 1, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::TEXTURE_BINDING,
        view_formats: &[],
    })
}

fn create_output(device: &wgpu::Device, size: Size<i32, Physical>) -> (wgpu::Texture, wgpu::TextureView) {
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("output"),
        size: wgpu::Extent3d { width: size.w as u32, height: size.h as u32, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: OUTPUT_FORMAT,
        // COPY_DST: paints copy opaque quads texel for texel (paint.rs).
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let view = texture.create_view(&Default::default());
    (texture, view)
}
