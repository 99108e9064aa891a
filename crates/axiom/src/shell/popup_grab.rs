//! xdg_popup.grab: a grabbing popup takes the keyboard focus and keeps it
//! until it is dismissed (xdg_popup.popup_done). Grabs nest: a grabbing popup
//! of a grabbing popup goes on top, and destroying the top one gives the grab
//! back to the one below. They are dismissed, topmost first, when the user
//! presses a button or touches a surface of another client, or a new window
//! is mapped (it takes the focus).
//!
//! A grab needs the serial of a recent button or touch event of the popup's
//! client; without one the popup is dismissed at once, as the protocol says.

use std::sync::{Mutex, MutexGuard};

use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::Resource;
use smithay::utils::{Serial, SERIAL_COUNTER};
use smithay::wayland::shell::xdg::PopupSurface;

use crate::Axiom;

#[derive(Default)]
struct PopupGrabs {
    /// Grabbing popups, the topmost last.
    stack: Mutex<Vec<PopupSurface>>,
    /// Serials of the latest button and touch events, and the surface each was sent to.
    recent_input: Mutex<Vec<(Serial, WlSurface)>>,
}

/// How many recent input serials are remembered for grab requests.
const RECENT_INPUT: usize = 8;

impl Axiom {
    fn popup_grabs(&self) -> &PopupGrabs {
        let data = self.seat.user_data();
        data.insert_if_missing_threadsafe(PopupGrabs::default);
        data.get::<PopupGrabs>().expect("inserted above")
    }

    fn grab_stack(&self) -> MutexGuard<'_, Vec<PopupSurface>> {
        let stack = &self.popup_grabs().stack;
        let mut stack = stack.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        stack.retain(|popup| popup.alive());
        stack
    }

    /// A button or touch event with `serial` was sent to `surface`: a popup of
    /// that client may use the serial to grab.
    pub fn note_input_serial(&self, serial: Serial, surface: &WlSurface) {
        let mut recent = self.popup_grabs().recent_input.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if recent.len() >= RECENT_INPUT {
            recent.remove(0);
        }
        recent.push((serial, surface.clone()));
    }

    /// xdg_popup.grab.
    pub fn grab_popup(&mut self, popup: PopupSurface, serial: Serial) {
        let valid_serial = {
            let recent = self.popup_grabs().recent_input.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            recent.iter().any(|(s, surface)| *s == serial && surface.id().same_client_as(&popup.wl_surface().id()))
        };
        // A grabbing popup's parent must be the topmost grabbing popup, if there is one.
        let parent_ok = match self.grab_stack().last() {
            Some(top) => popup.get_parent_surface().as_ref() == Some(top.wl_surface()),
            None => true,
        };
        if !valid_serial || !parent_ok {
            popup.send_popup_done();
            return;
        }
        self.grab_stack().push(popup.clone());
        if let Some(keyboard) = self.seat.get_keyboard() {
            keyboard.set_focus(self, Some(popup.wl_surface().clone()), SERIAL_COUNTER.next_serial());
        }
    }

    /// Whether a popup grab is active, and if so whether `surface` belongs to its client.
    pub fn popup_grab_owns(&self, surface: Option<&WlSurface>) -> Option<bool> {
        let stack = self.grab_stack();
        let top = stack.last()?;
        Some(surface.is_some_and(|s| s.id().same_client_as(&top.wl_surface().id())))
    }

    /// Ends every popup grab, topmost popup first; the keyboard goes back to the top window.
    pub fn dismiss_popup_grabs(&mut self) {
        let popups: Vec<PopupSurface> = std::mem::take(&mut *self.grab_stack());
        if popups.is_empty() {
            return;
        }
        for popup in popups.iter().rev() {
            popup.send_popup_done();
        }
        self.focus_top_window();
    }

    /// A popup went away: if it held a grab, the grab goes back to the popup
    /// below it, or the keyboard to the top window.
    pub fn popup_gone(&mut self, popup: &PopupSurface) {
        let was_grabbing = {
            let stack = &self.popup_grabs().stack;
            let mut stack = stack.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let before = stack.len();
            stack.retain(|p| p != popup && p.alive());
            stack.len() != before
        };
        if !was_grabbing {
            return;
        }
        let below = self.grab_stack().last().map(|p| p.wl_surface().clone());
        match below {
            Some(surface) => {
                if let Some(keyboard) = self.seat.get_keyboard() {
                    keyboard.set_focus(self, Some(surface), SERIAL_COUNTER.next_serial());
                }
            }
            None => self.focus_top_window(),
        }
    }
}
