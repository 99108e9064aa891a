//! A client that disconnects mid-frame, or is killed for a protocol error, does
//! not stop the compositor from serving a second client.

use axiom_testclient::image::{Format32, Rgba};
use axiom_testclient::Image;

use crate::common::{assert_image, centred, start};

const OUT_W: u32 = 200;
const OUT_H: u32 = 150;

/// A well-behaved client draws a window and sees it on a screenshot.
fn second_client_is_served(compositor: &axiom_testclient::Compositor) {
    let mut client = compositor.connect().expect("the compositor still accepts clients");
    let colour = Rgba::opaque(12, 200, 34);
    let window = client.create_window("survivor").unwrap();
    let buffer = client.create_buffer(&Image::solid(50, 30, colour), Format32::Xrgb8888, 200, 0xff).unwrap();
    client.present(&window.surface, &buffer).unwrap();
    let (x, y) = centred(OUT_W, OUT_H, 50, 30);
    let shot = client.screenshot_region(x as i32, y as i32, 50, 30).unwrap();
    assert_image(&shot, &Image::solid(50, 30, colour), 0, "survivor");
}

#[test]
fn client_disconnecting_mid_frame_does_not_disturb_others() {
    let mut compositor = start(OUT_W, OUT_H);
    {
        let mut client = compositor.connect().unwrap();
        let window = client.create_window("leaver").unwrap();
        let buffer =
            client.create_buffer(&Image::solid(64, 64, Rgba::opaque(255, 0, 0)), Format32::Argb8888, 256, 0).unwrap();
        window.surface.attach(Some(&buffer.buffer), 0, 0);
        window.surface.damage_buffer(0, 0, 64, 64);
        let _callback = window.surface.frame(&client.qh, ());
        window.surface.commit();
        // A second commit is half built (attach, no commit) when the socket closes.
        window.surface.attach(Some(&buffer.buffer), 0, 0);
        client.queue.flush().unwrap();
        // Dropping the client closes the socket with a frame callback pending.
    }
    second_client_is_served(&compositor);
    assert!(compositor.is_running());
}

#[test]
fn protocol_error_of_one_client_leaves_others_running() {
    let mut compositor = start(OUT_W, OUT_H);
    let mut bystander = compositor.connect().unwrap();
    let bystander_window = bystander.create_window("bystander").unwrap();
    let blue = client_buffer(&mut bystander, Rgba::opaque(0, 0, 255));
    bystander.present(&bystander_window.surface, &blue).unwrap();

    let mut offender = compositor.connect().unwrap();
    let memory = axiom_testclient::memfd::SharedMemory::new(4096).unwrap();
    let pool = offender.shm.create_pool(memory.fd(), 4096, &offender.qh, ());
    // Stride smaller than a row: wl_shm.error.invalid_stride (2).
    let _bad = pool.create_buffer(0, 32, 32, 8, wayland_client::protocol::wl_shm::Format::Xrgb8888, &offender.qh, ());
    let (_interface, code) = offender.expect_protocol_error().unwrap();
    assert_eq!(code, wayland_client::protocol::wl_shm::Error::InvalidStride as u32);

    // The bystander still gets frame callbacks, and a new client is served.
    bystander.present(&bystander_window.surface, &blue).unwrap();
    bystander_window.destroy();
    bystander.roundtrip().unwrap();
    second_client_is_served(&compositor);
    assert!(compositor.is_running());
}

fn client_buffer(client: &mut axiom_testclient::TestClient, colour: Rgba) -> axiom_testclient::Buffer {
    client.create_buffer(&Image::solid(20, 20, colour), Format32::Xrgb8888, 80, 0xff).unwrap()
}

#[test]
fn a_vanished_client_leaves_no_window_behind() {
    let compositor = start(OUT_W, OUT_H);
    {
        let mut client = compositor.connect().unwrap();
        let window = client.create_window("vanishing").unwrap();
        let buffer = client
            .create_buffer(&Image::solid(60, 40, Rgba::opaque(200, 0, 0)), Format32::Xrgb8888, 240, 0xff)
            .unwrap();
        client.present(&window.surface, &buffer).unwrap();
        // The connection closes without destroying anything.
    }
    let mut observer = compositor.connect().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let shot = observer.screenshot().unwrap();
        if shot == Image::solid(OUT_W, OUT_H, crate::common::BACKGROUND) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the dead client's window is still on screen");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
