//! wl_seat with a keyboard, a pointer and touch, and wl_data_device_manager.
//!
//! The seat exists on every backend with all three capabilities, whatever
//! devices there are (the headless backend has none): clients such as foot
//! refuse to start without one. Keyboard focus goes to the newest or clicked
//! window; input, where a backend produces it, is routed by `crate::input`.

use smithay::input::keyboard::XkbConfig;
use smithay::input::{Seat, SeatHandler, SeatState};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{DisplayHandle, Resource};
use smithay::wayland::selection::data_device::{
    set_data_device_focus, ClientDndGrabHandler, DataDeviceHandler, DataDeviceState, ServerDndGrabHandler,
};
use smithay::wayland::selection::SelectionHandler;
use smithay::{delegate_data_device, delegate_seat};

use crate::Axiom;

pub const SEAT_NAME: &str = "seat0";

pub fn create_virtual_seat(dh: &DisplayHandle, seat_state: &mut SeatState<Axiom>) -> anyhow::Result<Seat<Axiom>> {
    let mut seat = seat_state.new_wl_seat(dh, SEAT_NAME);
    // Default XKB rules (evdev/pc105/us); the keymap comes from xkb-data.
    seat.add_keyboard(XkbConfig::default(), 200, 25)
        .map_err(|err| anyhow::anyhow!("cannot create the seat's keyboard (is xkb-data installed?): {err}"))?;
    seat.add_pointer();
    seat.add_touch();
    Ok(seat)
}

impl SeatHandler for Axiom {
    type KeyboardFocus = WlSurface;
    type PointerFocus = WlSurface;
    type TouchFocus = WlSurface;

    fn seat_state(&mut self) -> &mut SeatState<Self> {
        &mut self.seat_state
    }

    fn cursor_image(&mut self, _seat: &Seat<Self>, image: smithay::input::pointer::CursorImageStatus) {
        self.set_cursor_status(image);
    }

    fn focus_changed(&mut self, seat: &Seat<Self>, focused: Option<&WlSurface>) {
        let client = focused.and_then(|surface| self.display_handle.get_client(surface.id()).ok());
        set_data_device_focus(&self.display_handle, seat, client);
    }
}
delegate_seat!(Axiom);

impl SelectionHandler for Axiom {
    type SelectionUserData = ();
}

impl DataDeviceHandler for Axiom {
    fn data_device_state(&self) -> &DataDeviceState {
        &self.data_device_state
    }
}
impl ClientDndGrabHandler for Axiom {}
impl ServerDndGrabHandler for Axiom {}
delegate_data_device!(Axiom);
