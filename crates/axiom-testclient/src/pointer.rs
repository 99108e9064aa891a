//! wl_seat's pointer from the client side: where it entered, and the cursor a
//! client sets with wl_pointer.set_cursor.

use wayland_client::backend::ObjectId;
use wayland_client::protocol::wl_pointer::{self, WlPointer};
use wayland_client::protocol::wl_seat::WlSeat;
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, Proxy, QueueHandle};

use crate::client::{State, TestClient};

/// What the pointer told this client.
#[derive(Default, Debug, Clone)]
pub struct PointerEvents {
    /// The last `enter`: its serial and surface; None after a `leave`.
    pub entered: Option<(u32, ObjectId)>,
    /// The last position on the entered surface (surface-local).
    pub position: (f64, f64),
}

impl TestClient {
    /// Binds the seat and gets its pointer.
    pub fn pointer(&mut self) -> anyhow::Result<WlPointer> {
        let seat: WlSeat = self.globals.bind(&self.qh, 1..=7, ())?;
        let pointer = seat.get_pointer(&self.qh, ());
        self.roundtrip()?;
        Ok(pointer)
    }

    /// Waits until the pointer is on `surface`; returns the enter serial.
    pub fn wait_pointer_on(&mut self, surface: &WlSurface) -> anyhow::Result<u32> {
        let id = surface.id();
        self.wait_until("the pointer entered the surface", |s| s.pointer.entered.as_ref().is_some_and(|e| e.1 == id))?;
        Ok(self.state.pointer.entered.as_ref().map_or(0, |e| e.0))
    }

    /// What the pointer told this client so far.
    pub fn pointer_events(&self) -> &PointerEvents {
        &self.state.pointer
    }
}

impl Dispatch<WlSeat, ()> for State {
    fn event(_: &mut Self, _: &WlSeat, _: <WlSeat as Proxy>::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {}
}

impl Dispatch<WlPointer, ()> for State {
    fn event(state: &mut Self, _: &WlPointer, event: wl_pointer::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        match event {
            wl_pointer::Event::Enter { serial, surface, surface_x, surface_y } => {
                state.pointer.entered = Some((serial, surface.id()));
                state.pointer.position = (surface_x, surface_y);
            }
            wl_pointer::Event::Leave { .. } => state.pointer.entered = None,
            wl_pointer::Event::Motion { surface_x, surface_y, .. } => state.pointer.position = (surface_x, surface_y),
            _ => {}
        }
    }
}
