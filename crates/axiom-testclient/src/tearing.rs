//! wp_tearing_control_v1 from the client side.

use wayland_client::protocol::wl_surface::WlSurface;
use wayland_protocols::wp::tearing_control::v1::client::{
    wp_tearing_control_manager_v1::WpTearingControlManagerV1,
    wp_tearing_control_v1::{PresentationHint, WpTearingControlV1},
};

use crate::client::{State, TestClient};

impl TestClient {
    pub fn bind_tearing_control(&mut self) -> anyhow::Result<WpTearingControlManagerV1> {
        Ok(self.globals.bind(&self.qh, 1..=1, ())?)
    }

    /// A wp_tearing_control_v1 for `surface` that asks for asynchronous presentation
    /// (from the next commit).
    pub fn ask_to_tear(&mut self, surface: &WlSurface) -> anyhow::Result<WpTearingControlV1> {
        let manager = self.bind_tearing_control()?;
        let control = manager.get_tearing_control(surface, &self.qh, ());
        control.set_presentation_hint(PresentationHint::Async);
        Ok(control)
    }
}

wayland_client::delegate_noop!(State: ignore WpTearingControlManagerV1);
wayland_client::delegate_noop!(State: ignore WpTearingControlV1);
