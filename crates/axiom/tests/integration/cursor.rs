//! The pointer's cursor, on the nested backend with the X pointer moved through
//! XTEST: the surface a client sets (its hotspot at the pointer), the compositor's
//! arrow elsewhere, nothing where the client hides it or the pointer is outside
//! the window; captures leave it out unless asked to paint it, and a cursor
//! session tells where it is and captures its image alone.

use axiom_testclient::client::Buffer;
use axiom_testclient::ext_capture::CursorEvents;
use axiom_testclient::image::{blend_premultiplied, Format32};
use axiom_testclient::{Compositor, Image, Rgba, ShmLayout, TestClient, Window};
use wayland_client::protocol::wl_surface::WlSurface;

use crate::common::{assert_image, import_stats, BACKGROUND};
use crate::nested::{start_nested, wait_for_screen, Xvfb};

const W: u32 = 320;
const H: u32 = 240;
/// Where `show_pattern` puts its 200x150 window on a 320x240 output.
const PATTERN_AT: (u32, u32) = (60, 45);
const GREEN: Rgba = Rgba::opaque(0, 200, 0);

/// The compositor's arrow as straight colours (transparent where it draws nothing).
fn arrow() -> Image {
    let (w, h) = axiom::render::cursor::ARROW_SIZE;
    let pixels = axiom::render::cursor::arrow_pixels();
    Image::new(w, h, |x, y| {
        let [b, g, r, a] = pixels[(y * w + x) as usize];
        Rgba(r, g, b, a)
    })
}

/// `under` with `image` (premultiplied) drawn over it at (x, y).
fn over(under: &Image, image: &Image, (x, y): (i32, i32)) -> Image {
    Image::new(under.width, under.height, |px, py| {
        let (ix, iy) = (px as i32 - x, py as i32 - y);
        let inside = (0..image.width as i32).contains(&ix) && (0..image.height as i32).contains(&iy);
        match inside {
            true => blend_premultiplied(image.pixel(ix as u32, iy as u32), under.pixel(px, py)),
            false => under.pixel(px, py),
        }
    })
}

/// The output showing the pattern window and nothing else.
fn without_cursor(pattern: &Image) -> Image {
    over(&Image::solid(W, H, BACKGROUND), pattern, (PATTERN_AT.0 as i32, PATTERN_AT.1 as i32))
}

/// Xvfb, the nested compositor on it, and a client showing the pattern window; the
/// output as it shows with no cursor, and where the compositor's window is on the X
/// screen. Bind every field, `xvfb` and `compositor` first (dropped last): one left
/// out is dropped at once.
struct Nested {
    client: TestClient,
    window: Window,
    _buffer: Buffer,
    bare: Image,
    at: (i16, i16),
    compositor: Compositor,
    xvfb: Xvfb,
}

fn nested_with_pattern() -> Nested {
    let xvfb = Xvfb::start();
    let compositor = start_nested(&xvfb, W, H);
    let mut client = compositor.connect().unwrap();
    let (window, _buffer, pattern) = crate::common::show_pattern(&mut client, 200, 150);
    let bare = without_cursor(&pattern);
    let (_, x, y, ..) = xvfb.axiom_window();
    Nested { client, window, _buffer, bare, at: (x, y), compositor, xvfb }
}

/// Lets several refreshes pass (a frame wrongly answered would be by then).
fn settle(client: &mut TestClient) {
    client.roundtrip().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    client.roundtrip().unwrap();
}

/// A cursor surface showing `buffer`, committed.
fn cursor_surface(client: &mut TestClient, buffer: &Buffer) -> WlSurface {
    let surface = client.compositor.create_surface(&client.qh, ());
    surface.attach(Some(&buffer.buffer), 0, 0);
    surface.damage_buffer(0, 0, buffer.width as i32, buffer.height as i32);
    surface.commit();
    surface
}

/// An ARGB8888 wl_shm buffer to capture into, and how its bytes read as an image
/// (premultiplied, alpha kept).
fn argb_target(client: &mut TestClient, width: u32, height: u32) -> Buffer {
    let bytes = vec![0x55; (width * height * 4) as usize];
    let layout = ShmLayout { width, height, stride: width as usize * 4, offset: 0 };
    client.create_shm_buffer(&bytes, layout, Format32::Argb8888.shm_code(), true).unwrap()
}

fn argb_image(buffer: &Buffer) -> Image {
    let bytes = buffer.memory.bytes();
    Image::new(buffer.width, buffer.height, |x, y| {
        let at = y as usize * buffer.stride + x as usize * 4;
        Rgba(bytes[at + 2], bytes[at + 1], bytes[at], bytes[at + 3])
    })
}

#[test]
fn the_cursor_follows_the_pointer_as_its_client_sets_it_and_the_arrow_shows_elsewhere() {
    let Nested { xvfb, compositor, mut client, window, _buffer, bare, at: (x, y) } = nested_with_pattern();
    wait_for_screen(&xvfb, "cursor-none-yet", |shot| *shot == bare);
    let pointer = client.pointer().unwrap();

    // On the window, before its client sets a cursor: the arrow, its tip at the pointer.
    xvfb.move_pointer(x + 100, y + 100);
    let serial = client.wait_pointer_on(&window.surface).unwrap();
    wait_for_screen(&xvfb, "cursor-arrow-on-window", |shot| *shot == over(&bare, &arrow(), (100, 100)));

    // The client's cursor surface, its hotspot (2, 1) at the pointer, follows it.
    let green = client.create_buffer(&Image::solid(6, 4, GREEN), Format32::Argb8888, 24, 0xff).unwrap();
    let surface = cursor_surface(&mut client, &green);
    pointer.set_cursor(serial, Some(&surface), 2, 1);
    client.roundtrip().unwrap();
    let cursor = Image::solid(6, 4, GREEN);
    wait_for_screen(&xvfb, "cursor-client-surface", |shot| *shot == over(&bare, &cursor, (98, 99)));
    // The same surface again with another hotspot: it moves by the difference.
    pointer.set_cursor(serial, Some(&surface), 0, 0);
    client.roundtrip().unwrap();
    wait_for_screen(&xvfb, "cursor-new-hotspot", |shot| *shot == over(&bare, &cursor, (100, 100)));
    // A buffer offset moves the hotspot the other way: (0, 0) less (-2, -1) is (2, 1).
    surface.offset(-2, -1);
    surface.commit();
    client.roundtrip().unwrap();
    wait_for_screen(&xvfb, "cursor-offset", |shot| *shot == over(&bare, &cursor, (98, 99)));
    xvfb.move_pointer(x + 150, y + 60);
    wait_for_screen(&xvfb, "cursor-client-surface-moved", |shot| *shot == over(&bare, &cursor, (148, 59)));

    // A new buffer on the cursor surface shows at once.
    let blue = Image::solid(6, 4, Rgba::opaque(0, 0, 200));
    let blue_buffer = client.create_buffer(&blue, Format32::Argb8888, 24, 0xff).unwrap();
    client.present(&surface, &blue_buffer).unwrap();
    wait_for_screen(&xvfb, "cursor-client-surface-redrawn", |shot| *shot == over(&bare, &blue, (148, 59)));

    // Hidden by its client: nothing.
    pointer.set_cursor(serial, None, 0, 0);
    client.roundtrip().unwrap();
    wait_for_screen(&xvfb, "cursor-hidden", |shot| *shot == bare);

    // Over the background (no client's surface): the arrow again.
    xvfb.move_pointer(x + 10, y + 10);
    wait_for_screen(&xvfb, "cursor-arrow-on-background", |shot| *shot == over(&bare, &arrow(), (10, 10)));

    // The pointer outside the window: no cursor is left behind at its edge.
    let (_, _, _, width, _) = xvfb.axiom_window();
    xvfb.move_pointer(x + width as i16 + 20, y + 10);
    wait_for_screen(&xvfb, "cursor-outside", |shot| *shot == bare);
    assert!(!compositor.log().contains("wgpu error"), "{}", compositor.log());
}

#[test]
fn captures_leave_the_cursor_out_unless_asked_and_a_cursor_session_follows_it() {
    let Nested { xvfb, compositor, mut client, window, _buffer, bare, at: (x, y) } = nested_with_pattern();
    let pointer = client.pointer().unwrap();
    let output = client.output.clone();

    // A cursor session before the cursor shows: nothing has entered; its capture
    // session has constraints (the arrow's size, until a cursor shows).
    let (cursor, session, constraints) = client.ext_cursor_session(&output, &pointer).unwrap();
    assert!(!constraints.stopped, "{constraints:?}");
    assert_eq!(constraints.buffer_size, Some((12, 19)));
    assert_eq!(client.ext_cursor_events(&cursor).unwrap(), CursorEvents::default());
    // A frame waits while the cursor is away; the pointer on the window shows the arrow.
    let waiting = argb_target(&mut client, 12, 19);
    let frame = client.ext_start_frame(&session, &waiting.buffer);
    settle(&mut client);
    let away = client.ext_frame_events(&frame).unwrap();
    assert!(!away.ready && away.failed.is_none(), "{away:?}");
    xvfb.move_pointer(x + 100, y + 100);
    let serial = client.wait_pointer_on(&window.surface).unwrap();
    let arrived = client.ext_finish_frame(frame).unwrap();
    assert!(arrived.ready, "{arrived:?}\n{}", compositor.log());
    assert_eq!(arrived.damage, vec![(0, 0, 12, 19)]);
    assert_image(&argb_image(&waiting), &arrow(), 0, "cursor-session-arrow-first");

    let green = Image::solid(6, 4, GREEN);
    let green_buffer = client.create_buffer(&green, Format32::Argb8888, 24, 0xff).unwrap();
    let surface = cursor_surface(&mut client, &green_buffer);
    pointer.set_cursor(serial, Some(&surface), 2, 1);
    client.roundtrip().unwrap();
    let shown = over(&bare, &green, (98, 99));
    wait_for_screen(&xvfb, "capture-cursor-shown", |shot| *shot == shown);

    // zwlr screencopy: overlay_cursor 0 leaves it out, 1 paints it.
    assert_image(&client.screenshot().unwrap(), &bare, 0, "screencopy-without-cursor");
    assert_image(&client.screenshot_with_cursor().unwrap(), &shown, 0, "screencopy-with-cursor");
    // ext: without paint_cursors it is left out, with it painted.
    for (paint, expected) in [(false, &bare), (true, &shown)] {
        let (output_session, _) = match paint {
            false => client.ext_capture_session(&output).unwrap(),
            true => client.ext_capture_session_painting_cursors(&output).unwrap(),
        };
        let target = argb_target(&mut client, W, H);
        let done = client.ext_capture_frame(&output_session, &target.buffer).unwrap();
        assert!(done.ready, "{done:?}");
        assert_image(&argb_image(&target), expected, 0, &format!("ext-paint-cursors-{paint}"));
    }

    // The cursor session: in, the pointer at (100, 100) of the output, the hotspot (2, 1).
    let told = client.ext_cursor_events(&cursor).unwrap();
    assert_eq!(told, CursorEvents { crossings: vec![true], position: Some((100, 100)), hotspot: Some((2, 1)) });
    // The client's cursor has a size of its own: the buffer size follows it.
    let events = client.ext_session_events(&session).unwrap();
    assert_eq!(events.buffer_size, Some((6, 4)), "{events:?}");
    let target = argb_target(&mut client, 6, 4);
    let first = client.ext_capture_frame(&session, &target.buffer).unwrap();
    assert!(first.ready, "{first:?}\n{}", compositor.log());
    assert_eq!(first.damage, vec![(0, 0, 6, 4)]);
    assert_image(&argb_image(&target), &green, 0, "cursor-session-image");

    // Moving tells the position; the image did not change, so the next frame waits for it.
    xvfb.move_pointer(x + 150, y + 60);
    let moved = (150, 60);
    let mut told = client.ext_cursor_events(&cursor).unwrap();
    for _ in 0..100 {
        if told.position == Some(moved) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        told = client.ext_cursor_events(&cursor).unwrap();
    }
    assert_eq!(told.position, Some(moved), "{told:?}");
    let next = client.ext_start_frame(&session, &target.buffer);
    settle(&mut client);
    assert!(!client.ext_frame_events(&next).unwrap().ready, "a frame waits for the image to change");
    let blue = Image::solid(6, 4, Rgba::opaque(0, 0, 200));
    let blue_buffer = client.create_buffer(&blue, Format32::Argb8888, 24, 0xff).unwrap();
    client.present(&surface, &blue_buffer).unwrap();
    let redrawn = client.ext_finish_frame(next).unwrap();
    assert!(redrawn.ready, "{redrawn:?}");
    assert_image(&argb_image(&target), &blue, 0, "cursor-session-redrawn");

    // Hidden: it leaves. Over the background: the arrow enters, its hotspot at its tip.
    pointer.set_cursor(serial, None, 0, 0);
    client.roundtrip().unwrap();
    wait_for_screen(&xvfb, "capture-cursor-hidden", |shot| *shot == bare);
    assert_eq!(client.ext_cursor_events(&cursor).unwrap().crossings, vec![true, false]);
    xvfb.move_pointer(x + 10, y + 10);
    wait_for_screen(&xvfb, "capture-arrow", |shot| *shot == over(&bare, &arrow(), (10, 10)));
    let told = client.ext_cursor_events(&cursor).unwrap();
    assert_eq!(
        told,
        CursorEvents { crossings: vec![true, false, true], position: Some((10, 10)), hotspot: Some((0, 0)) }
    );
    assert_eq!(client.ext_session_events(&session).unwrap().buffer_size, Some((12, 19)));
    let arrow_target = argb_target(&mut client, 12, 19);
    let frame = client.ext_capture_frame(&session, &arrow_target.buffer).unwrap();
    assert!(frame.ready, "{frame:?}");
    assert_image(&argb_image(&arrow_target), &arrow(), 0, "cursor-session-arrow");

    // The client leaves with its sessions: none is left.
    drop(client);
    let mut other = compositor.connect().unwrap();
    other.roundtrip().unwrap();
    let stats = import_stats(&compositor);
    assert_eq!(stats.get("capture_sessions"), Some(&0), "{stats:?}");
    assert!(!compositor.log().contains("wgpu error"), "{}", compositor.log());
}

#[test]
fn a_cursor_surface_destroyed_or_its_client_gone_leaves_no_cursor_and_nothing_crashes() {
    let Nested { xvfb, compositor, client: mut keeper, window: _window, _buffer, bare, at: (x, y) } =
        nested_with_pattern();
    let cursor = Image::solid(6, 4, GREEN);

    // Destroyed while it is the cursor and on screen: it goes at once, with no motion.
    let mut client = compositor.connect().unwrap();
    let (window, _b, _) = crate::common::show_pattern(&mut client, 200, 150);
    let pointer = client.pointer().unwrap();
    xvfb.move_pointer(x + 100, y + 100);
    let serial = client.wait_pointer_on(&window.surface).unwrap();
    let green = client.create_buffer(&cursor, Format32::Argb8888, 24, 0xff).unwrap();
    let surface = cursor_surface(&mut client, &green);
    pointer.set_cursor(serial, Some(&surface), 2, 1);
    client.roundtrip().unwrap();
    wait_for_screen(&xvfb, "cursor-shown", |shot| *shot == over(&bare, &cursor, (98, 99)));
    surface.destroy();
    client.roundtrip().unwrap();
    wait_for_screen(&xvfb, "cursor-destroyed-shown", |shot| *shot == bare);

    // Destroyed while it is the cursor, before the next repaint.
    let surface = cursor_surface(&mut client, &green);
    pointer.set_cursor(serial, Some(&surface), 2, 1);
    surface.destroy();
    client.roundtrip().unwrap();
    wait_for_screen(&xvfb, "cursor-destroyed", |shot| *shot == bare);

    // Its client gone while its surface is the cursor: the keeper's window is under
    // the pointer again, and the arrow shows.
    let surface = cursor_surface(&mut client, &green);
    pointer.set_cursor(serial, Some(&surface), 2, 1);
    client.roundtrip().unwrap();
    wait_for_screen(&xvfb, "cursor-set-again", |shot| *shot == over(&bare, &cursor, (98, 99)));
    drop(client);
    xvfb.move_pointer(x + 101, y + 100);
    wait_for_screen(&xvfb, "cursor-client-gone", |shot| *shot == over(&bare, &arrow(), (101, 100)));
    keeper.roundtrip().unwrap();
    assert!(!compositor.log().contains("wgpu error") && !compositor.log().contains("panicked"), "{}", compositor.log());
}

#[test]
fn a_cursor_that_moves_answers_only_the_frames_that_paint_it() {
    let Nested { xvfb, compositor: _compositor, mut client, window, _buffer, bare, at: (x, y) } = nested_with_pattern();
    let _pointer = client.pointer().unwrap();
    xvfb.move_pointer(x + 100, y + 100);
    client.wait_pointer_on(&window.surface).unwrap();
    wait_for_screen(&xvfb, "moving-arrow", |shot| *shot == over(&bare, &arrow(), (100, 100)));

    let output = client.output.clone();
    let (plain, _) = client.ext_capture_session(&output).unwrap();
    let (painting, _) = client.ext_capture_session_painting_cursors(&output).unwrap();
    let targets = [argb_target(&mut client, W, H), argb_target(&mut client, W, H)];
    for (session, target) in [(&plain, &targets[0]), (&painting, &targets[1])] {
        assert!(client.ext_capture_frame(session, &target.buffer).unwrap().ready, "first frames");
    }
    let frames =
        [client.ext_start_frame(&plain, &targets[0].buffer), client.ext_start_frame(&painting, &targets[1].buffer)];
    xvfb.move_pointer(x + 130, y + 110);
    let moved = over(&bare, &arrow(), (130, 110));
    wait_for_screen(&xvfb, "moving-arrow-moved", |shot| *shot == moved);
    // The frame that paints the cursor shows it moved, with what changed: where the
    // arrow was and is.
    let [plain_frame, painting_frame] = frames;
    let painted = client.ext_finish_frame(painting_frame).unwrap();
    assert!(painted.ready, "{painted:?}");
    assert_image(&argb_image(&targets[1]), &moved, 0, "moving-painted");
    assert_eq!(painted.damage, vec![(100, 100, 42, 29)], "the arrow's old and new places");
    // The one that leaves it out has nothing new to show.
    client.roundtrip().unwrap();
    let waiting = client.ext_frame_events(&plain_frame).unwrap();
    assert!(!waiting.ready && waiting.failed.is_none(), "{waiting:?}");
    let (wx, wy) = PATTERN_AT;
    let red =
        client.create_buffer(&Image::solid(200, 150, Rgba::opaque(200, 0, 0)), Format32::Xrgb8888, 800, 0xff).unwrap();
    client.present(&window.surface, &red).unwrap();
    let answered = client.ext_finish_frame(plain_frame).unwrap();
    assert!(answered.ready, "{answered:?}");
    assert_eq!(answered.damage, vec![(wx as i32, wy as i32, 200, 150)]);
    let red_bare =
        over(&Image::solid(W, H, BACKGROUND), &Image::solid(200, 150, Rgba::opaque(200, 0, 0)), (wx as i32, wy as i32));
    assert_image(&argb_image(&targets[0]), &red_bare, 0, "moving-plain-after-commit");
}
