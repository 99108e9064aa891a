//! `--kiosk`: every toplevel fills the primary output, fullscreen, whatever it
//! asks for, and the newest is on top (as cage and weston's kiosk-shell).

use axiom_testclient::decoration::Mode;
use axiom_testclient::image::{Format32, Rgba};
use axiom_testclient::{Image, TestClient, Window};

use crate::common::{assert_image, start_with};

const SIZE: (u32, u32) = (160, 120);

/// Shows `colour` over the whole of `window` at the size it was asked for.
fn fill(client: &mut TestClient, window: &Window, colour: Rgba) -> axiom_testclient::Buffer {
    let (w, h) = client.configured_size(window);
    assert_eq!((w as u32, h as u32), SIZE, "a kiosk window is asked to fill the output");
    let buffer =
        client.create_buffer(&Image::solid(w as u32, h as u32, colour), Format32::Xrgb8888, w as usize * 4, 0xff);
    let buffer = buffer.unwrap();
    client.present(&window.surface, &buffer).unwrap();
    buffer
}

#[test]
fn every_toplevel_fills_the_output_and_the_newest_is_on_top() {
    let compositor = start_with(SIZE.0, SIZE.1, &["--kiosk"]);
    let mut client = compositor.connect().unwrap();
    let (red, blue) = (Rgba::opaque(200, 10, 10), Rgba::opaque(10, 10, 200));

    let first = client.create_window("kiosk-first").unwrap();
    let _red = fill(&mut client, &first, red);
    assert_image(&client.screenshot().unwrap(), &Image::solid(SIZE.0, SIZE.1, red), 0, "kiosk-first");

    // Asking to leave fullscreen, or for a size of its own, changes nothing.
    let before = client.configure_serial(&first);
    first.toplevel.unset_fullscreen();
    assert_eq!(client.ack_next_configure(&first, before).unwrap(), (160, 120), "still fullscreen");
    let before = client.configure_serial(&first);
    first.toplevel.unset_maximized();
    assert_eq!(client.ack_next_configure(&first, before).unwrap(), (160, 120), "still fullscreen");

    let second = client.create_window("kiosk-second").unwrap();
    let _blue = fill(&mut client, &second, blue);
    assert_image(&client.screenshot().unwrap(), &Image::solid(SIZE.0, SIZE.1, blue), 0, "kiosk-newest-on-top");

    second.toplevel.destroy();
    second.xdg_surface.destroy();
    second.surface.destroy();
    client.roundtrip().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let shot = client.screenshot().unwrap();
        if shot.compare(&Image::solid(SIZE.0, SIZE.1, red), 0).is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the older window shows again once the newest is gone");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The decoration mode a window asking for client-side decorations is configured with.
fn decoration_for_client_side_request(args: &[&str]) -> Option<Mode> {
    let compositor = start_with(SIZE.0, SIZE.1, args);
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("decorations").unwrap();
    let decoration = client.request_decoration(&window, Mode::ClientSide).unwrap();
    let before = client.configure_serial(&window);
    client.ack_next_configure(&window, before).unwrap();
    client.decoration_mode(&decoration)
}

#[test]
fn a_kiosk_draws_no_decorations_and_lets_no_client_draw_its_own() {
    assert_eq!(decoration_for_client_side_request(&["--kiosk"]), Some(Mode::ServerSide));
    assert_eq!(decoration_for_client_side_request(&[]), Some(Mode::ClientSide), "outside a kiosk the client may");
}

#[test]
fn without_kiosk_a_toplevel_picks_its_size() {
    let compositor = start_with(SIZE.0, SIZE.1, &[]);
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("not-kiosk").unwrap();
    assert_eq!(client.configured_size(&window), (0, 0), "the client picks its size");
}

#[test]
fn an_x11_window_fills_the_output_too() {
    let compositor =
        axiom_testclient::Compositor::start_with_xwayland(&crate::common::axiom_binary(), 320, 240, &["--kiosk"])
            .expect("start axiom");
    let mut child = crate::third_party::spawn_glxgears(&compositor);
    // glxgears asks for 300x300 and paints all of whatever size it gets: every pixel of the output.
    crate::third_party::wait_on_screen(&compositor, (0, 0, 320, 240), 320 * 240, "kiosk-glxgears");
    let _ = child.kill();
    let _ = child.wait();
}
