//! ext-image-copy-capture-v1 with output and toplevel sources: the buffer
//! constraints a session announces, frames into wl_shm and into dma-bufs with exact
//! pixels (a window's covered parts included), damage since the session's last
//! frame, and the protocol's errors and failures. (zwlr_screencopy
//! into dma-bufs: `vulkan::dmabuf`, and on KMS `drm::frames`.)

use axiom_testclient::dmabuf::{seal_shrink, Created, Plane};
use axiom_testclient::ext_capture::ExtSession;
use axiom_testclient::image::Format32;
use axiom_testclient::memfd::SharedMemory;
use axiom_testclient::{Buffer, Image, Rgba, ShmLayout, TestClient};
use smithay::backend::allocator::Fourcc;
use wayland_client::protocol::wl_shm;

use crate::common::{assert_image, centred, import_stats, non_background, show_pattern, start};

const W: u32 = 160;
const H: u32 = 120;
/// ext_image_copy_capture_frame_v1.failure_reason
const BUFFER_CONSTRAINTS: u32 = 1;
const STOPPED: u32 = 2;

fn shm_target(client: &mut TestClient, width: u32, height: u32) -> Buffer {
    let bytes = vec![0x55; (width * height * 4) as usize];
    let layout = ShmLayout { width, height, stride: width as usize * 4, offset: 0 };
    client.create_shm_buffer(&bytes, layout, Format32::Xrgb8888.shm_code(), true).unwrap()
}

fn output_session(client: &mut TestClient) -> (ExtSession, axiom_testclient::ext_capture::SessionEvents) {
    let output = client.output.clone();
    client.ext_capture_session(&output).unwrap()
}

#[test]
fn an_output_session_announces_its_constraints_and_frames_carry_exact_pixels_and_what_changed() {
    let compositor = start(W, H);
    let mut client = compositor.connect().unwrap();
    let (window, _buffer, pattern) = show_pattern(&mut client, 40, 30);
    let (x, y) = centred(W, H, 40, 30);
    let (session, constraints) = output_session(&mut client);
    assert_eq!(constraints.buffer_size, Some((W, H)));
    assert!(!constraints.stopped);
    assert_eq!(constraints.shm_formats, vec![wl_shm::Format::Xrgb8888, wl_shm::Format::Argb8888]);

    // The first frame: the whole output, all of it damaged.
    let target = shm_target(&mut client, W, H);
    let first = client.ext_capture_frame(&session, &target.buffer).unwrap();
    assert!(first.ready, "{first:?}\n{}", compositor.log());
    assert_eq!(first.damage, vec![(0, 0, W as i32, H as i32)]);
    assert_eq!(first.transform, Some(0), "normal");
    assert!(first.presented.is_some());
    let shot = Image::from_xrgb8888(W, H, W as usize * 4, target.memory.bytes());
    assert_image(&shot.crop(x, y, 40, 30), &pattern, 0, "ext-first");
    assert_eq!(non_background(&shot, 0, 0, W, H), 40 * 30);

    // The next frame waits for a change, and says where it was.
    let frame = client.ext_start_frame(&session, &target.buffer);
    // A refresh goes by with nothing new on the output: the frame is not answered.
    client.commit_and_wait_frame(&window.surface).unwrap();
    client.commit_and_wait_frame(&window.surface).unwrap();
    let waiting = client.ext_frame_events(&frame).unwrap();
    assert!(!waiting.ready && waiting.failed.is_none(), "{waiting:?}");
    let green = Rgba::opaque(0, 255, 0);
    let changed = client.create_buffer(&Image::solid(40, 30, green), Format32::Xrgb8888, 40 * 4, 0xff).unwrap();
    window.surface.attach(Some(&changed.buffer), 0, 0);
    window.surface.damage_buffer(0, 0, 40, 30);
    window.surface.commit();
    let second = client.ext_finish_frame(frame).unwrap();
    assert!(second.ready, "{second:?}");
    assert!(!second.damage.is_empty(), "{second:?}");
    for &(dx, dy, dw, dh) in &second.damage {
        let (x, y) = (x as i32, y as i32);
        assert!(dx >= x && dy >= y && dx + dw <= x + 40 && dy + dh <= y + 30, "{second:?}: within the window");
    }
    let shot = Image::from_xrgb8888(W, H, W as usize * 4, target.memory.bytes());
    assert!(shot.crop(x, y, 40, 30) == Image::solid(40, 30, green), "{}", crate::common::save_png(&shot, "ext-second"));
}

/// Where the GPU can write dma-bufs, a session announces the render device and the
/// LINEAR formats, and a frame reaches a memfd dma-buf with nothing read back; where
/// it cannot (the CPU step forced), none is announced and a dma-buf frame fails with
/// `buffer_constraints`.
#[test]
fn an_output_session_captures_into_a_dmabuf_on_the_gpu_where_one_is_announced() {
    let compositor = start(W, H);
    let mut client = compositor.connect().unwrap();
    let (_window, _buffer, pattern) = show_pattern(&mut client, 40, 30);
    let (x, y) = centred(W, H, 40, 30);
    let (session, constraints) = output_session(&mut client);
    let (target, memory) = dmabuf_target(&mut client, W, H);
    let before = import_stats(&compositor);
    let frame = client.ext_capture_frame(&session, &target).unwrap();

    if crate::common::dmabuf_vulkan_counter(&compositor).is_none() {
        assert!(constraints.dmabuf_formats.is_empty() && constraints.dmabuf_device.is_none(), "{constraints:?}");
        assert_eq!(frame.failed, Some(BUFFER_CONSTRAINTS), "{frame:?}");
        return;
    }
    let linear = vec![0u64];
    assert_eq!(
        constraints.dmabuf_formats,
        vec![(Fourcc::Xrgb8888 as u32, linear.clone()), (Fourcc::Argb8888 as u32, linear)],
        "{constraints:?}"
    );
    assert!(constraints.dmabuf_device.is_some(), "{constraints:?}");
    assert!(frame.ready, "{frame:?}\n{}", compositor.log());
    let shot = Image::from_xrgb8888(W, H, W as usize * 4, memory.bytes());
    assert_image(&shot.crop(x, y, 40, 30), &pattern, 0, "ext-dmabuf");
    assert_eq!(non_background(&shot, 0, 0, W, H), 40 * 30);
    let after = import_stats(&compositor);
    assert_eq!(after["dmabuf_captures"], before["dmabuf_captures"] + 1, "{after:?}");
    assert_eq!(after.get("readback_bytes"), before.get("readback_bytes"), "nothing read back: {after:?}");
}

/// A second frame while one lives is `duplicate_frame`; `capture` with no buffer
/// `no_buffer`, twice `already_captured`; a buffer of another size fails with
/// `buffer_constraints`. Each error ends only its client.
#[test]
fn ext_capture_errors_are_the_protocols_own() {
    const DUPLICATE_FRAME: u32 = 1;
    const NO_BUFFER: u32 = 1;
    const ALREADY_CAPTURED: u32 = 3;
    let compositor = start(W, H);

    let mut client = compositor.connect().unwrap();
    let (session, _) = output_session(&mut client);
    let small = shm_target(&mut client, 32, 16);
    let failed = client.ext_capture_frame(&session, &small.buffer).unwrap();
    assert_eq!(failed.failed, Some(BUFFER_CONSTRAINTS), "{failed:?}");

    let cases: [(&str, u32, &str); 3] = [
        ("duplicate", DUPLICATE_FRAME, "ext_image_copy_capture_session_v1"),
        ("no buffer", NO_BUFFER, "ext_image_copy_capture_frame_v1"),
        ("twice", ALREADY_CAPTURED, "ext_image_copy_capture_frame_v1"),
    ];
    for (case, code, interface) in cases {
        let mut client = compositor.connect().unwrap();
        let (session, _) = output_session(&mut client);
        let target = shm_target(&mut client, W, H);
        let frame = session.session.create_frame(&client.qh, ());
        match case {
            "duplicate" => {
                let _second = session.session.create_frame(&client.qh, ());
            }
            "no buffer" => frame.capture(),
            _ => {
                frame.attach_buffer(&target.buffer);
                frame.capture();
                frame.capture();
            }
        }
        let (got_interface, got_code) = client.expect_protocol_error().unwrap();
        assert_eq!((got_interface.as_str(), got_code), (interface, code), "{case}");
    }
    let mut client = compositor.connect().unwrap();
    let (session, _) = output_session(&mut client);
    let target = shm_target(&mut client, W, H);
    assert!(client.ext_capture_frame(&session, &target.buffer).unwrap().ready, "others' captures go on");
}

/// A window `width` x `height` titled `title` showing one colour.
fn show_solid(client: &mut TestClient, title: &str, width: u32, height: u32, colour: Rgba) -> axiom_testclient::Window {
    let window = client.create_window(title).unwrap();
    let buffer =
        client.create_buffer(&Image::solid(width, height, colour), Format32::Xrgb8888, width as usize * 4, 0xff);
    client.present(&window.surface, &buffer.unwrap()).unwrap();
    window
}

/// A memfd dma-buf `width` x `height`, XRGB8888 LINEAR, for a capture to write.
fn dmabuf_target(
    client: &mut TestClient,
    width: u32,
    height: u32,
) -> (wayland_client::protocol::wl_buffer::WlBuffer, SharedMemory) {
    let dmabuf = client.bind_dmabuf(4).unwrap();
    let memory = SharedMemory::new((width * height * 4) as usize).unwrap();
    seal_shrink(memory.fd()).unwrap();
    let params = client.dmabuf_params(&dmabuf, &[Plane { fd: memory.fd(), offset: 0, stride: width * 4, modifier: 0 }]);
    let created = client.dmabuf_create(&params, width as i32, height as i32, Fourcc::Xrgb8888 as u32).unwrap();
    let Created::Buffer(buffer) = created else { panic!("create failed") };
    (buffer, memory)
}

/// A toplevel source captures its window alone: the parts another window covers
/// included, the size of its geometry; a frame waits for the window's own change (not
/// for what another window does over it); the list follows its title; its session
/// stops when it is unmapped.
#[test]
fn a_toplevel_session_captures_its_window_alone_covered_parts_included() {
    let compositor = start(W, H);
    let mut client = compositor.connect().unwrap();
    let (window, _buffer, pattern) = show_pattern(&mut client, 40, 30);
    let (x, y) = centred(W, H, 40, 30);
    // Centred over the pattern: covers its rows 10..20, all across.
    let red = Rgba::opaque(255, 0, 0);
    let cover = show_solid(&mut client, "cover", 60, 10, red);
    let screen = client.screenshot_of(&client.output.clone()).unwrap();
    assert!(screen.crop(x, y + 10, 40, 10) == Image::solid(40, 10, red), "the pattern is covered on screen");

    let toplevel = client.foreign_toplevel("pattern").unwrap();
    assert_eq!(toplevel.app_id, "axiom-testclient");
    assert_eq!(toplevel.identifier.len(), 32, "{toplevel:?}");
    let (session, constraints) = client.ext_toplevel_capture_session(&toplevel.handle).unwrap();
    assert_eq!(constraints.buffer_size, Some((40, 30)), "{constraints:?}");
    assert!(!constraints.stopped);

    let target = shm_target(&mut client, 40, 30);
    let first = client.ext_capture_frame(&session, &target.buffer).unwrap();
    assert!(first.ready, "{first:?}\n{}", compositor.log());
    assert_eq!(first.damage, vec![(0, 0, 40, 30)]);
    let shot = Image::from_xrgb8888(40, 30, 40 * 4, target.memory.bytes());
    assert_image(&shot, &pattern, 0, "toplevel-first");

    // The window over it changes: nothing of this window did, and its frame waits.
    let frame = client.ext_start_frame(&session, &target.buffer);
    let green = Rgba::opaque(0, 255, 0);
    let recoloured = client.create_buffer(&Image::solid(60, 10, green), Format32::Xrgb8888, 60 * 4, 0xff).unwrap();
    client.present(&cover.surface, &recoloured).unwrap();
    client.commit_and_wait_frame(&cover.surface).unwrap();
    let waiting = client.ext_frame_events(&frame).unwrap();
    assert!(!waiting.ready && waiting.failed.is_none(), "{waiting:?}");
    // Its own rows 2..4 change: the frame is answered with them.
    let mut changed = pattern.clone();
    for row in 2..4 {
        for col in 0..40 {
            changed.pixels[(row * 40 + col) as usize] = green;
        }
    }
    let update = client.create_buffer(&changed, Format32::Xrgb8888, 40 * 4, 0xff).unwrap();
    window.surface.attach(Some(&update.buffer), 0, 0);
    window.surface.damage_buffer(0, 2, 40, 2);
    window.surface.commit();
    let second = client.ext_finish_frame(frame).unwrap();
    assert!(second.ready, "{second:?}");
    assert!(!second.damage.is_empty(), "{second:?}");
    for &(dx, dy, dw, dh) in &second.damage {
        assert!(dx >= 0 && dy >= 0 && dx + dw <= 40 && dy + dh <= 30, "{second:?}: within the window");
        assert!(dy <= 2 && dy + dh >= 4, "{second:?}: covers the rows that changed");
    }
    let shot = Image::from_xrgb8888(40, 30, 40 * 4, target.memory.bytes());
    assert_image(&shot, &changed, 0, "toplevel-second");

    // The list follows the title.
    window.toplevel.set_title("renamed".into());
    let renamed = client.foreign_toplevel("renamed").unwrap();
    assert_eq!(renamed.identifier, toplevel.identifier);

    // Unmapped: a frame fails `stopped`, the session stops, the handle is closed.
    let frame = client.ext_start_frame(&session, &target.buffer);
    window.destroy();
    let stopped = client.ext_finish_frame(frame).unwrap();
    assert_eq!(stopped.failed, Some(STOPPED), "{stopped:?}");
    assert!(client.ext_session_events(&session).unwrap().stopped);
    client.wait_toplevel_closed(&toplevel.identifier).unwrap();
}

/// Into a dma-buf a window's frame is written on the GPU, nothing read back; resized,
/// its session announces the new size, and a frame into a buffer of the old one fails
/// with `buffer_constraints`.
#[test]
fn a_toplevel_capture_follows_its_windows_size_and_goes_into_dmabufs() {
    let compositor = start(W, H);
    let mut client = compositor.connect().unwrap();
    let (window, _buffer, pattern) = show_pattern(&mut client, 40, 30);
    let toplevel = client.foreign_toplevel("pattern").unwrap();
    let (session, constraints) = client.ext_toplevel_capture_session(&toplevel.handle).unwrap();
    if crate::common::dmabuf_vulkan_counter(&compositor).is_some() {
        assert!(!constraints.dmabuf_formats.is_empty(), "{constraints:?}");
        let (target, memory) = dmabuf_target(&mut client, 40, 30);
        let before = import_stats(&compositor);
        let frame = client.ext_capture_frame(&session, &target).unwrap();
        assert!(frame.ready, "{frame:?}\n{}", compositor.log());
        assert_image(&Image::from_xrgb8888(40, 30, 40 * 4, memory.bytes()), &pattern, 0, "toplevel-dmabuf");
        let after = import_stats(&compositor);
        assert_eq!(after["dmabuf_captures"], before["dmabuf_captures"] + 1, "{after:?}");
        assert_eq!(after.get("readback_bytes"), before.get("readback_bytes"), "nothing read back: {after:?}");
    } else {
        assert!(constraints.dmabuf_formats.is_empty(), "{constraints:?}");
    }

    let old = shm_target(&mut client, 40, 30);
    let blue = Rgba::opaque(0, 0, 255);
    let resized = client.create_buffer(&Image::solid(50, 20, blue), Format32::Xrgb8888, 50 * 4, 0xff).unwrap();
    client.present(&window.surface, &resized).unwrap();
    let announced = client.ext_session_events(&session).unwrap();
    assert_eq!(announced.buffer_size, Some((50, 20)), "{announced:?}");
    let failed = client.ext_capture_frame(&session, &old.buffer).unwrap();
    assert_eq!(failed.failed, Some(BUFFER_CONSTRAINTS), "{failed:?}");
    let target = shm_target(&mut client, 50, 20);
    let frame = client.ext_capture_frame(&session, &target.buffer).unwrap();
    assert!(frame.ready, "{frame:?}");
    assert!(Image::from_xrgb8888(50, 20, 50 * 4, target.memory.bytes()) == Image::solid(50, 20, blue));
}

/// A window past the device's largest texture (a 1x1 buffer stretched by wp_viewport)
/// cannot be painted alone: its session announces its size, and a frame fails with
/// `buffer_constraints`, with nothing sent to the GPU that it would refuse (the harness
/// fails any test whose log shows a wgpu error).
#[test]
fn a_window_too_large_to_paint_alone_fails_its_frames() {
    let compositor = start(W, H);
    let mut client = compositor.connect().unwrap();
    let window = client.create_window("huge").unwrap();
    let buffer = client.create_buffer(&Image::solid(1, 1, Rgba::opaque(255, 0, 0)), Format32::Xrgb8888, 4, 0xff);
    let viewport = client.viewport(&window.surface);
    viewport.set_destination(20000, 10);
    client.present(&window.surface, &buffer.unwrap()).unwrap();
    let toplevel = client.foreign_toplevel("huge").unwrap();
    let (session, constraints) = client.ext_toplevel_capture_session(&toplevel.handle).unwrap();
    assert_eq!(constraints.buffer_size, Some((20000, 10)), "{constraints:?}");
    let target = shm_target(&mut client, 20000, 10);
    let frame = client.ext_capture_frame(&session, &target.buffer).unwrap();
    assert_eq!(frame.failed, Some(BUFFER_CONSTRAINTS), "{frame:?}");
    let (others, _) = output_session(&mut client);
    let target = shm_target(&mut client, W, H);
    assert!(client.ext_capture_frame(&others, &target.buffer).unwrap().ready, "the output's captures go on");
}
