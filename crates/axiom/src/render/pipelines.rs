//! Render pipelines specialised per sample mode and plane source (WGSL override
//! constants; each plane source also has a shader module of its own, with its chroma
//! path: render/buffer_source.rs) and filter (an entry point), so that each draw runs
//! only its own branch of the shader: a software rasteriser otherwise pays for every
//! branch. Opaque quads are drawn without blending, which would read back every pixel
//! beneath them to the same result.

use std::collections::HashMap;

use super::buffer_source::{TEXTURE_BGRA8, TEXTURE_RGBA8};
use super::formats::SampleMode;
use super::OUTPUT_FORMAT;

/// What a pipeline is specialised on: a draw's sample mode, plane source, filter and
/// whether it is opaque (`DrawUniform`'s fields of those names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub mode: u32,
    pub source: u32,
    pub filter: u32,
    pub opaque: u32,
    /// Drawn texel for texel from textures with a plain sample at an interpolated point:
    /// 8-bit RGB(A) (`fs_sampled`), or NV12 and YUV420 (`fs_yuv_sampled`).
    pub sampled: bool,
}

impl Key {
    pub fn of(uniform: &super::DrawUniform) -> Self {
        let eight_bit_rgba = [TEXTURE_RGBA8, TEXTURE_BGRA8].contains(&uniform.plane_kind[0]);
        let texel_for_texel = uniform.source == 0 && uniform.filter == 0;
        let sampled = texel_for_texel
            && ((uniform.mode == SampleMode::Direct as u32 && eight_bit_rgba) || EIGHT_BIT_420.contains(&uniform.mode));
        Self { mode: uniform.mode, source: uniform.source, filter: uniform.filter, opaque: uniform.opaque, sampled }
    }
}

/// 4:2:0 formats with 8-bit planes in textures, drawn texel for texel by `fs_yuv_sampled`.
const EIGHT_BIT_420: [u32; 2] = [SampleMode::Nv12 as u32, SampleMode::Yuv420 as u32];

pub struct Pipelines {
    /// The compose shader for each plane source (`Key::source`).
    shaders: Vec<wgpu::ShaderModule>,
    layout: wgpu::PipelineLayout,
    cache: HashMap<Key, wgpu::RenderPipeline>,
}

impl Pipelines {
    pub fn new(shaders: Vec<wgpu::ShaderModule>, layout: wgpu::PipelineLayout) -> Self {
        Self { shaders, layout, cache: HashMap::new() }
    }

    /// Builds the pipeline for `key` if it does not exist yet.
    pub fn prepare(&mut self, device: &wgpu::Device, key: Key) {
        if self.cache.contains_key(&key) {
            return;
        }
        let Some(shader) = self.shaders.get(key.source as usize).or(self.shaders.first()) else { return };
        let premultiplied = wgpu::BlendComponent {
            src_factor: wgpu::BlendFactor::One,
            dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
            operation: wgpu::BlendOperation::Add,
        };
        let constants =
            [("MODE", f64::from(key.mode)), ("SOURCE", f64::from(key.source)), ("OPAQUE", f64::from(key.opaque))];
        // An opaque quad's alpha is one: blending would give the source as it is.
        let blend = (key.opaque == 0).then_some(wgpu::BlendState { color: premultiplied, alpha: premultiplied });
        let opaque_alpha = key.mode == SampleMode::OpaqueAlpha as u32;
        let write_mask = if opaque_alpha { wgpu::ColorWrites::ALPHA } else { wgpu::ColorWrites::ALL };
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("compose"),
            layout: Some(&self.layout),
            vertex: wgpu::VertexState {
                module: shader,
                entry_point: Some(match key {
                    Key { sampled: true, mode, .. } if EIGHT_BIT_420.contains(&mode) => "vs_yuv_sampled",
                    Key { sampled: true, .. } => "vs_sampled",
                    _ => "vs_main",
                }),
                compilation_options: Default::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: shader,
                entry_point: Some(match key {
                    _ if opaque_alpha => "fs_opaque_alpha",
                    Key { sampled: true, mode, .. } if EIGHT_BIT_420.contains(&mode) => "fs_yuv_sampled",
                    Key { sampled: true, .. } => "fs_sampled",
                    Key { filter: 1, .. } => "fs_filtered",
                    _ => "fs_main",
                }),
                compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
                targets: &[Some(wgpu::ColorTargetState { format: OUTPUT_FORMAT, blend, write_mask })],
            }),
            primitive: wgpu::PrimitiveState { topology: wgpu::PrimitiveTopology::TriangleStrip, ..Default::default() },
            depth_stencil: None,
            multisample: Default::default(),
            multiview_mask: None,
            cache: None,
        });
        self.cache.insert(key, pipeline);
    }

    /// The pipeline for `key`; `prepare` must have been called for it.
    pub fn get(&self, key: Key) -> Option<&wgpu::RenderPipeline> {
        self.cache.get(&key)
    }
}
