//! Render pipelines specialised per sample mode, plane source and filter (WGSL
//! override constants), so that each draw runs only its own branch of the
//! shader: a software rasteriser otherwise pays for every branch.

use std::collections::HashMap;

use super::OUTPUT_FORMAT;

pub struct Pipelines {
    shader: wgpu::ShaderModule,
    layout: wgpu::PipelineLayout,
    cache: HashMap<(u32, u32, u32), wgpu::RenderPipeline>,
}

impl Pipelines {
    pub fn new(shader: wgpu::ShaderModule, layout: wgpu::PipelineLayout) -> Self {
        Self { shader, layout, cache: HashMap::new() }
    }

    /// Builds the pipeline for (mode, source, filter) if it does not exist yet.
    pub fn prepare(&mut self, device: &wgpu::Device, mode: u32, source: u32, filter: u32) {
        if self.cache.contains_key(&(mode, source, filter)) {
            return;
        }
        let premultiplied = wgpu::BlendComponent {
            src_factor: wgpu::BlendFactor::One,
            dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
            operation: wgpu::BlendOperation::Add,
        };
        let constants = [("MODE", f64::from(mode)), ("SOURCE", f64::from(source)), ("FILTER", f64::from(filter))];
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("compose"),
            layout: Some(&self.layout),
            vertex: wgpu::VertexState {
                module: &self.shader,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: &self.shader,
                entry_point: Some("fs_main"),
                compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
                targets: &[Some(wgpu::ColorTargetState {
                    format: OUTPUT_FORMAT,
                    blend: Some(wgpu::BlendState { color: premultiplied, alpha: premultiplied }),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            primitive: wgpu::PrimitiveState { topology: wgpu::PrimitiveTopology::TriangleStrip, ..Default::default() },
            depth_stencil: None,
            multisample: Default::default(),
            multiview_mask: None,
            cache: None,
        });
        self.cache.insert((mode, source, filter), pipeline);
    }

    /// The pipeline for (mode, source, filter); `prepare` must have been called for it.
    pub fn get(&self, mode: u32, source: u32, filter: u32) -> Option<&wgpu::RenderPipeline> {
        self.cache.get(&(mode, source, filter))
    }
}
