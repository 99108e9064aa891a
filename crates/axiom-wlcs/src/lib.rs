//! WLCS integration module: the wlcs runner dlopens this library, finds
//! `wlcs_server_integration` and drives Axiom through it, one compositor per test.
//!
//! The compositor runs in-process on its own thread (`server.rs`); every call
//! from WLCS's thread becomes a command on a calloop channel and waits until
//! the compositor has carried it out, so that events it causes are queued to
//! clients before WLCS's next roundtrip.

mod server;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};

use smithay::utils::{Logical, Point};
use wayland_sys::client::{wayland_client_handle, wl_display, wl_proxy};
use wayland_sys::common::{wl_fixed_t, wl_fixed_to_double};
use wayland_sys::ffi_dispatch;
use wlcs::ffi_display_server_api::{WlcsExtensionDescriptor, WlcsIntegrationDescriptor, WlcsServerIntegration};
use wlcs::ffi_wrappers::wlcs_server;
use wlcs::{extension_list, wlcs_server_integration, Wlcs};

use server::{Command, Server};

wlcs_server_integration!(AxiomWlcs);

/// The globals Axiom offers, at the versions it offers them: WLCS skips tests
/// whose protocols are missing here instead of failing them.
static EXTENSIONS: &[WlcsExtensionDescriptor] = extension_list!(
    ("wl_compositor", 6),
    ("wl_subcompositor", 1),
    ("wl_shm", 1),
    ("wl_seat", 9),
    ("wl_output", 4),
    ("wl_data_device_manager", 3),
    ("xdg_wm_base", 6),
    ("zxdg_output_manager_v1", 3),
    ("zxdg_decoration_manager_v1", 1),
    ("wp_viewporter", 1),
    ("wp_presentation", 2),
    ("wp_fractional_scale_manager_v1", 1),
    ("wp_single_pixel_buffer_manager_v1", 1),
    ("zwp_linux_dmabuf_v1", 5),
);

static DESCRIPTOR: WlcsIntegrationDescriptor = WlcsIntegrationDescriptor {
    version: 1,
    num_extensions: EXTENSIONS.len(),
    supported_extensions: EXTENSIONS.as_ptr(),
};

/// Touch points get distinct slots; pointers all drive the seat's one pointer.
static NEXT_TOUCH_SLOT: AtomicU32 = AtomicU32::new(0);

struct AxiomWlcs {
    server: Option<Server>,
}

impl Wlcs for AxiomWlcs {
    type Pointer = Pointer;
    type Touch = Touch;

    fn new() -> Self {
        Self { server: None }
    }

    fn start(&mut self) {
        match Server::start() {
            Ok(server) => self.server = Some(server),
            // WLCS has no way to hear about it; every later call then fails visibly.
            Err(err) => eprintln!("axiom-wlcs: cannot start the compositor: {err:#}"),
        }
    }

    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    fn create_client_socket(&self) -> std::io::Result<OwnedFd> {
        let server = self.server.as_ref().ok_or(std::io::ErrorKind::NotConnected)?;
        let (client, compositor) = UnixStream::pair()?;
        // The fd number is how position_window_absolute later names this client.
        server
            .call(Command::NewClient { stream: compositor, fd: client.as_raw_fd() })
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::BrokenPipe, err))?;
        Ok(client.into())
    }

    fn position_window_absolute(&self, display: *mut wl_display, surface: *mut wl_proxy, x: i32, y: i32) {
        let Some(server) = &self.server else { return };
        // SAFETY: WLCS passes a live client display and that client's wl_surface proxy.
        let (fd, surface_id) = unsafe {
            (
                ffi_dispatch!(wayland_client_handle(), wl_display_get_fd, display),
                ffi_dispatch!(wayland_client_handle(), wl_proxy_get_id, surface),
            )
        };
        server.send(Command::PositionWindow { fd, surface_id, location: (x, y).into() });
    }

    fn create_pointer(&mut self) -> Option<Pointer> {
        Some(Pointer { server: self.server.as_ref()?.handle() })
    }

    fn create_touch(&mut self) -> Option<Touch> {
        let slot = NEXT_TOUCH_SLOT.fetch_add(1, Ordering::Relaxed);
        Some(Touch { server: self.server.as_ref()?.handle(), slot })
    }

    fn get_descriptor(&self) -> &WlcsIntegrationDescriptor {
        &DESCRIPTOR
    }
}

fn point(x: wl_fixed_t, y: wl_fixed_t) -> Point<f64, Logical> {
    (wl_fixed_to_double(x), wl_fixed_to_double(y)).into()
}

/// WLCS's touch calls declare wl_fixed_t, but its `Touch::down_at`/`move_to`
/// pass their integer pixel coordinates through unconverted (WLCS 1.5 and later).
fn touch_point(x: wl_fixed_t, y: wl_fixed_t) -> Point<f64, Logical> {
    (f64::from(x), f64::from(y)).into()
}

struct Pointer {
    server: server::Handle,
}

impl wlcs::Pointer for Pointer {
    fn move_absolute(&mut self, x: wl_fixed_t, y: wl_fixed_t) {
        self.server.send(Command::PointerMoveAbsolute(point(x, y)));
    }

    fn move_relative(&mut self, dx: wl_fixed_t, dy: wl_fixed_t) {
        self.server.send(Command::PointerMoveRelative(point(dx, dy)));
    }

    fn button_up(&mut self, button: i32) {
        self.server.send(Command::PointerButton { button: button as u32, pressed: false });
    }

    fn button_down(&mut self, button: i32) {
        self.server.send(Command::PointerButton { button: button as u32, pressed: true });
    }
}

struct Touch {
    server: server::Handle,
    slot: u32,
}

impl wlcs::Touch for Touch {
    fn touch_down(&mut self, x: wl_fixed_t, y: wl_fixed_t) {
        self.server.send(Command::TouchDown { slot: self.slot, location: touch_point(x, y) });
    }

    fn touch_move(&mut self, x: wl_fixed_t, y: wl_fixed_t) {
        self.server.send(Command::TouchMove { slot: self.slot, location: touch_point(x, y) });
    }

    fn touch_up(&mut self) {
        self.server.send(Command::TouchUp { slot: self.slot });
    }
}
