//! One file per protocol family, each wiring smithay's handler traits (or, for
//! protocols smithay lacks, our own dispatch) into [`crate::Axiom`].

pub mod capture;
pub mod color_representation;
pub mod compositor;
pub mod cursor_session;
pub mod drm_syncobj;
pub mod foreign_toplevel;
pub mod frame_pacing;
pub mod image_copy_capture;
pub mod misc;
pub mod screencopy;
pub mod seat;
pub mod shm;
pub mod strict;
pub mod tearing_control;
pub mod timeline_files;
pub mod xdg_shell;

use std::ffi::CString;

use smithay::reexports::wayland_server::backend::protocol::{Interface, ProtocolError};
use smithay::reexports::wayland_server::{Client, DisplayHandle, New};

/// wayland-server generates no wl_display resource; object ids are looked up
/// by number and interfaces compared by name, so this description is enough
/// to address the client's display object (always id 1).
static WL_DISPLAY: Interface = Interface { name: "wl_display", version: 1, requests: &[], events: &[], c_ptr: None };

/// Sends `client` `wl_display.error(code, message)`, and with it goes.
pub fn display_error(dh: &DisplayHandle, client: &Client, code: u32, message: String) {
    let handle = dh.backend_handle();
    match handle.object_for_protocol_id(client.id(), &WL_DISPLAY, 1) {
        Ok(display) => handle.post_error(display, code, CString::new(message).unwrap_or_default()),
        // Not expected: every client has its wl_display. Still make sure it goes.
        Err(_) => client.kill(dh, ProtocolError { code, object_id: 1, object_interface: "wl_display".into(), message }),
    }
}

/// The protocol id of the object a request creates. wayland-server keeps it to
/// itself until the object is initialised, which smithay does; its debug form
/// names it ("ObjectId(wl_shm_pool@8[3], 12)"). Were that form to change, pools
/// (and timelines) would go uncharged, and `load::going_over_a_client_limit_...`
/// would fail.
pub fn new_object_protocol_id<I: std::fmt::Debug>(new: &New<I>) -> Option<u32> {
    let debug = format!("{new:?}");
    let after_at = debug.split_once("ObjectId(")?.1.split_once('@')?.1;
    let digits: String = after_at.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
