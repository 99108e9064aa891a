//! Maximized and fullscreen toplevels. Either one fills an output (Axiom has
//! no panels): the one a fullscreen request names, else the one the window is
//! on. The window goes to that output's origin once the client has acked the
//! state, and back where it was, at the size it had, when it leaves it. In
//! kiosk mode (`--kiosk`) every toplevel is fullscreen on the primary output.

use std::sync::Mutex;

use smithay::desktop::Window;
use smithay::output::Output;
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

/// The output a maximized or fullscreen window fills.
#[derive(Default)]
struct Filled(Mutex<Option<Output>>);

fn filled_slot(window: &Window) -> std::sync::MutexGuard<'_, Option<Output>> {
    window.user_data().insert_if_missing_threadsafe(Filled::default);
    let filled = window.user_data().get::<Filled>().expect("inserted above");
    filled.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fills_output(states: impl Fn(State) -> bool) -> bool {
    states(State::Maximized) || states(State::Fullscreen)
}

impl Axiom {
    /// xdg_toplevel.set_maximized / unset_maximized / set_fullscreen /
    /// unset_fullscreen: the state is changed and, as the protocol asks, a
    /// configure is sent even when nothing changed. `output`: the one a
    /// fullscreen request names.
    /// In kiosk mode every request leaves the window fullscreen on the primary output.
    pub fn request_toplevel_mode(&mut self, toplevel: &ToplevelSurface, mode: State, on: bool, output: Option<Output>) {
        let (mode, on, output) = match self.kiosk {
            true => (State::Fullscreen, true, Some(self.output.clone())),
            false => (mode, on, output),
        };
        // Not mapped yet, it still learns which output it is to fill.
        let window = self.window_for_surface(toplevel.wl_surface()).or_else(|| {
            let surface = toplevel.wl_surface();
            self.unmapped_windows.iter().find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == surface)).cloned()
        });
        let output = output
            .filter(|o| self.output_area(o).is_some())
            .unwrap_or_else(|| window.as_ref().map_or_else(|| self.output.clone(), |w| self.output_of(w)));
        let area = self.output_area(&output).unwrap_or_else(|| self.primary_area());
        if on {
            if let Some(window) = &window {
                *filled_slot(window) = Some(output);
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
                state.size = Some(area.size);
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

    /// After a commit of a mapped window: it goes to its output's origin once
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
            let output = filled_slot(window).clone().unwrap_or_else(|| self.output.clone());
            self.output_area(&output).unwrap_or_else(|| self.primary_area()).loc
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

    /// Outputs came, went or changed size: a window no output shows opens again on
    /// the primary one, and maximized and fullscreen windows are configured anew to
    /// fill their output (the primary one where theirs is gone).
    pub fn rehome_windows(&mut self) {
        let windows: Vec<Window> = self.space.elements().cloned().collect();
        for window in windows {
            let location = self.new_window_location(window.geometry().size);
            if self.output_under_centre(&window).is_none() {
                self.move_window(&window, location);
            }
            let Some(toplevel) = window.toplevel().cloned() else { continue };
            let current = toplevel.current_state();
            let Some(mode) = [State::Fullscreen, State::Maximized].into_iter().find(|s| current.states.contains(*s))
            else {
                continue;
            };
            let filled = filled_slot(&window).clone().filter(|o| self.output_area(o).is_some());
            if filled.is_none() {
                // Its old place was on the output that went: unfilled, it comes back on the primary one.
                if let Some(restore) = restore_slot(&window).as_mut() {
                    restore.loc = location;
                }
            }
            self.request_toplevel_mode(&toplevel, mode, true, filled);
        }
    }
}
