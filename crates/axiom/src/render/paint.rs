//! Painting the last composed scene into a target: the output texture (the canvas
//! that headless and nested outputs show and captures read) or a display's scanout
//! buffer, which composition then draws straight into. Each target remembers the
//! frame of `damage::History` it holds, so a paint repaints only what changed since
//! (for a scanout buffer, since it was last painted, two flips ago); a target nobody
//! looks at is not painted at all. A window alone (a toplevel capture) is painted
//! from the same scene: its quads only, over transparency, covered parts included;
//! so are the cursor alone, and an output without the cursor (`Quads`).

use bytemuck::Zeroable;
use smithay::reexports::wayland_server::backend::ObjectId;

use super::completion::SubmissionId;
use super::damage::Rect;
use super::formats::SampleMode;
use super::{pipelines, DrawItem, DrawUniform, InPlaceRead, Renderer, BACKGROUND, UNIFORM_STRIDE};

/// The quads of the last composed frame, bottom first, in canvas pixels, and the
/// client memory they read in place (kept until a paint's GPU work is done).
#[derive(Default)]
pub(crate) struct Scene {
    draws: Vec<(DrawUniform, wgpu::BindGroup)>,
    /// The window (its toplevel surface) each draw belongs to.
    windows: Vec<ObjectId>,
    /// Whether each draw is the cursor's.
    cursor: Vec<bool>,
    in_place: Vec<InPlaceRead>,
}

impl Scene {
    pub(crate) fn of(items: &[DrawItem]) -> Self {
        Scene {
            draws: items.iter().map(|i| (i.uniform, i.bind_group.clone())).collect(),
            windows: items.iter().map(|i| i.window.clone()).collect(),
            cursor: items.iter().map(|i| i.cursor).collect(),
            in_place: items.iter().filter_map(|i| i.in_place.clone()).collect(),
        }
    }
}

/// Which of the scene's quads a paint draws, besides all of them.
#[derive(Clone, Copy, Debug)]
pub enum Quads<'a> {
    /// One window's (by its toplevel surface).
    Window(&'a ObjectId),
    /// All but the cursor's.
    AllButCursor,
    /// The cursor's.
    Cursor,
}

impl Quads<'_> {
    fn include(&self, window: &ObjectId, cursor: bool) -> bool {
        match self {
            Quads::Window(w) => *w == window && !cursor,
            Quads::AllButCursor => !cursor,
            Quads::Cursor => cursor,
        }
    }
}

/// What a paint clears its damage to before the quads: the background, drawn under
/// them (a whole-screen target), or transparency (a window painted alone).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Under {
    Background,
    Transparent,
}

impl Renderer {
    /// Brings the output texture up to the last composed frame; the submission that
    /// does, None where it held it already (or the scene is stale: `scene_stale`).
    pub fn paint_canvas(&mut self) -> Option<SubmissionId> {
        let whole = Rect { x0: 0, y0: 0, x1: self.output_size.w, y1: self.output_size.h };
        let view = self.output_view.clone();
        let (frame, submission) = self.paint(&view, whole, self.canvas_holds, true)?;
        self.canvas_holds = Some(frame);
        if submission.is_some() {
            self.canvas_paints += 1;
        }
        submission
    }

    /// Paints `area` of the scene (canvas pixels; the target's whole size) into
    /// `target`, which holds frame `holds` of the history (None: unknown), the cursor
    /// included or not (`cursor`: a display's cursor plane shows it), without waiting
    /// for the GPU. Returns the frame it holds then, and the submission that paints it,
    /// None where nothing changed; None at all, painting nothing, while the scene is
    /// stale.
    pub(super) fn paint(
        &mut self,
        target: &wgpu::TextureView,
        area: Rect,
        holds: Option<u64>,
        cursor: bool,
    ) -> Option<(u64, Option<SubmissionId>)> {
        if self.scene_stale {
            return None;
        }
        let frame = self.history.frame();
        let damage = match holds.and_then(|held| self.history.since(held, cursor)) {
            // Never painted, or too long ago to know: all of it.
            None => Some(area),
            Some(changed) => changed.and_then(|d| d.intersect(area)),
        };
        let Some(damage) = damage else { return Some((frame, None)) };

        let quads = (!cursor).then_some(Quads::AllButCursor);
        let (quads, covered) = self.visible_draws(damage, quads);
        let draws = Draws { quads, covered, in_place: self.scene.in_place.clone() };
        let id = self.draw(target, area, damage, draws, Under::Background);
        self.completions.composed(id);
        Some((frame, Some(id)))
    }

    /// Paints some of the scene's quads (`quads`; canvas pixels, `area` the target's
    /// whole size) into `target` over what `under` says: a window alone over
    /// transparency (what a capture of it shows, parts that other windows cover
    /// included), the cursor alone, or an output's area without the cursor; no
    /// output's frame. None while the scene is stale.
    pub(super) fn paint_alone(
        &mut self,
        target: &wgpu::TextureView,
        quads: Quads<'_>,
        area: Rect,
        under: Under,
    ) -> Option<SubmissionId> {
        if self.scene_stale {
            return None;
        }
        let (quads, covered) = self.visible_draws(area, Some(quads));
        let draws = Draws { quads, covered, in_place: self.scene.in_place.clone() };
        Some(self.draw(target, area, area, draws, under))
    }

    /// Paints `items` (canvas pixels), and nothing else, into `target` over
    /// transparency, its pixel (0, 0) at the canvas's (`area.x0`, `area.y0`): the
    /// cursor's quads for a display's cursor plane, independent of the scene.
    pub(crate) fn paint_items(&mut self, target: &wgpu::TextureView, items: &[DrawItem], area: Rect) -> SubmissionId {
        let draws = Draws {
            quads: items.iter().map(|i| (i.uniform, i.bind_group.clone())).collect(),
            covered: false,
            in_place: items.iter().filter_map(|i| i.in_place.clone()).collect(),
        };
        self.draw(target, area, area, draws, Under::Transparent)
    }

    /// Where the scene draws the cursor (canvas pixels), if it does: what a frame
    /// composed now shows, which the pointer may have left since.
    pub fn scene_cursor_area(&self) -> Option<Rect> {
        let cursor = self.scene.draws.iter().zip(&self.scene.cursor).filter(|(_, cursor)| **cursor);
        cursor.map(|((uniform, _), _)| Rect::from_xywh(uniform.dst)).reduce(Rect::union)
    }

    /// The scene's quads that show in `damage` (those `quads` names, where given),
    /// bottom first: from the last one that covers it all with opaque pixels; and
    /// whether there is such a quad (then nothing shows under them).
    fn visible_draws(&self, damage: Rect, quads: Option<Quads<'_>>) -> (Vec<(DrawUniform, wgpu::BindGroup)>, bool) {
        let chosen: Vec<&(DrawUniform, wgpu::BindGroup)> = self
            .scene
            .draws
            .iter()
            .zip(self.scene.windows.iter().zip(&self.scene.cursor))
            .filter(|(_, (w, c))| quads.is_none_or(|q| q.include(w, **c)))
            .map(|(draw, _)| draw)
            .collect();
        // Nothing below a quad that covers the whole damage with opaque pixels can show.
        let covering = chosen.iter().rposition(|(uniform, _)| covers(uniform, damage));
        // Quads outside the damage (another output's, on a scanout buffer) draw nothing.
        let draws = chosen[covering.unwrap_or(0)..]
            .iter()
            .filter(|(uniform, _)| Rect::from_xywh(uniform.dst).intersect(damage).is_some())
            .map(|&draw| draw.clone())
            .collect();
        (draws, covering.is_some())
    }

    /// Draws `draws` (canvas pixels) into `target`, whose pixel (0, 0) is the canvas's
    /// (area.x0, area.y0), within `damage`, over what `under` says unless an opaque
    /// quad covers it all; returns the submission.
    fn draw(
        &mut self,
        target: &wgpu::TextureView,
        area: Rect,
        damage: Rect,
        draws: Draws,
        under: Under,
    ) -> SubmissionId {
        let Draws { quads: draws, covered, in_place } = draws;
        // The background is draw 0, under the damaged area; transparency clears the target.
        let background = DrawUniform {
            dst: [damage.x0 as f32, damage.y0 as f32, (damage.x1 - damage.x0) as f32, (damage.y1 - damage.y0) as f32],
            buffer_size: [1.0, 1.0],
            mode: SampleMode::Solid as u32,
            opaque: 1,
            yuv: [BACKGROUND.map(|c| f32::from(c) / 255.0), [0.0; 4], [0.0; 4]],
            ..DrawUniform::zeroed()
        };
        let background = (under == Under::Background && !covered).then_some((background, self.empty_planes.clone()));
        let draws: Vec<(DrawUniform, wgpu::BindGroup)> = background.into_iter().chain(draws).collect();
        let load = match under {
            Under::Transparent if !covered => wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
            _ => wgpu::LoadOp::Load,
        };
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
                    ops: wgpu::Operations { load, store: wgpu::StoreOp::Store },
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
        self.submit(encoder, in_place)
    }
}

/// The quads a paint draws, bottom first, and the client memory they read in place.
struct Draws {
    quads: Vec<(DrawUniform, wgpu::BindGroup)>,
    /// An opaque quad covers the damage: nothing under the quads shows.
    covered: bool,
    in_place: Vec<InPlaceRead>,
}

/// Whether `uniform`'s quad covers all of `damage` with opaque pixels.
fn covers(uniform: &DrawUniform, damage: Rect) -> bool {
    let r = Rect::from_xywh(uniform.dst);
    uniform.opaque == 1 && r.x0 <= damage.x0 && r.y0 <= damage.y0 && r.x1 >= damage.x1 && r.y1 >= damage.y1
}
