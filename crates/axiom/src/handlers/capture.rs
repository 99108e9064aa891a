//! Captures of what outputs show, and of one window alone, answered from the
//! repaint step for both capture protocols: zwlr_screencopy (`screencopy.rs`, outputs)
//! and ext-image-copy-capture (`image_copy_capture.rs`, outputs and toplevels), which
//! only dispatch requests and queue a `PendingCapture`.
//!
//! A capture goes into a wl_shm buffer (the frame read back from the GPU) or, where
//! the GPU can write dma-bufs (`Renderer::writes_dmabufs`) and the protocol so offers
//! them, into the client's LINEAR dma-buf: the scene is painted straight into it
//! where the renderer renders into dma-bufs, else the canvas (or the window, painted
//! into a texture of its own) is copied into it imported as a buffer, on the GPU
//! either way, with no CPU byte of the frame
//! touched; `ready` follows when the GPU is done (`dmabuf_captures=` in the stats
//! line).

use std::time::Duration;

use anyhow::Context;
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::allocator::{Buffer, Fourcc, Modifier};
use smithay::output::Output;
use smithay::reexports::wayland_protocols::ext::image_copy_capture::v1::server::ext_image_copy_capture_frame_v1::{
    ExtImageCopyCaptureFrameV1, FailureReason,
};
use smithay::reexports::wayland_protocols_wlr::screencopy::v1::server::zwlr_screencopy_frame_v1::{
    self, ZwlrScreencopyFrameV1,
};
use smithay::reexports::wayland_server::protocol::{wl_buffer::WlBuffer, wl_output, wl_shm};
use smithay::reexports::wayland_server::Resource;
use smithay::utils::{Physical, Rectangle};
use smithay::wayland::dmabuf::get_dmabuf;
use smithay::wayland::shm::with_buffer_contents;

use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::wayland::foreign_toplevel_list::ForeignToplevelWeakHandle;

use crate::render::capture::{CaptureOf, CaptureTarget};
use crate::render::completion::SubmissionId;
use crate::render::damage::Rect;
use crate::Axiom;

/// What captures write: the output texture's bytes (B,G,R,A in memory), XRGB8888 or
/// ARGB8888 with no conversion.
pub const SHM_FORMATS: [wl_shm::Format; 2] = [wl_shm::Format::Xrgb8888, wl_shm::Format::Argb8888];
pub const DMABUF_FORMATS: [Fourcc; 2] = [Fourcc::Xrgb8888, Fourcc::Argb8888];
pub const BYTES_PER_PIXEL: i32 = 4;

/// The frame object a capture answers, of either protocol.
pub enum CaptureFrame {
    Wlr(ZwlrScreencopyFrameV1),
    Ext(ExtImageCopyCaptureFrameV1),
}

impl CaptureFrame {
    fn is_alive(&self) -> bool {
        match self {
            Self::Wlr(frame) => frame.is_alive(),
            Self::Ext(frame) => frame.is_alive(),
        }
    }

    /// The frame could not be written into the client's buffer.
    fn failed(&self) {
        match self {
            Self::Wlr(frame) => frame.failed(),
            Self::Ext(frame) => frame.failed(FailureReason::BufferConstraints),
        }
    }

    /// The captured output, or window, is gone.
    fn stopped(&self) {
        match self {
            Self::Wlr(frame) => frame.failed(),
            Self::Ext(frame) => super::image_copy_capture::stop(frame),
        }
    }

    /// What to report as changed for a capture being written now: zwlr's
    /// `copy_with_damage` what the repaints that answered it changed (`damage`); an
    /// ext frame what changed since its session's frame before (taken: the session
    /// gathers from here on for its next frame).
    fn damage_to_report(&self, damage: Option<Rect>) -> Option<Rect> {
        match self {
            Self::Wlr(_) => damage,
            Self::Ext(frame) => super::image_copy_capture::take_damage(frame),
        }
    }

    /// Tells the client its frame is in its buffer: what changed, then `ready` with
    /// the presentation time.
    fn ready(&self, damage: Option<Rect>, presented: Duration) {
        let secs = presented.as_secs();
        let (hi, lo, nsec) = ((secs >> 32) as u32, secs as u32, presented.subsec_nanos());
        match self {
            Self::Wlr(frame) => {
                frame.flags(zwlr_screencopy_frame_v1::Flags::empty());
                if let Some(c) = damage {
                    frame.damage(c.x0 as u32, c.y0 as u32, (c.x1 - c.x0) as u32, (c.y1 - c.y0) as u32);
                }
                frame.ready(hi, lo, nsec);
            }
            Self::Ext(frame) => {
                frame.transform(wl_output::Transform::Normal);
                if let Some(c) = damage {
                    frame.damage(c.x0, c.y0, c.x1 - c.x0, c.y1 - c.y0);
                }
                frame.presentation_time(hi, lo, nsec);
                frame.ready();
            }
        }
    }
}

/// What a capture shows.
#[derive(Clone)]
pub enum Source {
    Output(Output),
    /// A window alone, named by its ext_foreign_toplevel_list handle
    /// (`foreign_toplevel.rs`): its geometry, parts other windows cover included.
    Toplevel(ForeignToplevelWeakHandle),
    /// The pointer's cursor alone, while it shows on this output (a cursor session's).
    Cursor(Output),
}

impl Source {
    pub fn output(&self) -> Option<&Output> {
        match self {
            Self::Output(output) => Some(output),
            Self::Toplevel(_) | Self::Cursor(_) => None,
        }
    }
}

/// Where a capture's source lies on the canvas now.
pub struct SourceArea {
    /// Canvas pixels; empty for a cursor that does not show on its output now.
    pub area: Rectangle<i32, Physical>,
    /// The window's toplevel surface, for a window captured alone.
    pub window: Option<ObjectId>,
}

/// A capture waiting for a repaint to answer it.
pub struct PendingCapture {
    pub frame: CaptureFrame,
    pub buffer: WlBuffer,
    pub source: Source,
    /// In the source's pixels (an output's, or a window's).
    pub region: Rectangle<i32, Physical>,
    /// Answered only once the region has changed (zwlr `copy_with_damage`; an ext
    /// frame whose session has seen no change since its last one).
    pub with_damage: bool,
    /// Reports what changed with `ready` (zwlr `copy_with_damage`).
    pub reports_damage: bool,
    /// The client's dma-buf to write; None for a wl_shm buffer.
    pub dmabuf: Option<Dmabuf>,
    /// The cursor is painted onto an output's frame (zwlr `overlay_cursor`, ext
    /// `paint_cursors`); else it is left out.
    pub cursors: bool,
    /// What the repaints since it was answered changed, for `reports_damage`: more
    /// than one where its paint into a dma-buf had to wait (relative to the region).
    pub damage: Option<Rect>,
}

/// A capture written into a client's dma-buf, waiting for the GPU to finish it.
pub struct CaptureOnGpu {
    frame: CaptureFrame,
    submission: SubmissionId,
    /// The client's dma-buf as the GPU writes it: kept until it is done.
    _target: CaptureTarget,
    damage: Option<Rect>,
    presented: Duration,
}

/// Checks the client's buffer against what was offered; returns its dma-buf, if it is one.
pub(super) fn check_buffer(buffer: &WlBuffer, region: Rectangle<i32, Physical>) -> Result<Option<Dmabuf>, String> {
    if let Ok(dmabuf) = get_dmabuf(buffer) {
        let format = dmabuf.format();
        let size = dmabuf.size();
        if !matches!(format.code, Fourcc::Xrgb8888 | Fourcc::Argb8888) || format.modifier != Modifier::Linear {
            return Err(format!(
                "dma-buf format {:?} modifier {:#x}, expected XRGB8888 or ARGB8888, LINEAR",
                format.code,
                u64::from(format.modifier)
            ));
        }
        if dmabuf.num_planes() != 1 || (size.w, size.h) != (region.size.w, region.size.h) {
            return Err(format!(
                "dma-buf is {}x{} with {} planes, expected {}x{} with one",
                size.w,
                size.h,
                dmabuf.num_planes(),
                region.size.w,
                region.size.h
            ));
        }
        return Ok(Some(dmabuf.clone()));
    }
    let info = with_buffer_contents(buffer, |_, _, info| info)
        .map_err(|_| "screencopy needs a wl_shm buffer or a dma-buf".to_string())?;
    let min_stride = region.size.w.checked_mul(BYTES_PER_PIXEL).unwrap_or(i32::MAX);
    if !SHM_FORMATS.contains(&info.format) {
        return Err(format!("buffer format {:?}, expected one of {SHM_FORMATS:?}", info.format));
    }
    if info.width != region.size.w || info.height != region.size.h || info.stride < min_stride {
        return Err(format!(
            "buffer is {}x{} stride {}, expected {}x{} stride >= {min_stride}",
            info.width, info.height, info.stride, region.size.w, region.size.h
        ));
    }
    Ok(None)
}

impl Axiom {
    /// Answers the captures that can be answered after a repaint.
    /// `damage` is the part of the canvas this repaint changed; `screen`, where given,
    /// is what the primary output's display shows (written back), else the renderer's
    /// last frame is read.
    pub fn answer_captures(
        &mut self,
        damage: Option<Rect>,
        presented: Duration,
        screen: Option<&crate::backend::Captured>,
    ) {
        // For captures that leave the cursor out, what changed without it.
        let cursorless = damage.and(self.renderer.damage_without_cursor());
        self.note_capture_damage(damage, cursorless);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_captures)
            .into_iter()
            .filter(|c| c.frame.is_alive())
            // Damage elsewhere on the canvas does not answer a capture that waits for it; one
            // whose source is gone is answered (failed). An ext frame's session has said
            // whether its source changed (`note_capture_damage`, above).
            .partition(|c| {
                !c.with_damage
                    || match self.on_canvas(c) {
                        None => true,
                        Some(_) if matches!(c.frame, CaptureFrame::Ext(_)) => false,
                        Some((region, _)) => {
                            let damage = if c.cursors { damage } else { cursorless };
                            damage.is_some_and(|d| damage_within(d, region).is_some())
                        }
                    }
            });
        self.pending_captures = waiting;
        for mut capture in ready {
            let Some((on_canvas, shown)) = self.on_canvas(&capture) else {
                // Unplugged, or unmapped, since the request.
                capture.frame.stopped();
                continue;
            };
            let window = shown.window;
            let cursor = matches!(capture.source, Source::Cursor(_));
            if cursor && shown.area.is_empty() {
                // A cursor session's frame waits while the cursor does not show on its output.
                self.pending_captures.push(PendingCapture { with_damage: true, ..capture });
                continue;
            }
            if cursor && self.needs_redraw {
                // The scene still draws the cursor where it was: the next frame draws it here.
                self.pending_captures.push(PendingCapture { with_damage: false, ..capture });
                self.arm_vblank();
                continue;
            }
            if (window.is_some() || cursor) && shown.area.size != on_canvas.size {
                // Resized since the request: its session has announced the new size.
                capture.frame.failed();
                continue;
            }
            let of = match &window {
                Some(window) => CaptureOf::Window { window, area: on_canvas },
                None if cursor => CaptureOf::Cursor(on_canvas),
                None if !capture.cursors && self.cursor_over(on_canvas) => CaptureOf::CanvasWithoutCursor(on_canvas),
                None => CaptureOf::Canvas(on_canvas),
            };
            if !matches!(of, CaptureOf::Canvas(_)) && self.renderer.scene_stale {
                // What is painted from the scene (a window, the cursor, an output without
                // it) waits while the scene draws retired memory: the next frame replaces it.
                self.pending_captures.push(PendingCapture { with_damage: false, ..capture });
                self.arm_vblank();
                continue;
            }
            let changes = if capture.cursors { damage } else { cursorless };
            if let Some(changed) = changes.and_then(|d| damage_within(d, on_canvas)).filter(|_| capture.reports_damage)
            {
                capture.damage = Some(capture.damage.map_or(changed, |earlier| earlier.union(changed)));
            }
            if capture.dmabuf.is_some() {
                self.paint_capture(capture, of, presented);
                continue;
            }
            // The display's own pixels show the cursor: for an output as composed only.
            let composed = matches!(of, CaptureOf::Canvas(_));
            let screen = screen.filter(|_| composed && capture.source.output() == Some(&self.output));
            let copied = with_buffer_contents_mut_checked(&capture.buffer, |dst, stride| match screen {
                Some(screen) => copy_region(screen, capture.region, dst, stride),
                None => self.renderer.read_capture(of, dst, stride),
            });
            match copied {
                Ok(()) => {
                    let damage = capture.frame.damage_to_report(capture.damage);
                    capture.frame.ready(damage, presented);
                }
                Err(err) => {
                    tracing::warn!("screencopy failed: {err:#}");
                    capture.frame.failed();
                }
            }
        }
    }
}

impl Axiom {
    /// Paints the scene into a capture's dma-buf; `ready` follows when the GPU is done
    /// (`finish_gpu_captures`). The capture waits for a later tick while the GPU waits
    /// on a client's fence (a submission behind it would block the event loop on some
    /// drivers), while the scene draws retired memory, and while it lacks what a
    /// plane shows (the repaint composes it whole for captures when it can).
    fn paint_capture(&mut self, capture: PendingCapture, of: CaptureOf<'_>, presented: Duration) {
        let Some(dmabuf) = capture.dmabuf.as_ref() else { return };
        let lacking = self.renderer.frame_forgotten() || self.composed_without_overlay;
        if self.renderer.completions.waits_on_client() || self.renderer.scene_stale || lacking {
            self.pending_captures.push(PendingCapture { with_damage: false, ..capture });
            self.arm_vblank();
            return;
        }
        match self.renderer.paint_into_dmabuf(dmabuf, of) {
            Ok((target, Some(submission))) if !self.renderer.completions.has_finished(submission) => {
                // What changed up to this paint: a change after it is the next frame's.
                let damage = capture.frame.damage_to_report(capture.damage);
                let frame = capture.frame;
                self.captures_on_gpu.push(CaptureOnGpu { frame, submission, _target: target, damage, presented });
            }
            Ok(_) => capture.frame.ready(capture.frame.damage_to_report(capture.damage), presented),
            Err(err) => {
                tracing::warn!("screencopy into a dma-buf failed: {err:#}");
                capture.frame.failed();
            }
        }
    }

    /// Sends `ready` for the captures whose paint the GPU has finished.
    pub fn finish_gpu_captures(&mut self) {
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.captures_on_gpu)
            .into_iter()
            .partition(|c| self.renderer.completions.has_finished(c.submission));
        self.captures_on_gpu = waiting;
        for capture in done.into_iter().filter(|c| c.frame.is_alive()) {
            capture.frame.ready(capture.damage, capture.presented);
        }
    }

    /// Whether the scene draws the cursor in `area` of the canvas.
    fn cursor_over(&self, area: Rectangle<i32, Physical>) -> bool {
        let area = Rect::of_area(area);
        self.renderer.scene_cursor_area().is_some_and(|c| c.intersect(area).is_some())
    }

    /// Where a capture lies on the canvas, and where its source does; None once its
    /// source is gone.
    fn on_canvas(&self, capture: &PendingCapture) -> Option<(Rectangle<i32, Physical>, SourceArea)> {
        let shown = self.source_area(&capture.source)?;
        Some((Rectangle::new(capture.region.loc + shown.area.loc, capture.region.size), shown))
    }

    /// Where `source` lies on the canvas now; None once it is gone.
    pub fn source_area(&self, source: &Source) -> Option<SourceArea> {
        match source {
            Source::Output(output) => Some(SourceArea { area: self.canvas_area(output)?, window: None }),
            Source::Cursor(output) => {
                self.canvas_area(output)?;
                let area = self.cursor_shown_on(output).map_or_else(Rectangle::default, |c| c.area);
                Some(SourceArea { area, window: None })
            }
            Source::Toplevel(handle) => {
                let (window, area) = self.toplevel_area(&handle.upgrade()?)?;
                Some(SourceArea { area, window: Some(window) })
            }
        }
    }
}

/// The size of `output`'s current mode: what a capture of all of it holds.
pub(super) fn output_size(output: &Output) -> smithay::utils::Size<i32, Physical> {
    output.current_mode().map(|m| m.size).unwrap_or_default()
}

/// The part of `damage` inside `region` (both on the canvas), relative to the region.
pub(super) fn damage_within(damage: Rect, region: Rectangle<i32, Physical>) -> Option<Rect> {
    let (x, y) = (region.loc.x, region.loc.y);
    Rect { x0: damage.x0 - x, y0: damage.y0 - y, x1: damage.x1 - x, y1: damage.y1 - y }
        .clamp(region.size.w, region.size.h)
}

/// Copies `region` of a written-back frame into `dst`, rows `stride` bytes apart.
fn copy_region(
    screen: &crate::backend::Captured,
    region: Rectangle<i32, Physical>,
    dst: &mut [u8],
    stride: usize,
) -> anyhow::Result<()> {
    let (x, y) = (usize::try_from(region.loc.x)?, usize::try_from(region.loc.y)?);
    let row_bytes = usize::try_from(region.size.w)? * 4;
    for row in 0..usize::try_from(region.size.h)? {
        let from = (y + row).checked_mul(screen.stride).and_then(|r| r.checked_add(x * 4));
        let src = from
            .and_then(|from| screen.bytes.get(from..from.checked_add(row_bytes)?))
            .context("region outside the written-back frame")?;
        let to = row.checked_mul(stride).context("buffer too small")?;
        dst.get_mut(to..to.saturating_add(row_bytes)).context("buffer too small")?.copy_from_slice(src);
    }
    Ok(())
}

/// Runs `f` over the client's buffer bytes (from the buffer's offset) with its stride,
/// through smithay's SIGBUS-safe pool access.
fn with_buffer_contents_mut_checked(
    buffer: &WlBuffer,
    f: impl FnOnce(&mut [u8], usize) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    smithay::wayland::shm::with_buffer_contents_mut(buffer, |ptr, len, info| {
        let offset = usize::try_from(info.offset)?;
        let stride = usize::try_from(info.stride)?;
        let needed = stride
            .checked_mul(usize::try_from(info.height)?)
            .and_then(|n| n.checked_add(offset))
            .ok_or_else(|| anyhow::anyhow!("buffer size overflows"))?;
        anyhow::ensure!(needed <= len, "buffer ends past its pool");
        // SAFETY: the pool mapping is `len` bytes long and stays mapped for this closure;
        // the range [offset, needed) lies inside it (checked above).
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr.add(offset), needed - offset) };
        f(bytes, stride)
    })
    .map_err(|err| anyhow::anyhow!("cannot access the buffer: {err:?}"))?
}
