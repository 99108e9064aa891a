//! Window management policy: when windows are mapped, where they go, and who
//! has keyboard focus.

pub mod placement;

use smithay::desktop::Window;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::SERIAL_COUNTER;
use smithay::wayland::compositor::with_states;
use smithay::wayland::shell::xdg::XdgToplevelSurfaceData;

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
/// mapping a toplevel once it has content.
pub fn handle_commit(state: &mut Axiom, surface: &WlSurface) {
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
            return;
        }
        window.on_commit();
        let size = window.geometry().size;
        if size.w > 0 && size.h > 0 {
            state.unmapped_windows.remove(index);
            let location = placement::centred(state.output_size(), size);
            state.space.map_element(window.clone(), location, true);
            toplevel.with_pending_state(|s| {
                s.states.set(smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::State::Activated)
            });
            toplevel.send_pending_configure();
            state.focus_top_window();
            tracing::info!(app_id = ?app_id(&window), x = location.x, y = location.y, w = size.w, h = size.h, "window mapped");
        }
        return;
    }

    if let Some(popup) = state.popups.find_popup(surface) {
        if let smithay::desktop::PopupKind::Xdg(ref xdg) = popup {
            if !xdg.is_initial_configure_sent() {
                if let Err(err) = xdg.send_configure() {
                    tracing::debug!("popup configure failed: {err:?}");
                }
            }
        }
    }
}

fn app_id(window: &Window) -> Option<String> {
    let toplevel = window.toplevel()?;
    with_states(toplevel.wl_surface(), |states| {
        states.data_map.get::<XdgToplevelSurfaceData>().and_then(|data| data.lock().ok().and_then(|d| d.app_id.clone()))
    })
}
