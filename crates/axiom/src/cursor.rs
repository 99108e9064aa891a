//! The pointer's cursor: the surface a client asks for with wl_pointer.set_cursor
//! (drawn with its subsurfaces, its hotspot at the pointer), none where it asks for
//! none, and the compositor's own arrow elsewhere (every named cursor is that arrow).
//! It is drawn above every window: into the composed frame, or on a display's
//! cursor plane (`backend/drm/cursor_plane.rs`).
//!
//! It shows once a pointer has moved: the headless backend has no pointer, and a
//! display whose seat has no mouse shows no cursor (`Cursor::moved`); on the nested
//! backend, while the pointer is in the window (the host's cursor is hidden there).

use smithay::desktop::utils::bbox_from_surface_tree;
use smithay::input::pointer::{CursorImageStatus, CursorImageSurfaceData};
use smithay::output::Output;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::Resource;
use smithay::utils::{Logical, Physical, Point, Rectangle};
use smithay::wayland::compositor::{add_destruction_hook, get_role, with_states, SurfaceAttributes};
use smithay::wayland::seat::CURSOR_IMAGE_ROLE;

use crate::Axiom;

/// What the seat's clients asked the cursor to be, and whether a pointer has moved.
pub struct Cursor {
    pub status: CursorImageStatus,
    pub moved: bool,
    /// Times its image changed (another cursor set, or the cursor surface committed):
    /// a cursor capture's damage.
    pub changes: u64,
}

impl Default for Cursor {
    fn default() -> Self {
        Self { status: CursorImageStatus::default_named(), moved: false, changes: 0 }
    }
}

/// The cursor to draw: where its image's top-left corner is, in the canvas'
/// logical space.
#[derive(Clone, Debug, PartialEq)]
pub enum CursorImage {
    /// A client's cursor surface (its tree), its hotspot at the pointer.
    Surface { surface: WlSurface, origin: Point<i32, Logical> },
    /// The compositor's arrow, its tip at the pointer.
    Arrow { origin: Point<i32, Logical> },
}

/// The cursor as it shows on an output, in canvas pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CursorShown {
    /// Where its image lies on the canvas.
    pub area: Rectangle<i32, Physical>,
    /// Where the pointer is within the image.
    pub hotspot: Point<i32, Physical>,
    /// Where the pointer is relative to the output's top-left corner.
    pub position: Point<i32, Physical>,
}

impl CursorImage {
    pub fn origin(&self) -> Point<i32, Logical> {
        match self {
            CursorImage::Surface { origin, .. } | CursorImage::Arrow { origin } => *origin,
        }
    }

    /// The area the image covers, in the canvas' logical space.
    pub fn area(&self) -> Rectangle<i32, Logical> {
        match self {
            CursorImage::Surface { surface, origin } => bbox_from_surface_tree(surface, *origin),
            CursorImage::Arrow { origin } => {
                let (w, h) = crate::render::cursor::ARROW_SIZE;
                Rectangle::new(*origin, (w as i32, h as i32).into())
            }
        }
    }

    /// Where the pointer is within the image.
    pub fn hotspot(&self) -> Point<i32, Logical> {
        match self {
            CursorImage::Surface { surface, .. } => surface_hotspot(surface),
            CursorImage::Arrow { .. } => (0, 0).into(),
        }
    }
}

/// A client's hotspot, kept within a range where no sum with a position overflows.
fn surface_hotspot(surface: &WlSurface) -> Point<i32, Logical> {
    const MOST: i32 = 1 << 16;
    let hotspot = with_states(surface, |states| {
        states
            .data_map
            .get::<CursorImageSurfaceData>()
            .map(|data| data.lock().unwrap_or_else(|e| e.into_inner()).hotspot)
    })
    .unwrap_or_default();
    (hotspot.x.clamp(-MOST, MOST), hotspot.y.clamp(-MOST, MOST)).into()
}

/// Marks a surface whose destruction already schedules a repaint (it was a cursor).
struct CursorHook;

impl Axiom {
    /// The cursor to draw now, if any.
    pub fn cursor_image(&self) -> Option<CursorImage> {
        if !self.cursor.moved {
            return None;
        }
        let at = self.seat.get_pointer()?.current_location().to_i32_round();
        match &self.cursor.status {
            CursorImageStatus::Hidden => None,
            CursorImageStatus::Named(_) => Some(CursorImage::Arrow { origin: at }),
            // A destroyed cursor surface leaves no cursor, until the client sets another.
            CursorImageStatus::Surface(surface) if surface.is_alive() => {
                let hotspot = surface_hotspot(surface);
                let origin = (at.x.saturating_sub(hotspot.x), at.y.saturating_sub(hotspot.y)).into();
                Some(CursorImage::Surface { surface: surface.clone(), origin })
            }
            CursorImageStatus::Surface(_) => None,
        }
    }

    /// The cursor where it shows on `output`, in canvas pixels.
    pub fn cursor_shown_on(&self, output: &Output) -> Option<CursorShown> {
        let image = self.cursor_image()?;
        let s = self.renderer.canvas_scale;
        // Rounded as the renderer places quads (`render/compose.rs`).
        let to_canvas = |p: Point<i32, Logical>| -> Point<i32, Physical> {
            ((f64::from(p.x) * s).round() as i32, (f64::from(p.y) * s).round() as i32).into()
        };
        let logical = image.area();
        // Its size does not depend on where it is (at a fractional scale, rounding each
        // edge would make it a pixel larger or smaller as it moves).
        let size = ((f64::from(logical.size.w) * s).round() as i32, (f64::from(logical.size.h) * s).round() as i32);
        let area = Rectangle::new(to_canvas(logical.loc), size.into());
        let on = self.canvas_area(output)?;
        if area.is_empty() || !area.overlaps(on) {
            return None;
        }
        let pointer = to_canvas(image.origin() + image.hotspot());
        Some(CursorShown { area, hotspot: pointer - area.loc, position: pointer - on.loc })
    }

    /// The client's cursor surface, where one is the cursor now (for its frame callbacks).
    pub fn cursor_surface(&self) -> Option<WlSurface> {
        match self.cursor_image()? {
            CursorImage::Surface { surface, .. } => Some(surface),
            CursorImage::Arrow { .. } => None,
        }
    }

    /// A client set the cursor (or the pointer entered another client's surface).
    pub fn set_cursor_status(&mut self, status: CursorImageStatus) {
        if let CursorImageStatus::Surface(surface) = &status {
            // Once per surface: a cursor destroyed while shown goes from the screen at once.
            let first = with_states(surface, |states| states.data_map.insert_if_missing_threadsafe(|| CursorHook));
            if first {
                add_destruction_hook(surface, |state: &mut Axiom, _: &WlSurface| {
                    if state.cursor.moved {
                        state.cursor.changes += 1;
                        state.schedule_repaint();
                    }
                });
            }
        }
        if self.cursor.status != status {
            self.cursor.status = status;
            self.cursor.changes += 1;
        }
        // The same surface again may come with another hotspot.
        if self.cursor.moved {
            self.schedule_repaint();
        }
    }

    /// A surface tree whose root is `root` committed: where it is the cursor, its image
    /// changed. A cursor surface's buffer offset (wl_surface.offset, or attach's x and y)
    /// moves its hotspot the other way, as wl_pointer.set_cursor says.
    pub fn cursor_committed(&mut self, root: &WlSurface) {
        if get_role(root) == Some(CURSOR_IMAGE_ROLE) {
            with_states(root, |states| {
                let delta = states.cached_state.get::<SurfaceAttributes>().current().buffer_delta.take();
                let (Some(delta), Some(data)) = (delta, states.data_map.get::<CursorImageSurfaceData>()) else {
                    return;
                };
                let mut data = data.lock().unwrap_or_else(|e| e.into_inner());
                data.hotspot = (data.hotspot.x.saturating_sub(delta.x), data.hotspot.y.saturating_sub(delta.y)).into();
            });
        }
        if matches!(&self.cursor.status, CursorImageStatus::Surface(surface) if surface == root) {
            self.cursor.changes += 1;
        }
    }

    /// The pointer left the nested window: the cursor shows no more, until it is back.
    pub fn cursor_gone(&mut self) {
        if self.cursor_image().is_some() {
            self.schedule_repaint();
        }
        self.cursor.moved = false;
    }

    /// The pointer moved: the cursor shows, where it is now.
    pub fn cursor_moved(&mut self) {
        self.cursor.moved = true;
        if self.cursor_image().is_some() {
            self.schedule_repaint();
        }
    }
}
