//! Popup placement: the xdg_positioner's rectangle, moved by its constraint
//! adjustments so that the popup stays on the canvas, and zero-sized anchor
//! rectangles, which xdg-shell allows (only a negative size is an error) but
//! smithay 0.7 rejects.

use std::cell::Cell;
use std::sync::Mutex;

use smithay::desktop::{find_popup_root_surface, get_popup_toplevel_coords, PopupKind};
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_positioner::XdgPositioner;
use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::reexports::wayland_server::{DisplayHandle, Resource};
use smithay::utils::{Logical, Rectangle};
use smithay::wayland::shell::xdg::{PopupSurface, PositionerState};

use crate::Axiom;

/// Positioners whose anchor rectangle has a zero width and/or height: smithay
/// is given 1 instead, and the popup made from them gets the 0 back.
static ZERO_SIZED: Mutex<Vec<(ObjectId, bool, bool)>> = Mutex::new(Vec::new());

thread_local! {
    /// The zero sizes of the positioner of the xdg_surface.get_popup being dispatched.
    static CONSTRUCTING: Cell<Option<(bool, bool)>> = const { Cell::new(None) };
}

fn zero_sized() -> std::sync::MutexGuard<'static, Vec<(ObjectId, bool, bool)>> {
    ZERO_SIZED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// xdg_positioner.set_anchor_rect: returns the size to hand to smithay.
pub fn set_anchor_rect(dh: &DisplayHandle, positioner: &XdgPositioner, width: i32, height: i32) -> (i32, i32) {
    let mut zero = zero_sized();
    zero.retain(|(id, _, _)| id != &positioner.id() && dh.backend_handle().object_info(id.clone()).is_ok());
    if width == 0 || height == 0 {
        zero.push((positioner.id(), width == 0, height == 0));
    }
    // Negative sizes go through unchanged: smithay answers them with invalid_input.
    (if width == 0 { 1 } else { width }, if height == 0 { 1 } else { height })
}

/// xdg_surface.get_popup is about to be handled with `positioner`.
pub fn constructing_popup(positioner: &XdgPositioner) {
    let zero = zero_sized().iter().find(|(id, _, _)| *id == positioner.id()).map(|&(_, w, h)| (w, h));
    CONSTRUCTING.with(|c| c.set(zero));
}

/// The positioner state smithay made for a new popup, with its zero sizes back.
pub fn new_popup_positioner(mut positioner: PositionerState) -> PositionerState {
    if let Some((zero_w, zero_h)) = CONSTRUCTING.with(|c| c.take()) {
        if zero_w {
            positioner.anchor_rect.size.w = 0;
        }
        if zero_h {
            positioner.anchor_rect.size.h = 0;
        }
    }
    positioner
}

impl Axiom {
    /// The popup's geometry (relative to its parent's window geometry): where
    /// its positioner puts it, adjusted as the positioner allows so that it
    /// stays on the canvas.
    pub fn popup_geometry(&self, popup: &PopupSurface, positioner: &PositionerState) -> Rectangle<i32, Logical> {
        let kind = PopupKind::Xdg(popup.clone());
        let window = find_popup_root_surface(&kind).ok().and_then(|root| self.window_for_surface(&root));
        let Some(window_geometry) = window.and_then(|w| self.space.element_geometry(&w)) else {
            return positioner.get_geometry();
        };
        // The canvas, in the coordinates of the popup's parent.
        let mut target = Rectangle::from_size(self.output_size());
        target.loc -= get_popup_toplevel_coords(&kind);
        target.loc -= window_geometry.loc;
        positioner.get_unconstrained_geometry(target)
    }
}
