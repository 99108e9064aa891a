//! wp_color_representation_v1 from the client side.

use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::wp::color_representation::v1::client::{
    wp_color_representation_manager_v1::{self, WpColorRepresentationManagerV1},
    wp_color_representation_surface_v1::{Coefficients, Range, WpColorRepresentationSurfaceV1},
};

use crate::client::{State, TestClient};

#[derive(Default, Debug, Clone)]
pub struct ColorEvents {
    pub supported: Vec<(u32, u32)>,
    pub done: bool,
}

impl TestClient {
    pub fn bind_color_representation(&mut self) -> anyhow::Result<WpColorRepresentationManagerV1> {
        let manager = self.globals.bind(&self.qh, 1..=1, ())?;
        self.wait_until("color representation done", |s| s.color.done)?;
        Ok(manager)
    }

    pub fn color_events(&self) -> &ColorEvents {
        &self.state.color
    }

    /// Gives `surface` a colour representation with the given coefficients and range.
    pub fn set_color_representation(
        &mut self,
        manager: &WpColorRepresentationManagerV1,
        surface: &WlSurface,
        coefficients: Coefficients,
        range: Range,
    ) -> WpColorRepresentationSurfaceV1 {
        let rep = manager.get_surface(surface, &self.qh, ());
        rep.set_coefficients_and_range(coefficients, range);
        rep
    }
}

impl Dispatch<WpColorRepresentationManagerV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &WpColorRepresentationManagerV1,
        event: wp_color_representation_manager_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            wp_color_representation_manager_v1::Event::SupportedCoefficientsAndRanges { coefficients, range } => {
                state.color.supported.push((u32::from(coefficients), u32::from(range)));
            }
            wp_color_representation_manager_v1::Event::Done => state.color.done = true,
            _ => {}
        }
    }
}

wayland_client::delegate_noop!(State: ignore WpColorRepresentationSurfaceV1);
