//! Small protocols that need no policy of ours: wl_output + xdg-output,
//! wp_presentation, wp_viewporter, wp_single_pixel_buffer, fractional-scale
//! and xdg-decoration (server-side by default).

use smithay::reexports::wayland_protocols::xdg::decoration::zv1::server::zxdg_toplevel_decoration_v1::Mode as DecorationMode;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::wayland::compositor::with_states;
use smithay::wayland::fractional_scale::{with_fractional_scale, FractionalScaleHandler};
use smithay::wayland::output::OutputHandler;
use smithay::wayland::shell::xdg::decoration::XdgDecorationHandler;
use smithay::wayland::shell::xdg::ToplevelSurface;
use smithay::{
    delegate_fractional_scale, delegate_output, delegate_presentation, delegate_single_pixel_buffer,
    delegate_viewporter, delegate_xdg_decoration,
};

use crate::Axiom;

impl OutputHandler for Axiom {}
delegate_output!(Axiom);

delegate_presentation!(Axiom);
delegate_viewporter!(Axiom);
delegate_single_pixel_buffer!(Axiom);

impl FractionalScaleHandler for Axiom {
    fn new_fractional_scale(&mut self, surface: WlSurface) {
        // Every output has scale 1.
        let scale = self.output.current_scale().fractional_scale();
        with_states(&surface, |states| {
            with_fractional_scale(states, |fractional| fractional.set_preferred_scale(scale));
        });
    }
}
delegate_fractional_scale!(Axiom);

impl XdgDecorationHandler for Axiom {
    fn new_decoration(&mut self, toplevel: ToplevelSurface) {
        set_decoration_mode(&toplevel, DecorationMode::ServerSide);
    }

    fn request_mode(&mut self, toplevel: ToplevelSurface, mode: DecorationMode) {
        // A kiosk shows no decorations: server-side, and the server draws none.
        set_decoration_mode(&toplevel, if self.kiosk { DecorationMode::ServerSide } else { mode });
    }

    fn unset_mode(&mut self, toplevel: ToplevelSurface) {
        set_decoration_mode(&toplevel, DecorationMode::ServerSide);
    }
}
delegate_xdg_decoration!(Axiom);

fn set_decoration_mode(toplevel: &ToplevelSurface, mode: DecorationMode) {
    toplevel.with_pending_state(|state| state.decoration_mode = Some(mode));
    // Before the initial configure the mode rides along with it.
    if toplevel.is_initial_configure_sent() {
        toplevel.send_pending_configure();
    }
}
