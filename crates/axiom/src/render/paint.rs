//! Painting the last composed scene into a target: the output texture (the canvas
//! that headless and nested outputs show and captures read) or a display's scanout
//! buffer, which composition then draws straight into. Each target remembers the
//! frame of `damage::History` it holds, so a paint repaints only what changed since
//! (for a scanout buffer, since it was last painted, two flips ago); a target nobody
//! looks at is not painted at all.

use bytemuck::Zeroable;

use super::completion::SubmissionId;
use super::damage::Rect;
use super::formats::SampleMode;
use super::{pipelines, DrawItem, DrawUniform, InPlaceRead, Renderer, BACKGROUND, UNIFORM_STRIDE};

/// The quads of the last composed frame, bottom first, in canvas pixels, and the
/// client memory they read in place (kept until a paint's GPU work is done).
#[derive(Default)]
pub(crate) struct Scene {
    draws: Vec<(DrawUniform, wgpu::BindGroup)>,
    in_place: Vec<InPlaceRead>,
}

impl Scene {
    pub(crate) fn of(items: &[DrawItem]) -> Self {
        Scene {
            draws: items.iter().map(|i| (i.uniform, i.bind_group.clone())).collect(),
            in_place: items.iter().filter_map(|i| i.in_place.clone()).collect(),
        }
    }
}

impl Renderer {
    /// Brings the output texture up to the last composed frame; the submission that
    /// does, None where it held it already (or the scene is stale: `scene_stale`).
    pub fn paint_canvas(&mut self) -> Option<SubmissionId> {
        let whole = Rect { x0: 0, y0: 0, x1: self.output_size.w, y1: self.output_size.h };
        let view = self.output_view.clone();
        let (frame, submission) = self.paint(&view, whole, self.canvas_holds)?;
        self.canvas_holds = Some(frame);
        if submission.is_some() {
            self.canvas_paints += 1;
        }
        submission
    }

    /// Paints `area` of the scene (canvas pixels; the target's whole size) into
    /// `target`, which holds frame `holds` of the history (None: unknown), without
    /// waiting for the GPU. Returns the frame it holds then, and the submission that
    /// paints it, None where nothing changed; None at all, painting nothing, while the
    /// scene is stale.
    pub(super) fn paint(
        &mut self,
        target: &wgpu::TextureView,
        area: Rect,
        holds: Option<u64>,
    ) -> Option<(u64, Option<SubmissionId>)> {
        if self.scene_stale {
            return None;
        }
        let frame = self.history.frame();
        let damage = match holds.and_then(|held| self.history.since(held)) {
            // Never painted, or too long ago to know: all of it.
            None => Some(area),
            Some(changed) => changed.and_then(|d| d.intersect(area)),
        };
        let Some(damage) = damage else { return Some((frame, None)) };

        // Draw 0 clears the damaged area to the background; the surfaces follow, bottom first.
        let background = DrawUniform {
            dst: [damage.x0 as f32, damage.y0 as f32, (damage.x1 - damage.x0) as f32, (damage.y1 - damage.y0) as f32],
            buffer_size: [1.0, 1.0],
            mode: SampleMode::Solid as u32,
            opaque: 1,
            yuv: [BACKGROUND.map(|c| f32::from(c) / 255.0), [0.0; 4], [0.0; 4]],
            ..DrawUniform::zeroed()
        };
        let scene = &self.scene.draws;
        // Nothing below a quad that covers the whole damage with opaque pixels can show:
        // start drawing there, and skip the background too.
        let covers = |(uniform, _): &(DrawUniform, wgpu::BindGroup)| {
            let r = Rect::from_xywh(uniform.dst);
            uniform.opaque == 1 && r.x0 <= damage.x0 && r.y0 <= damage.y0 && r.x1 >= damage.x1 && r.y1 >= damage.y1
        };
        let first = scene.iter().rposition(covers);
        let background = first.is_none().then_some((background, self.empty_planes.clone()));
        let visible = &scene[first.unwrap_or(0)..];
        // Quads outside the damage (another output's, on a scanout buffer) draw nothing.
        let touches =
            |(uniform, _): &&(DrawUniform, wgpu::BindGroup)| Rect::from_xywh(uniform.dst).intersect(damage).is_some();
        let draws: Vec<(DrawUniform, wgpu::BindGroup)> =
            background.into_iter().chain(visible.iter().filter(touches).cloned()).collect();
        // The target's pixel (0, 0) is the canvas's (area.x0, area.y0).
        let size = [(area.x1 - area.x0) as f32, (area.y1 - area.y0) as f32];
        self.ensure_uniform_capacity(draws.len());
        let mut uniforms = vec![0u8; draws.len() * UNIFORM_STRIDE as usize];
        for (i, (uniform, _)) in draws.iter().enumerate() {
            let mut uniform = *uniform;
            uniform.dst[0] -= area.x0 as f32;
            uniform.dst[1] -= area.y0 as f32;
            uniform.output_size = size;
            let at = i * UNIFORM_STRIDE as usize;
            uniforms[at..at + std::mem::size_of::<DrawUniform>()].copy_from_slice(bytemuck::bytes_of(&uniform));
        }
        self.queue.write_buffer(&self.uniform_buffer, 0, &uniforms);
        for (uniform, _) in &draws {
            self.pipelines.prepare(&self.device, pipelines::Key::of(uniform));
        }

        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("frame") });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("compose"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: target,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations { load: wgpu::LoadOp::Load, store: wgpu::StoreOp::Store },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_scissor_rect(
                (damage.x0 - area.x0) as u32,
                (damage.y0 - area.y0) as u32,
                (damage.x1 - damage.x0) as u32,
                (damage.y1 - damage.y0) as u32,
            );
            for (i, (uniform, bind_group)) in draws.iter().enumerate() {
                let Some(pipeline) = self.pipelines.get(pipelines::Key::of(uniform)) else { continue };
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &self.uniform_bind_group, &[(i as u64 * UNIFORM_STRIDE) as u32]);
                pass.set_bind_group(1, bind_group, &[]);
                pass.draw(0..4, 0..1);
            }
        }
        let in_place = self.scene.in_place.clone();
        let id = self.submit(encoder, in_place);
        self.completions.composed(id);
        Some((frame, Some(id)))
    }
}
