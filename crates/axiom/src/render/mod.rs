//! The wgpu renderer: one output texture that every mapped surface is
//! composed into, front to back in stacking order.

pub mod adapter;
pub mod compose;
pub mod formats;
pub mod readback;
pub mod texture;

use bytemuck::{Pod, Zeroable};
use smithay::utils::{Physical, Size};

use crate::cli::GraphicsApi;

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
    pub src: [f32; 4],
    pub output_size: [f32; 2],
    pub buffer_size: [f32; 2],
    pub mode: u32,
    pub opaque: u32,
    pub _pad: [u32; 2],
    /// (Y, Cb, Cr, 1) to R, G, B.
    pub yuv: [[f32; 4]; 3],
}

/// One quad of a frame: a surface texture placed on the output.
pub struct DrawItem {
    pub bind_group: wgpu::BindGroup,
    pub uniform: DrawUniform,
}

pub struct Renderer {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_info: wgpu::AdapterInfo,
    pipeline: wgpu::RenderPipeline,
    uniform_layout: wgpu::BindGroupLayout,
    pub(crate) texture_layout: wgpu::BindGroupLayout,
    uniform_buffer: wgpu::Buffer,
    uniform_bind_group: wgpu::BindGroup,
    output_texture: wgpu::Texture,
    output_view: wgpu::TextureView,
    output_size: Size<i32, Physical>,
    readback: Option<readback::ReadbackBuffer>,
}

impl Renderer {
    pub fn new(api: GraphicsApi, output_size: Size<i32, Physical>) -> anyhow::Result<Self> {
        let (adapter, device, queue) = adapter::open(api)?;
        let adapter_info = adapter.get_info();
        // A validation error is a bug of ours, never a reason to take every client down.
        device.on_uncaptured_error(std::sync::Arc::new(|err| tracing::error!("wgpu: {err}")));

        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("axiom compose shader"),
            source: wgpu::ShaderSource::Wgsl(include_str!("shader.wgsl").into()),
        });
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
            entries: &[0, 1, 2].map(|binding| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            }),
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("compose"),
            bind_group_layouts: &[Some(&uniform_layout), Some(&texture_layout)],
            immediate_size: 0,
        });
        let premultiplied = wgpu::BlendComponent {
            src_factor: wgpu::BlendFactor::One,
            dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
            operation: wgpu::BlendOperation::Add,
        };
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("compose"),
            layout: Some(&layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: OUTPUT_FORMAT,
                    blend: Some(wgpu::BlendState { color: premultiplied, alpha: premultiplied }),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            primitive: wgpu::PrimitiveState {
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                ..Default::default()
            },
            depth_stencil: None,
            multisample: Default::default(),
            multiview_mask: None,
            cache: None,
        });

        let (uniform_buffer, uniform_bind_group) = create_uniforms(&device, &uniform_layout, 64);
        let (output_texture, output_view) = create_output(&device, output_size);
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
            pipeline,
            uniform_layout,
            texture_layout,
            uniform_buffer,
            uniform_bind_group,
            output_texture,
            output_view,
            output_size,
            readback: None,
        })
    }

    pub fn output_size(&self) -> Size<i32, Physical> {
        self.output_size
    }

    /// The largest texture side this device takes: buffers beyond it cannot be imported.
    pub fn max_texture_dimension(&self) -> u32 {
        self.device.limits().max_texture_dimension_2d
    }

    /// Draws `items` over the background into the output texture and waits
    /// until the GPU has finished, so that the frame can be reported presented.
    pub fn render(&mut self, items: &[DrawItem]) {
        self.ensure_uniform_capacity(items.len());
        let mut uniforms = vec![0u8; items.len() * UNIFORM_STRIDE as usize];
        for (i, item) in items.iter().enumerate() {
            let at = i * UNIFORM_STRIDE as usize;
            uniforms[at..at + std::mem::size_of::<DrawUniform>()].copy_from_slice(bytemuck::bytes_of(&item.uniform));
        }
        if !uniforms.is_empty() {
            self.queue.write_buffer(&self.uniform_buffer, 0, &uniforms);
        }

        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("frame") });
        {
            let [r, g, b, a] = BACKGROUND.map(|c| f64::from(c) / 255.0);
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("compose"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &self.output_view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations { load: wgpu::LoadOp::Clear(wgpu::Color { r, g, b, a }), store: wgpu::StoreOp::Store },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_pipeline(&self.pipeline);
            for (i, item) in items.iter().enumerate() {
                pass.set_bind_group(0, &self.uniform_bind_group, &[(i as u64 * UNIFORM_STRIDE) as u32]);
                pass.set_bind_group(1, &item.bind_group, &[]);
                pass.draw(0..4, 0..1);
            }
        }
        self.queue.submit([encoder.finish()]);
        if let Err(err) = self.device.poll(wgpu::PollType::wait_indefinitely()) {
            tracing::error!("waiting for the frame failed: {err}");
        }
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

fn create_uniforms(device: &wgpu::Device, layout: &wgpu::BindGroupLayout, draws: u64) -> (wgpu::Buffer, wgpu::BindGroup) {
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

fn create_output(device: &wgpu::Device, size: Size<i32, Physical>) -> (wgpu::Texture, wgpu::TextureView) {
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("output"),
        size: wgpu::Extent3d { width: size.w as u32, height: size.h as u32, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: OUTPUT_FORMAT,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = texture.create_view(&Default::default());
    (texture, view)
}
