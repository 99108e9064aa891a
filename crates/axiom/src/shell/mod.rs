//! Window management policy: when windows are mapped, where they go, and who
//! has keyboard focus.

mod grabs;
mod modes;
pub mod placement;
mod popup_grab;
pub mod positioner;
pub mod subsurface;

use smithay::backend::renderer::utils::{on_commit_buffer_handler, with_renderer_surface_state};
use smithay::desktop::Window;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Logical, Point, SERIAL_COUNTER};
use smithay::wayland::compositor::{get_parent, with_states};
use smithay::wayland::shell::xdg::XdgToplevelSurfaceData;
use std::sync::Mutex;

use crate::Axiom;

impl Axiom {
    /// The mapped window whose toplevel surface is `surface`.
    pub fn window_for_surface(&self, surface: &WlSurface) -> Option<Window> {
        self.space.elements().find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == surface)).cloned()
    }

    /// Gives keyboard focus to the topmost window, or to nobody.
    pub fn focus_top_window(&mut self) {
        let top = self.space.elements().last().and_then(|w| w.toplevel()).map(|t| t.wl_surface().clone());
        if let Some(keyboard) = self.seat.get_keyboard() {
            keyboard.set_focus(self, top, SERIAL_COUNTER.next_serial());
        }
    }
}

/// Per-commit shell work: the initial configure of toplevels and popups, and
/// mapping a toplevel once it has content. A commit can map, resize or reshape
/// what is under the pointer, so the pointer's focus is looked at again after it.
pub fn handle_commit(state: &mut Axiom, surface: &WlSurface) {
    // A subsurface's commit (or its parent's) can move or reshape it: the window's bounds follow.
    let moved = subsurface::apply_child_positions(surface);
    if moved || get_parent(surface).is_some() {
        let mut root = surface.clone();
        while let Some(parent) = get_parent(&root) {
            root = parent;
        }
        if moved {
            // The renderer's view of each surface holds its offset: recompute it.
            on_commit_buffer_handler::<Axiom>(&root);
        }
        if let Some(window) = state.window_for_surface(&root) {
            window.on_commit();
            keep_surface_in_place(state, &window);
        }
    }
    commit_shell(state, surface);
    state.refresh_pointer_focus();
}

fn commit_shell(state: &mut Axiom, surface: &WlSurface) {
    if let Some(window) = state.window_for_surface(surface) {
        keep_surface_in_place(state, &window);
        state.anchor_resized_window(&window);
        state.place_for_mode(&window);
        return;
    }
    if let Some(index) =
        state.unmapped_windows.iter().position(|w| w.toplevel().is_some_and(|t| t.wl_surface() == surface))
    {
        let window = state.unmapped_windows[index].clone();
        let Some(toplevel) = window.toplevel() else { return };
        let initial_configure_sent = with_states(surface, |states| {
            states
                .data_map
                .get::<XdgToplevelSurfaceData>()
                .and_then(|data| data.lock().ok().map(|d| d.initial_configure_sent))
                .unwrap_or(false)
        });
        if !initial_configure_sent {
            // Let the client pick its own size: windows float, so we do not impose one.
            toplevel.send_configure();
            // Only an embedder that accepts unconfigured buffers can see a buffer in this
            // very commit; such a window is mapped with it right away.
            if !state.xdg_strict.allow_unconfigured_buffers {
                return;
            }
        }
        window.on_commit();
        let size = window.geometry().size;
        let has_buffer = with_renderer_surface_state(surface, |s| s.buffer().is_some()).unwrap_or(false);
        if has_buffer && size.w > 0 && size.h > 0 {
            state.unmapped_windows.remove(index);
            let location = state.new_window_location(size);
            state.space.map_element(window.clone(), location, true);
            keep_surface_in_place(state, &window);
            state.place_for_mode(&window);
            toplevel.with_pending_state(|s| {
                s.states.set(smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::State::Activated)
            });
            toplevel.send_pending_configure();
            // The new window takes the focus, which ends any popup grab.
            state.dismiss_popup_grabs();
            state.focus_top_window();
            tracing::info!(app_id = ?app_id(&window), x = location.x, y = location.y, w = size.w, h = size.h, "window mapped");
        }
        return;
    }

    if let Some(smithay::desktop::PopupKind::Xdg(xdg)) = state.popups.find_popup(surface) {
        if !xdg.is_initial_configure_sent() {
            if let Err(err) = xdg.send_configure() {
                tracing::debug!("popup configure failed: {err:?}");
            }
        }
    }
}

/// The window's geometry origin (in its surface's coordinates) at its last commit.
#[derive(Default)]
struct GeometryOrigin(Mutex<Option<Point<i32, Logical>>>);

/// Without an explicit window geometry, a window's geometry is the bounds of its
/// surface tree, so a subsurface placed left of or above the main surface moves
/// the geometry's origin. The window is moved along so that its surfaces stay
/// where they are on screen.
fn keep_surface_in_place(state: &mut Axiom, window: &Window) {
    let origin = window.geometry().loc;
    window.user_data().insert_if_missing_threadsafe(GeometryOrigin::default);
    let Some(slot) = window.user_data().get::<GeometryOrigin>() else { return };
    let previous = slot.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).replace(origin);
    let (Some(previous), Some(location)) = (previous, state.space.element_location(window)) else { return };
    if previous != origin {
        state.move_window(window, location + (origin - previous));
    }
}

impl Axiom {
    /// Moves a mapped window without changing its place in the stacking order.
    pub fn move_window(&mut self, window: &Window, location: Point<i32, Logical>) {
        let above: Vec<Window> = self.space.elements().skip_while(|w| *w != window).skip(1).cloned().collect();
        self.space.map_element(window.clone(), location, false);
        for other in &above {
            self.space.raise_element(other, false);
        }
        self.schedule_repaint();
    }
}

fn app_id(window: &Window) -> Option<String> {
    let toplevel = window.toplevel()?;
    with_states(toplevel.wl_surface(), |states| {
        states.data_map.get::<XdgToplevelSurfaceData>().and_then(|data| data.lock().ok().and_then(|d| d.app_id.clone()))
    })
}
