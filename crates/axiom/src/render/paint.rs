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
use super::{pipelines, DrawItem, DrawUniform, InPlaceRead, Renderer, BACKGROUND, OUTPUT_FORMAT, UNIFORM_STRIDE};

/// The quads of the last composed frame, bottom first, in canvas pixels, and the
/// client memory they read in place (kept until a paint's GPU work is done).
#[derive(Default)]
pub(crate) struct Scene {
    draws: Vec<Quad>,
    /// The window (its toplevel surface) each draw belongs to.
    windows: Vec<ObjectId>,
    /// Whether each draw is the cursor's.
    cursor: Vec<bool>,
    in_place: Vec<InPlaceRead>,
}

impl Scene {
    pub(crate) fn of(items: &[DrawItem]) -> Self {
        Scene {
            draws: items.iter().map(Quad::of).collect(),
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
            quads: items.iter().map(Quad::of).collect(),
            covered: false,
            in_place: items.iter().filter_map(|i| i.in_place.clone()).collect(),
        };
        self.draw(target, area, area, draws, Under::Transparent)
    }

    /// Where the scene draws the cursor (canvas pixels), if it does: what a frame
    /// composed now shows, which the pointer may have left since.
    pub fn scene_cursor_area(&self) -> Option<Rect> {
        let cursor = self.scene.draws.iter().zip(&self.scene.cursor).filter(|(_, cursor)| **cursor);
        cursor.map(|(quad, _)| Rect::from_xywh(quad.uniform.dst)).reduce(Rect::union)
    }

    /// The scene's quads that show in `damage` (those `quads` names, where given),
    /// bottom first: from the last one that covers it all with opaque pixels; and
    /// whether there is such a quad (then nothing shows under them).
    fn visible_draws(&self, damage: Rect, quads: Option<Quads<'_>>) -> (Vec<Quad>, bool) {
        let chosen: Vec<&Quad> = self
            .scene
            .draws
            .iter()
            .zip(self.scene.windows.iter().zip(&self.scene.cursor))
            .filter(|(_, (w, c))| quads.is_none_or(|q| q.include(w, **c)))
            .map(|(draw, _)| draw)
            .collect();
        // Nothing below a quad that covers the whole damage with opaque pixels can show.
        let covering = chosen.iter().rposition(|quad| covers(&quad.uniform, damage));
        // Quads outside the damage (another output's, on a scanout buffer) draw nothing.
        let draws = chosen[covering.unwrap_or(0)..]
            .iter()
            .filter(|quad| Rect::from_xywh(quad.uniform.dst).intersect(damage).is_some())
            .map(|&quad| quad.clone())
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
        let Draws { quads, covered, in_place } = draws;
        let solid = |colour: [f32; 4], mode: SampleMode| DrawUniform {
            dst: [damage.x0 as f32, damage.y0 as f32, (damage.x1 - damage.x0) as f32, (damage.y1 - damage.y0) as f32],
            buffer_size: [1.0, 1.0],
            mode: mode as u32,
            opaque: 1,
            yuv: [colour, [0.0; 4], [0.0; 4]],
            ..DrawUniform::zeroed()
        };
        let plain = |uniform| Quad { uniform, bind_group: self.empty_planes.clone(), texels: None };
        // The background is drawn under the damaged area; transparency clears the target.
        let background = (under == Under::Background && !covered)
            .then(|| plain(solid(BACKGROUND.map(|c| f32::from(c) / 255.0), SampleMode::Solid)));
        // Over the background, opaque quads drawn texel for texel from texels in the
        // target's format are copied, which costs a software rasteriser a fraction of
        // drawing them; the copies leave alpha as the buffer had it (an X byte), so it
        // is set to one over the damage last (every pixel there is opaque).
        let copies = under == Under::Background;
        let mut steps: Vec<Step<'_>> = Vec::new();
        for quad in background.iter().chain(&quads) {
            match copies.then(|| texel_copy(quad, target, area, damage)).flatten() {
                Some(copy) => steps.push(Step::Copy(quad, copy)),
                None => match steps.last_mut() {
                    Some(Step::Draw(group)) => group.push(quad),
                    _ => steps.push(Step::Draw(vec![quad])),
                },
            }
        }
        let copied = steps.iter().filter(|step| matches!(step, Step::Copy(..))).count();
        self.texel_copies += copied as u64;
        let opaque_alpha = (copied > 0).then(|| plain(solid([0.0, 0.0, 0.0, 1.0], SampleMode::OpaqueAlpha)));
        if let Some(quad) = &opaque_alpha {
            match steps.last_mut() {
                Some(Step::Draw(group)) => group.push(quad),
                _ => steps.push(Step::Draw(vec![quad])),
            }
        }

        // The target's pixel (0, 0) is the canvas's (area.x0, area.y0).
        let size = [(area.x1 - area.x0) as f32, (area.y1 - area.y0) as f32];
        let drawn: Vec<&Quad> = steps.iter().flat_map(|step| step.drawn().iter().copied()).collect();
        self.ensure_uniform_capacity(drawn.len());
        let mut uniforms = vec![0u8; drawn.len() * UNIFORM_STRIDE as usize];
        for (i, quad) in drawn.iter().enumerate() {
            let mut uniform = quad.uniform;
            uniform.dst[0] -= area.x0 as f32;
            uniform.dst[1] -= area.y0 as f32;
            uniform.output_size = size;
            let at = i * UNIFORM_STRIDE as usize;
            uniforms[at..at + std::mem::size_of::<DrawUniform>()].copy_from_slice(bytemuck::bytes_of(&uniform));
        }
        self.queue.write_buffer(&self.uniform_buffer, 0, &uniforms);
        for quad in &drawn {
            self.pipelines.prepare(&self.device, pipelines::Key::of(&quad.uniform));
        }

        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("frame") });
        let mut load = match under {
            Under::Transparent if !covered => wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
            _ => wgpu::LoadOp::Load,
        };
        // Nothing to draw at all: the clear still happens.
        if steps.is_empty() {
            steps.push(Step::Draw(Vec::new()));
        }
        let mut index = 0;
        for step in &steps {
            let group = match step {
                Step::Copy(quad, copy) => {
                    copy_texels(&mut encoder, quad, target, *copy);
                    continue;
                }
                Step::Draw(group) => group,
            };
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
            load = wgpu::LoadOp::Load;
            pass.set_scissor_rect(
                (damage.x0 - area.x0) as u32,
                (damage.y0 - area.y0) as u32,
                (damage.x1 - damage.x0) as u32,
                (damage.y1 - damage.y0) as u32,
            );
            for quad in group {
                let offset = (index as u64 * UNIFORM_STRIDE) as u32;
                index += 1;
                let Some(pipeline) = self.pipelines.get(pipelines::Key::of(&quad.uniform)) else { continue };
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &self.uniform_bind_group, &[offset]);
                pass.set_bind_group(1, &quad.bind_group, &[]);
                pass.draw(0..4, 0..1);
            }
        }
        self.submit(encoder, in_place)
    }
}

/// What a paint does, in order: copy a quad's texels (`texel_copy`), or
/// draw some quads in one render pass.
enum Step<'a> {
    Copy(&'a Quad, TexelCopy),
    Draw(Vec<&'a Quad>),
}

impl<'a> Step<'a> {
    fn drawn(&self) -> &[&'a Quad] {
        match self {
            Step::Copy(..) => &[],
            Step::Draw(group) => group,
        }
    }
}

/// One quad of a paint: its uniform, its planes, and where its texels may be copied
/// from (`DrawItem::texels`).
#[derive(Clone)]
pub(crate) struct Quad {
    uniform: DrawUniform,
    bind_group: wgpu::BindGroup,
    texels: Option<Texels>,
}

impl Quad {
    fn of(item: &DrawItem) -> Self {
        Quad { uniform: item.uniform, bind_group: item.bind_group.clone(), texels: item.texels.clone() }
    }
}

/// Where an opaque quad's texels may be copied from, in the output's format (BGRA8).
#[derive(Clone)]
pub enum Texels {
    /// A texture of the surface's (an upload).
    Texture(wgpu::Texture),
    /// Rows of an imported buffer (the client's memory): the plane's byte offset and stride.
    Buffer { buffer: wgpu::Buffer, offset: u32, stride: u32 },
}

/// A copy of a quad's texels into a paint's target, where drawing it gives the same:
/// `size` texels from `from` in its texels to `to` in the target.
#[derive(Clone, Copy)]
struct TexelCopy {
    from: (u32, u32),
    to: (u32, u32),
    size: wgpu::Extent3d,
}

/// How `quad` may be copied into `target` (its pixel (0, 0) at the canvas's (area.x0,
/// area.y0)) where it lies in `damage` (canvas pixels), rather than drawn: an opaque
/// quad whose every pixel shows one texel, unturned and unmirrored, from texels in the
/// target's format, which a copy can read there.
fn texel_copy(quad: &Quad, target: &wgpu::TextureView, area: Rect, damage: Rect) -> Option<TexelCopy> {
    let texels = quad.texels.as_ref()?;
    let u = &quad.uniform;
    let [dx, dy, dw, dh] = u.dst;
    let [ox, oy, xx, xy] = u.src;
    let [yx, yy, _, _] = u.src_y_axis;
    let plain = u.opaque == 1 && u.filter == 0 && u.mode == SampleMode::Direct as u32;
    let unturned = xx == dw && yy == dh && xy == 0.0 && yx == 0.0;
    let target_texture = target.texture();
    let writable =
        target_texture.format() == OUTPUT_FORMAT && target_texture.usage().contains(wgpu::TextureUsages::COPY_DST);
    if !(plain && unturned && writable) {
        return None;
    }
    let region = Rect::from_xywh(u.dst).intersect(damage)?.intersect(area)?;
    // The texel under the region's corner; the map is a whole-pixel translation.
    let (sx, sy) = (ox + region.x0 as f32 - dx, oy + region.y0 as f32 - dy);
    let (w, h) = ((region.x1 - region.x0) as u32, (region.y1 - region.y0) as u32);
    let [bw, bh] = u.buffer_size.map(|v| v as u32);
    // In u64: origins and sizes come from the client's buffer and viewport.
    let inside = |origin: f32, len: u32, size: u32| {
        origin >= 0.0 && origin.fract() == 0.0 && origin as u64 + u64::from(len) <= u64::from(size)
    };
    let (tx, ty) = ((region.x0 - area.x0) as u32, (region.y0 - area.y0) as u32);
    let target_inside = u64::from(tx) + u64::from(w) <= u64::from(target_texture.width())
        && u64::from(ty) + u64::from(h) <= u64::from(target_texture.height());
    if !(inside(sx, w, bw) && inside(sy, h, bh) && target_inside) {
        return None;
    }
    let copy = TexelCopy { from: (sx as u32, sy as u32), to: (tx, ty), size: extent(w, h) };
    let readable = match texels {
        Texels::Texture(texture) => texture.format() == OUTPUT_FORMAT && texture.size() == extent(bw, bh),
        Texels::Buffer { buffer, offset, stride } => {
            // A copy reads rows a multiple of 256 bytes apart from a 4-byte-aligned start.
            let start = buffer_start(*offset, *stride, copy.from);
            let end = start + u64::from(*stride) * u64::from(h - 1) + u64::from(w) * 4;
            stride % wgpu::COPY_BYTES_PER_ROW_ALIGNMENT == 0 && start.is_multiple_of(4) && end <= buffer.size()
        }
    };
    readable.then_some(copy)
}

fn extent(width: u32, height: u32) -> wgpu::Extent3d {
    wgpu::Extent3d { width, height, depth_or_array_layers: 1 }
}

/// The byte of a buffer's BGRA8 plane at `offset`, rows `stride` apart, where texel
/// `(x, y)` starts.
fn buffer_start(offset: u32, stride: u32, (x, y): (u32, u32)) -> u64 {
    u64::from(offset) + u64::from(y) * u64::from(stride) + u64::from(x) * 4
}

/// Makes `copy` (from `texel_copy`) of `quad`'s texels into `target`.
fn copy_texels(encoder: &mut wgpu::CommandEncoder, quad: &Quad, target: &wgpu::TextureView, copy: TexelCopy) {
    let Some(texels) = &quad.texels else { return };
    let destination = wgpu::TexelCopyTextureInfo {
        texture: target.texture(),
        mip_level: 0,
        origin: wgpu::Origin3d { x: copy.to.0, y: copy.to.1, z: 0 },
        aspect: wgpu::TextureAspect::All,
    };
    match texels {
        Texels::Texture(texture) => {
            let source = wgpu::TexelCopyTextureInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d { x: copy.from.0, y: copy.from.1, z: 0 },
                aspect: wgpu::TextureAspect::All,
            };
            encoder.copy_texture_to_texture(source, destination, copy.size);
        }
        Texels::Buffer { buffer, offset, stride } => {
            let layout = wgpu::TexelCopyBufferLayout {
                offset: buffer_start(*offset, *stride, copy.from),
                bytes_per_row: Some(*stride),
                rows_per_image: None,
            };
            encoder.copy_buffer_to_texture(wgpu::TexelCopyBufferInfo { buffer, layout }, destination, copy.size);
        }
    }
}

/// The quads a paint draws, bottom first, and the client memory they read in place.
struct Draws {
    quads: Vec<Quad>,
    /// An opaque quad covers the damage: nothing under the quads shows.
    covered: bool,
    in_place: Vec<InPlaceRead>,
}

/// Whether `uniform`'s quad covers all of `damage` with opaque pixels.
fn covers(uniform: &DrawUniform, damage: Rect) -> bool {
    let r = Rect::from_xywh(uniform.dst);
    uniform.opaque == 1 && r.x0 <= damage.x0 && r.y0 <= damage.y0 && r.x1 >= damage.x1 && r.y1 >= damage.y1
}
