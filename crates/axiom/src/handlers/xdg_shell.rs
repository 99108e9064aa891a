//! xdg_wm_base: toplevels, popups, positioners and configure/ack (the
//! dispatch goes through `strict.rs`).

use smithay::desktop::{PopupKind, Window};
use smithay::output::Output;
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::{ResizeEdge, State};
use smithay::reexports::wayland_server::protocol::wl_output::WlOutput;
use smithay::reexports::wayland_server::protocol::wl_seat::WlSeat;
use smithay::reexports::wayland_server::Resource;
use smithay::utils::Serial;
use smithay::wayland::shell::xdg::{PopupSurface, PositionerState, ToplevelSurface, XdgShellHandler, XdgShellState};

use crate::Axiom;

impl XdgShellHandler for Axiom {
    fn xdg_shell_state(&mut self) -> &mut XdgShellState {
        &mut self.xdg_shell_state
    }

    fn new_toplevel(&mut self, surface: ToplevelSurface) {
        self.xdg_strict.role_created(surface.wl_surface(), surface.xdg_toplevel().id());
        // The window is mapped on its first commit with a buffer, when its size is known
        // (see shell::handle_commit); until then it waits here.
        self.unmapped_windows.push(Window::new_wayland_window(surface.clone()));
        if self.kiosk {
            // Rides along with the initial configure.
            self.request_toplevel_mode(&surface, State::Fullscreen, true, Some(self.output.clone()));
        }
    }

    fn toplevel_destroyed(&mut self, surface: ToplevelSurface) {
        self.unmapped_windows.retain(|w| w.toplevel() != Some(&surface));
        if let Some(window) = self.window_for_surface(surface.wl_surface()) {
            self.space.unmap_elem(&window);
        }
        self.focus_top_window();
        self.refresh_pointer_focus();
        self.schedule_repaint();
    }

    fn new_popup(&mut self, surface: PopupSurface, positioner: PositionerState) {
        self.xdg_strict.role_created(surface.wl_surface(), surface.xdg_popup().id());
        if !super::strict::check_new_popup(self, surface.wl_surface(), &positioner) {
            return;
        }
        let positioner = crate::shell::positioner::new_popup_positioner(positioner);
        let geometry = self.popup_geometry(&surface, &positioner);
        surface.with_pending_state(|state| {
            state.geometry = geometry;
            state.positioner = positioner;
        });
        if let Err(err) = self.popups.track_popup(PopupKind::from(surface)) {
            tracing::debug!("popup of a dead client: {err:?}");
        }
    }

    fn reposition_request(&mut self, surface: PopupSurface, positioner: PositionerState, token: u32) {
        let geometry = self.popup_geometry(&surface, &positioner);
        surface.with_pending_state(|state| {
            state.geometry = geometry;
            state.positioner = positioner;
        });
        surface.send_repositioned(token);
    }

    fn move_request(&mut self, surface: ToplevelSurface, _seat: WlSeat, serial: Serial) {
        if !self.kiosk {
            self.start_interactive_move(&surface, serial);
        }
    }

    fn resize_request(&mut self, surface: ToplevelSurface, _seat: WlSeat, serial: Serial, edges: ResizeEdge) {
        if !self.kiosk {
            self.start_interactive_resize(&surface, serial, edges);
        }
    }

    fn maximize_request(&mut self, surface: ToplevelSurface) {
        self.request_toplevel_mode(&surface, State::Maximized, true, None);
    }

    fn unmaximize_request(&mut self, surface: ToplevelSurface) {
        self.request_toplevel_mode(&surface, State::Maximized, false, None);
    }

    fn fullscreen_request(&mut self, surface: ToplevelSurface, output: Option<WlOutput>) {
        let output = output.as_ref().and_then(Output::from_resource);
        self.request_toplevel_mode(&surface, State::Fullscreen, true, output);
    }

    fn unfullscreen_request(&mut self, surface: ToplevelSurface) {
        self.request_toplevel_mode(&surface, State::Fullscreen, false, None);
    }

    fn title_changed(&mut self, _surface: ToplevelSurface) {
        self.sync_foreign_toplevels();
    }

    fn app_id_changed(&mut self, _surface: ToplevelSurface) {
        self.sync_foreign_toplevels();
    }

    fn popup_destroyed(&mut self, surface: PopupSurface) {
        self.popup_gone(&surface);
        self.refresh_pointer_focus();
        self.schedule_repaint();
    }

    fn grab(&mut self, surface: PopupSurface, _seat: WlSeat, serial: Serial) {
        self.grab_popup(surface, serial);
    }
}
