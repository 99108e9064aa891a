//! The hardware cursor plane: where a CRTC has a cursor plane that takes LINEAR
//! ARGB8888, the cursor is painted alone into one of two small dumb buffers (shared
//! with the renderer as dma-bufs and drawn into on the GPU, as the scanout buffers
//! are) and shown on that plane, above every other; the output's frames are composed
//! without it. Moving the pointer then moves the plane in the next commit, with no
//! composition, and a client buffer on the primary or an overlay plane stays there
//! under the cursor. A buffer is painted only when the image changes.
//!
//! The cursor is composed instead where the CRTC has no such plane, the renderer
//! cannot write its buffers, the image is larger than the plane (the device's cursor
//! size), or the plane refused a commit (then for good, on that output); each is logged.

use smithay::backend::drm::{DrmDeviceFd, DrmSurface, PlaneConfig, PlaneState};
use smithay::reexports::drm::buffer::DrmFourcc;
use smithay::reexports::drm::control::{dumbbuffer::DumbBuffer, framebuffer, plane, Device as _};
use smithay::reexports::drm::{Device as _, DriverCapability};
use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::utils::{Physical, Rectangle, Transform};

use crate::render::completion::SubmissionId;
use crate::render::damage::Rect;
use crate::render::scanout_target::ScanoutTarget;
use crate::render::{DrawItem, DrawUniform, Renderer};

/// A CRTC's cursor plane and the two buffers it shows the cursor from.
pub(super) struct CursorPlane {
    plane: plane::Handle,
    /// Its buffers' size: the device's cursor size.
    size: (u32, u32),
    buffers: Vec<CursorBuffer>,
    /// The buffer the display shows, and where on the CRTC; None: the plane is off.
    pub(super) shown: Option<CursorOnPlane>,
}

struct CursorBuffer {
    dumb: DumbBuffer,
    fb: framebuffer::Handle,
    target: ScanoutTarget,
    /// The image it holds, and the submission that painted it (until it is done, the
    /// display may not show it).
    holds: Option<(CursorKey, SubmissionId)>,
}

/// A cursor buffer on the plane, at `dst` on the CRTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CursorOnPlane {
    buffer: usize,
    dst: Rectangle<i32, Physical>,
}

/// The cursor's quads for cursor planes, taken once per repaint for every output.
#[derive(Clone)]
pub struct PlaneCursor {
    items: Vec<DrawItem>,
    /// Where the image lies on the canvas (its quads' union).
    area: Rect,
    key: CursorKey,
}

/// What identifies a cursor image: its quads, placed relative to its corner, and the
/// times its surface was committed (new content in the same place).
#[derive(Clone, PartialEq)]
struct CursorKey {
    changes: u64,
    quads: Vec<(ObjectId, DrawUniform)>,
}

impl PlaneCursor {
    /// The cursor drawn by `items` (canvas pixels), whose image changed `changes` times;
    /// None where they draw nothing.
    pub fn new(items: Vec<DrawItem>, changes: u64) -> Option<Self> {
        let area = items.iter().map(|i| Rect::from_xywh(i.uniform.dst)).reduce(Rect::union)?;
        let quads = items
            .iter()
            .map(|i| {
                let mut uniform = i.uniform;
                uniform.dst[0] -= area.x0 as f32;
                uniform.dst[1] -= area.y0 as f32;
                (i.surface.clone(), uniform)
            })
            .collect();
        Some(Self { items, area, key: CursorKey { changes, quads } })
    }

    /// Its area on a CRTC whose top-left corner is at `origin` on the canvas.
    pub(super) fn on_crtc(&self, origin: (i32, i32)) -> Rectangle<i32, Physical> {
        // A client's cursor surface may be scaled to any size: no sum may overflow.
        let Rect { x0, y0, x1, y1 } = self.area;
        let at = (x0.saturating_sub(origin.0), y0.saturating_sub(origin.1));
        Rectangle::new(at.into(), (x1.saturating_sub(x0), y1.saturating_sub(y0)).into())
    }
}

/// How a frame shows the cursor on an output.
#[derive(Clone)]
pub(super) enum HeadCursor {
    /// Composed into the frame: no cursor plane, or the image does not fit it.
    Composed,
    /// On the cursor plane; the frame is composed without it.
    Plane(PlaneCursor),
    /// Not on this output: the plane is off, and the frame has no cursor either.
    Away,
}

impl CursorPlane {
    /// The cursor plane of `surface`'s CRTC with its buffers, shared with `renderer` to
    /// paint; the error says why there is none.
    pub(super) fn new(fd: &DrmDeviceFd, surface: &DrmSurface, renderer: &Renderer) -> anyhow::Result<Self> {
        let planes = surface.planes();
        let takes_argb = |p: &&smithay::backend::drm::PlaneInfo| {
            p.formats.iter().any(|f| {
                f.code == DrmFourcc::Argb8888
                    && matches!(
                        f.modifier,
                        smithay::backend::allocator::Modifier::Linear | smithay::backend::allocator::Modifier::Invalid
                    )
            })
        };
        anyhow::ensure!(!planes.cursor.is_empty(), "the CRTC has no cursor plane");
        let plane = planes
            .cursor
            .iter()
            .find(takes_argb)
            .ok_or_else(|| anyhow::anyhow!("its cursor plane does not take LINEAR ARGB8888"))?
            .handle;
        // The kernel's default where the driver names no size.
        let cap = |c| fd.get_driver_capability(c).ok().and_then(|v| u32::try_from(v).ok()).filter(|&v| v > 0);
        let size =
            (cap(DriverCapability::CursorWidth).unwrap_or(64), cap(DriverCapability::CursorHeight).unwrap_or(64));
        let mut buffers = Vec::new();
        for _ in 0..2 {
            match CursorBuffer::new(fd, size, renderer) {
                Ok(buffer) => buffers.push(buffer),
                Err(err) => {
                    buffers.into_iter().for_each(|b: CursorBuffer| b.destroy(fd));
                    return Err(err);
                }
            }
        }
        Ok(Self { plane, size, buffers, shown: None })
    }

    pub(super) fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Whether the image of `cursor` fits the plane.
    pub(super) fn fits(&self, cursor: &PlaneCursor) -> bool {
        let size = cursor.on_crtc((0, 0)).size;
        u32::try_from(size.w).is_ok_and(|w| w <= self.size.0) && u32::try_from(size.h).is_ok_and(|h| h <= self.size.1)
    }

    /// Whether a buffer holds the image of `cursor` (painted, or being painted).
    pub(super) fn holds(&self, cursor: &PlaneCursor) -> bool {
        self.buffers.iter().any(|b| b.holds.as_ref().is_some_and(|(key, _)| *key == cursor.key))
    }

    /// Puts `cursor` in a buffer for a CRTC at `origin` on the canvas: one that holds it
    /// already, else the one the display does not show, painted on the GPU. Returns the
    /// submission to wait for before the commit, where its paint may not be done. Only
    /// called with no flip pending.
    pub(super) fn prepare(
        &mut self,
        cursor: &PlaneCursor,
        origin: (i32, i32),
        renderer: &mut Renderer,
    ) -> (CursorOnPlane, Option<SubmissionId>) {
        let (w, h) = (self.size.0 as i32, self.size.1 as i32);
        let at = cursor.on_crtc(origin).loc;
        let dst = Rectangle::new(at, (w, h).into());
        let held = self.buffers.iter().enumerate().find_map(|(index, b)| match &b.holds {
            Some((key, painted)) if *key == cursor.key => Some((index, *painted)),
            _ => None,
        });
        if let Some((buffer, painted)) = held {
            // Painted for a frame that was dropped before its flip, perhaps not done yet.
            let waits = (!renderer.completions.has_finished(painted)).then_some(painted);
            return (CursorOnPlane { buffer, dst }, waits);
        }
        let buffer = self.shown.map_or(0, |shown| 1 - shown.buffer);
        let painting = &mut self.buffers[buffer];
        let submission =
            renderer.paint_cursor_plane(&mut painting.target, &cursor.items, (cursor.area.x0, cursor.area.y0));
        painting.holds = Some((cursor.key.clone(), submission));
        (CursorOnPlane { buffer, dst }, Some(submission))
    }

    /// The plane's state in a commit that shows `on` (None: turns it off).
    pub(super) fn state(&self, on: Option<CursorOnPlane>) -> PlaneState<'static> {
        let config = on.map(|on| PlaneConfig {
            src: Rectangle::from_size((self.size.0 as i32, self.size.1 as i32).into()).to_f64(),
            dst: on.dst,
            transform: Transform::Normal,
            alpha: 1.0,
            damage_clips: None,
            fb: self.buffers[on.buffer].fb,
            fence: None,
        });
        PlaneState { handle: self.plane, config }
    }

    /// Frees the display's side of its buffers.
    pub(super) fn destroy(self, fd: &DrmDeviceFd) {
        self.buffers.into_iter().for_each(|b| b.destroy(fd));
    }
}

impl CursorBuffer {
    fn new(fd: &DrmDeviceFd, (width, height): (u32, u32), renderer: &Renderer) -> anyhow::Result<Self> {
        let dumb = fd.create_dumb_buffer((width, height), DrmFourcc::Argb8888, 32)?;
        let fb = match fd.add_framebuffer(&dumb, 32, 32) {
            Ok(fb) => fb,
            Err(err) => {
                let _ = fd.destroy_dumb_buffer(dumb);
                return Err(err.into());
            }
        };
        match super::share_dumb_buffer(fd, &dumb, renderer) {
            Ok(target) => Ok(Self { dumb, fb, target, holds: None }),
            Err(err) => {
                let _ = fd.destroy_framebuffer(fb);
                let _ = fd.destroy_dumb_buffer(dumb);
                Err(err)
            }
        }
    }

    fn destroy(self, fd: &DrmDeviceFd) {
        let _ = fd.destroy_framebuffer(self.fb);
        let _ = fd.destroy_dumb_buffer(self.dumb);
    }
}
