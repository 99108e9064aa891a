//! zxdg_decoration_manager_v1 from the client side: which decoration mode the
//! compositor configures a toplevel with.

use wayland_client::{Connection, Dispatch, Proxy, QueueHandle, WEnum};
use wayland_protocols::xdg::decoration::zv1::client::{
    zxdg_decoration_manager_v1::ZxdgDecorationManagerV1,
    zxdg_toplevel_decoration_v1::{self, ZxdgToplevelDecorationV1},
};

pub use wayland_protocols::xdg::decoration::zv1::client::zxdg_toplevel_decoration_v1::Mode;

use crate::client::{State, TestClient, Window};

impl TestClient {
    /// Asks for `mode` decorations on `window` and returns the decoration object; the
    /// mode the compositor picks arrives with the next configure (`decoration_mode`).
    pub fn request_decoration(&mut self, window: &Window, mode: Mode) -> anyhow::Result<ZxdgToplevelDecorationV1> {
        let manager: ZxdgDecorationManagerV1 = self.globals.bind(&self.qh, 1..=1, ())?;
        let decoration = manager.get_toplevel_decoration(&window.toplevel, &self.qh, ());
        decoration.set_mode(mode);
        Ok(decoration)
    }

    /// The decoration mode last configured for `decoration`.
    pub fn decoration_mode(&self, decoration: &ZxdgToplevelDecorationV1) -> Option<Mode> {
        self.state.decoration_modes.get(&decoration.id()).copied()
    }
}

impl Dispatch<ZxdgDecorationManagerV1, ()> for State {
    fn event(
        _: &mut Self,
        _: &ZxdgDecorationManagerV1,
        _: <ZxdgDecorationManagerV1 as Proxy>::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<ZxdgToplevelDecorationV1, ()> for State {
    fn event(
        state: &mut Self,
        decoration: &ZxdgToplevelDecorationV1,
        event: zxdg_toplevel_decoration_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let zxdg_toplevel_decoration_v1::Event::Configure { mode: WEnum::Value(mode) } = event {
            state.decoration_modes.insert(decoration.id(), mode);
        }
    }
}
