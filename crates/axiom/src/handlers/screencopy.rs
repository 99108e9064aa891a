//! zwlr_screencopy_manager_v1 (version 3), so that grim and our tests can take
//! screenshots. smithay has no implementation, so the dispatch is ours.
//!
//! Frames are answered from the repaint loop: `copy` always gets the next
//! repainted (or current) output contents, `copy_with_damage` waits until the
//! output has changed, as the protocol asks.
//!
//! A capture goes into a wl_shm buffer (the frame read back from the GPU) or, where
//! the renderer can write dma-bufs (`Renderer::writes_dmabufs`) and so offers them
//! with the `linux_dmabuf` event, into the client's LINEAR dma-buf: the scene is
//! painted straight into it on the GPU, with no CPU byte of the frame touched, and
//! `ready` follows when the GPU is done (`dmabuf_captures=` in the stats line).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::allocator::{Buffer, Fourcc, Modifier};
use smithay::output::Output;
use smithay::reexports::wayland_protocols_wlr::screencopy::v1::server::{
    zwlr_screencopy_frame_v1::{self, ZwlrScreencopyFrameV1},
    zwlr_screencopy_manager_v1::{self, ZwlrScreencopyManagerV1},
};
use smithay::reexports::wayland_server::protocol::{wl_buffer::WlBuffer, wl_shm};
use smithay::reexports::wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource};
use smithay::utils::{Logical, Physical, Rectangle};
use smithay::wayland::dmabuf::get_dmabuf;
use smithay::wayland::shm::with_buffer_contents;

use crate::render::completion::SubmissionId;
use crate::render::damage::Rect;
use crate::render::scanout_target::ScanoutTarget;
use crate::Axiom;

const MANAGER_VERSION: u32 = 3;
/// The output texture is B,G,R,A in memory: XRGB8888 with no conversion.
const CAPTURE_FORMAT: wl_shm::Format = wl_shm::Format::Xrgb8888;
const BYTES_PER_PIXEL: i32 = 4;

pub struct ScreencopyManagerState;

impl ScreencopyManagerState {
    pub fn new(dh: &DisplayHandle) -> Self {
        dh.create_global::<Axiom, ZwlrScreencopyManagerV1, ()>(MANAGER_VERSION, ());
        Self
    }
}

/// State of one zwlr_screencopy_frame_v1.
pub struct FrameData {
    /// The captured output and part of it, in output pixels; `None` if the capture failed at once.
    region: Option<(Output, Rectangle<i32, Physical>)>,
    used: AtomicBool,
}

/// A `copy` waiting for the next repaint.
pub struct PendingCapture {
    pub frame: ZwlrScreencopyFrameV1,
    pub buffer: WlBuffer,
    pub output: Output,
    /// In output pixels.
    pub region: Rectangle<i32, Physical>,
    pub with_damage: bool,
    /// The client's dma-buf to paint into; None for a wl_shm buffer.
    pub dmabuf: Option<Dmabuf>,
    /// Damage of the repaint that answered it, for a capture into a dma-buf whose
    /// paint had to wait for a later tick (relative to the region).
    pub damage: Option<Rect>,
}

/// A capture painted into a client's dma-buf, waiting for the GPU to finish it.
pub struct CaptureOnGpu {
    frame: ZwlrScreencopyFrameV1,
    submission: SubmissionId,
    /// The client's dma-buf as imported: kept until the paint is done.
    _target: ScanoutTarget,
    damage: Option<Rect>,
    presented: Duration,
}

impl GlobalDispatch<ZwlrScreencopyManagerV1, ()> for Axiom {
    fn bind(
        _state: &mut Self,
        _dh: &DisplayHandle,
        _client: &Client,
        resource: New<ZwlrScreencopyManagerV1>,
        _global_data: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        data_init.init(resource, ());
    }
}

impl Dispatch<ZwlrScreencopyManagerV1, ()> for Axiom {
    fn request(
        state: &mut Self,
        _client: &Client,
        _manager: &ZwlrScreencopyManagerV1,
        request: zwlr_screencopy_manager_v1::Request,
        _data: &(),
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let (frame, output, region) = match request {
            zwlr_screencopy_manager_v1::Request::CaptureOutput { frame, output, .. } => {
                let output = Output::from_resource(&output);
                let region = output.as_ref().map(|o| Rectangle::from_size(output_size(o)));
                (frame, output, region)
            }
            zwlr_screencopy_manager_v1::Request::CaptureOutputRegion { frame, output, x, y, width, height, .. } => {
                let output = Output::from_resource(&output);
                // Given in the output's logical coordinates.
                let region = output.as_ref().and_then(|o| {
                    let requested = Rectangle::<i32, Logical>::new((x, y).into(), (width, height).into());
                    let scale = o.current_scale().fractional_scale();
                    requested
                        .to_f64()
                        .to_physical(scale)
                        .to_i32_round()
                        .intersection(Rectangle::from_size(output_size(o)))
                });
                (frame, output, region)
            }
            zwlr_screencopy_manager_v1::Request::Destroy => return,
            _ => return,
        };
        let shown = output.filter(|o| state.output_area(o).is_some());
        let region = shown.zip(region.filter(|r| r.size.w > 0 && r.size.h > 0));
        let frame = data_init.init(frame, FrameData { region: region.clone(), used: AtomicBool::new(false) });
        let Some((_, region)) = region else {
            frame.failed();
            return;
        };
        let (w, h) = (region.size.w as u32, region.size.h as u32);
        frame.buffer(CAPTURE_FORMAT, w, h, w * BYTES_PER_PIXEL as u32);
        if frame.version() >= 3 {
            // Only where the scene can be painted into the client's dma-buf: never a
            // dma-buf the renderer cannot write (a black frame).
            if state.renderer.writes_dmabufs() {
                frame.linux_dmabuf(Fourcc::Xrgb8888 as u32, w, h);
            }
            frame.buffer_done();
        }
    }
}

impl Dispatch<ZwlrScreencopyFrameV1, FrameData> for Axiom {
    fn request(
        state: &mut Self,
        _client: &Client,
        frame: &ZwlrScreencopyFrameV1,
        request: zwlr_screencopy_frame_v1::Request,
        data: &FrameData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, Self>,
    ) {
        let (buffer, with_damage) = match request {
            zwlr_screencopy_frame_v1::Request::Copy { buffer } => (buffer, false),
            zwlr_screencopy_frame_v1::Request::CopyWithDamage { buffer } => (buffer, true),
            zwlr_screencopy_frame_v1::Request::Destroy => return,
            _ => return,
        };
        if data.used.swap(true, Ordering::SeqCst) {
            frame.post_error(zwlr_screencopy_frame_v1::Error::AlreadyUsed, "frame already used");
            return;
        }
        let Some((output, region)) = data.region.clone() else {
            frame.failed();
            return;
        };
        let dmabuf = match check_buffer(&buffer, region) {
            Ok(dmabuf) => dmabuf,
            Err(reason) => {
                frame.post_error(zwlr_screencopy_frame_v1::Error::InvalidBuffer, reason);
                return;
            }
        };
        if dmabuf.is_some() && !state.renderer.writes_dmabufs() {
            // Not offered: the client guessed.
            tracing::debug!("screencopy: a dma-buf, which this renderer cannot write: failed");
            frame.failed();
            return;
        }
        let capture =
            PendingCapture { frame: frame.clone(), buffer, output, region, with_damage, dmabuf, damage: None };
        state.pending_captures.push(capture);
        state.arm_vblank();
    }
}

fn output_size(output: &Output) -> smithay::utils::Size<i32, Physical> {
    output.current_mode().map(|m| m.size).unwrap_or_default()
}

/// Checks the client's buffer against what was offered; returns its dma-buf, if it is one.
fn check_buffer(buffer: &WlBuffer, region: Rectangle<i32, Physical>) -> Result<Option<Dmabuf>, String> {
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
    if info.format != CAPTURE_FORMAT && info.format != wl_shm::Format::Argb8888 {
        return Err(format!("buffer format {:?}, expected {CAPTURE_FORMAT:?}", info.format));
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
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_captures)
            .into_iter()
            .filter(|c| c.frame.is_alive())
            // Damage elsewhere on the canvas does not answer a capture that waits for it; one
            // whose output is gone is answered (failed).
            .partition(|c| {
                !c.with_damage
                    || damage.is_some_and(|d| self.on_canvas(c).is_none_or(|r| damage_within(d, r).is_some()))
            });
        self.pending_captures = waiting;
        for mut capture in ready {
            let Some(on_canvas) = self.on_canvas(&capture) else {
                // Unplugged since the request.
                capture.frame.failed();
                continue;
            };
            if capture.with_damage && capture.damage.is_none() {
                capture.damage = damage.and_then(|d| damage_within(d, on_canvas));
            }
            if capture.dmabuf.is_some() {
                self.paint_capture(capture, on_canvas, presented);
                continue;
            }
            let screen = screen.filter(|_| capture.output == self.output);
            let copied = with_buffer_contents_mut_checked(&capture.buffer, |dst, stride| match screen {
                Some(screen) => copy_region(screen, capture.region, dst, stride),
                None => self.renderer.read_output(on_canvas, dst, stride),
            });
            match copied {
                Ok(()) => {
                    send_ready(&capture.frame, capture.damage, presented);
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
    fn paint_capture(&mut self, capture: PendingCapture, on_canvas: Rectangle<i32, Physical>, presented: Duration) {
        let Some(dmabuf) = capture.dmabuf.as_ref() else { return };
        let lacking = self.renderer.frame_forgotten() || self.composed_without_overlay;
        if self.renderer.completions.waits_on_client() || self.renderer.scene_stale || lacking {
            self.pending_captures.push(PendingCapture { with_damage: false, ..capture });
            self.arm_vblank();
            return;
        }
        match self.renderer.paint_into_dmabuf(dmabuf, on_canvas) {
            Ok((target, Some(submission))) if !self.renderer.completions.has_finished(submission) => {
                self.captures_on_gpu.push(CaptureOnGpu {
                    frame: capture.frame,
                    submission,
                    _target: target,
                    damage: capture.damage,
                    presented,
                });
            }
            Ok(_) => send_ready(&capture.frame, capture.damage, presented),
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
            send_ready(&capture.frame, capture.damage, capture.presented);
        }
    }

    /// Where a capture lies on the canvas; None once its output is gone.
    fn on_canvas(&self, capture: &PendingCapture) -> Option<Rectangle<i32, Physical>> {
        let area = self.canvas_area(&capture.output)?;
        Some(Rectangle::new(capture.region.loc + area.loc, capture.region.size))
    }
}

/// Tells the client its frame is in its buffer: what changed (for `copy_with_damage`),
/// then `ready` with the presentation time.
fn send_ready(frame: &ZwlrScreencopyFrameV1, damage: Option<Rect>, presented: Duration) {
    frame.flags(zwlr_screencopy_frame_v1::Flags::empty());
    if let Some(c) = damage {
        frame.damage(c.x0 as u32, c.y0 as u32, (c.x1 - c.x0) as u32, (c.y1 - c.y0) as u32);
    }
    let secs = presented.as_secs();
    frame.ready((secs >> 32) as u32, secs as u32, presented.subsec_nanos());
}

/// The part of `damage` inside `region` (both on the canvas), relative to the region.
fn damage_within(damage: Rect, region: Rectangle<i32, Physical>) -> Option<Rect> {
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
