//! wp_tearing_control_v1: one per surface (`tearing_control_exists` otherwise), an
//! unknown hint is a malformed request, and an object whose surface is gone is inert.
//! Where the display has no asynchronous flips (headless here; on KMS: `drm::`), a
//! surface that asks to tear is presented at vblank, and says so.

use axiom_testclient::client::Presented;
use axiom_testclient::hostile::wire::{Arg, Ending};
use axiom_testclient::hostile::WireClient;
use axiom_testclient::image::{Format32, Rgba};
use axiom_testclient::Image;

use crate::common::start;

/// wp_tearing_control_manager_v1.get_tearing_control, wp_tearing_control_v1's requests.
const GET_TEARING_CONTROL: u16 = 1;
const SET_PRESENTATION_HINT: u16 = 0;
const DESTROY: u16 = 1;
const ASYNC: u32 = 1;
/// wp_presentation_feedback.kind.vsync
const VSYNC: u32 = 0x1;

/// A raw client with the manager bound and one surface.
fn manager_and_surface(compositor: &axiom_testclient::Compositor) -> (WireClient, u32, u32) {
    let mut client = WireClient::connect(&compositor.socket_path()).unwrap();
    let globals = client.bind_common().unwrap();
    let manager = client.bind("wp_tearing_control_manager_v1", 1).unwrap();
    let surface = client.create_surface(&globals).unwrap();
    (client, manager, surface)
}

fn get_control(client: &mut WireClient, manager: u32, surface: u32) -> u32 {
    let control = client.new_id();
    client.send(manager, GET_TEARING_CONTROL, &[Arg::Uint(control), Arg::Uint(surface)]).unwrap();
    control
}

#[test]
fn a_surface_has_one_tearing_control_at_a_time() {
    let mut compositor = start(64, 64);
    let (mut client, manager, surface) = manager_and_surface(&compositor);
    let first = get_control(&mut client, manager, surface);
    client.send(first, SET_PRESENTATION_HINT, &[Arg::Uint(ASYNC)]).unwrap();
    client.send(first, DESTROY, &[]).unwrap();
    // Once the first is destroyed, the surface may have another.
    let _second = get_control(&mut client, manager, surface);
    client.roundtrip().expect("a new tearing control after the last was destroyed");
    let _third = get_control(&mut client, manager, surface);
    match client.expect_end().unwrap() {
        Ending::Error(err) => assert_eq!((err.object, err.code), (manager, 0), "tearing_control_exists: {err:?}"),
        other => panic!("want tearing_control_exists, got {other:?}"),
    }
    assert!(compositor.is_running());
}

#[test]
fn an_unknown_presentation_hint_is_a_malformed_request() {
    let mut compositor = start(64, 64);
    let (mut client, manager, surface) = manager_and_surface(&compositor);
    let control = get_control(&mut client, manager, surface);
    client.send(control, SET_PRESENTATION_HINT, &[Arg::Uint(7)]).unwrap();
    match client.expect_end().unwrap() {
        // wl_display.error invalid_method, naming the hint.
        Ending::Error(err) => {
            assert_eq!((err.object, err.code), (1, 1), "{err:?}");
            assert!(err.message.contains("hint 7"), "{err:?}");
        }
        other => panic!("want wl_display.invalid_method, got {other:?}"),
    }
    assert!(compositor.is_running());
}

#[test]
fn a_tearing_control_whose_surface_is_gone_is_inert() {
    let compositor = start(64, 64);
    let (mut client, manager, surface) = manager_and_surface(&compositor);
    let control = get_control(&mut client, manager, surface);
    client.send(surface, 0, &[]).unwrap(); // wl_surface.destroy
    client.roundtrip().unwrap();
    client.send(control, SET_PRESENTATION_HINT, &[Arg::Uint(ASYNC)]).unwrap();
    client.send(control, DESTROY, &[]).unwrap();
    client.roundtrip().expect("requests on an inert tearing control are no error");
}

#[test]
fn a_surface_that_asks_to_tear_where_the_display_cannot_is_presented_at_vblank() {
    let compositor = start(64, 64);
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("tearing").unwrap();
    let _control = client.ask_to_tear(&window.surface).unwrap();
    let buffer =
        client.create_buffer(&Image::solid(16, 16, Rgba::opaque(200, 0, 0)), Format32::Xrgb8888, 64, 0xff).unwrap();
    for _ in 0..3 {
        let feedback = client.request_feedback(&window.surface);
        client.present(&window.surface, &buffer).unwrap();
        match client.wait_for_feedback(&[feedback]).unwrap().remove(0) {
            Presented::Presented { flags, .. } => assert_eq!(flags & VSYNC, VSYNC, "presented at vblank: {flags:#x}"),
            Presented::Discarded => panic!("a shown frame was discarded"),
        }
    }
}
