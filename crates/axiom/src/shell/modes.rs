//! Maximized and fullscreen toplevels. Either one fills the output (Axiom has
//! one output and no panels); the window goes to the output's origin once the
//! client has acked the state, and back where it was, at the size it had,
//! when it leaves it.

use std::sync::Mutex;

use smithay::desktop::Window;
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::State;
use smithay::utils::{Logical, Rectangle};
use smithay::wayland::shell::xdg::ToplevelSurface;

use crate::Axiom;

/// Where a window was, and how large, before it was maximized or made fullscreen.
#[derive(Default)]
struct Restore(Mutex<Option<Rectangle<i32, Logical>>>);

fn restore_slot(window: &Window) -> std::sync::MutexGuard<'_, Option<Rectangle<i32, Logical>>> {
    window.user_data().insert_if_missing_threadsafe(Restore::default);
    let restore = window.user_data().get::<Restore>().expect("inserted above");
    restore.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fills_output(states: impl Fn(State) -> bool) -> bool {
    states(State::Maximized) || states(State::Fullscreen)
}

impl Axiom {
    /// xdg_toplevel.set_maximized / unset_maximized / set_fullscreen /
    /// unset_fullscreen: the state is changed and, as the protocol asks, a
    /// configure is sent even when nothing changed.
    pub fn request_toplevel_mode(&mut self, toplevel: &ToplevelSurface, mode: State, on: bool) {
        let window = self.window_for_surface(toplevel.wl_surface());
        let output = self.output_size();
        if on {
            if let Some(window) = &window {
                let mut restore = restore_slot(window);
                if restore.is_none() {
                    if let Some(location) = self.space.element_location(window) {
                        *restore = Some(Rectangle::new(location, window.geometry().size));
                    }
                }
            }
        }
        let restore_size = window.as_ref().and_then(|w| restore_slot(w).map(|r| r.size));
        toplevel.with_pending_state(|state| {
            if on {
                // One of the two at a time: the newer request wins.
                let other = if mode == State::Maximized { State::Fullscreen } else { State::Maximized };
                state.states.unset(other);
                state.states.set(mode);
                state.size = Some(output);
            } else {
                state.states.unset(mode);
                if !fills_output(|s| state.states.contains(s)) {
                    // The size it had before; unknown (never mapped): the client picks.
                    state.size = restore_size;
                }
            }
        });
        if toplevel.is_initial_configure_sent() {
            toplevel.send_configure();
        }
    }

    /// After a commit of a mapped window: it goes to the output's origin once
    /// it is maximized or fullscreen, and back once it no longer is.
    pub fn place_for_mode(&mut self, window: &Window) {
        let Some(toplevel) = window.toplevel() else { return };
        let Some(location) = self.space.element_location(window) else { return };
        let current = toplevel.current_state();
        let target = if fills_output(|s| current.states.contains(s)) {
            let mut restore = restore_slot(window);
            if restore.is_none() {
                // Mapped straight into the state: back to where it was first placed.
                *restore = Some(Rectangle::new(location, window.geometry().size));
            }
            (0, 0).into()
        } else {
            match restore_slot(window).take() {
                Some(previous) => previous.loc,
                None => return,
            }
        };
        if target != location {
            self.move_window(window, target);
        }
    }
}
