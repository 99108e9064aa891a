//! Opaque windows drawn texel for texel are painted as a copy of their texels (from
//! their upload, or from the client's imported memory) rather than drawn: the
//! `texel_copies` counter says so, and the pixels are what drawing gives, alpha one
//! included whatever an X format's unused byte holds. Turned buffers, and rows a copy
//! cannot read, are drawn as before.

use axiom_testclient::dmabuf::{seal_shrink, Created, Plane};
use axiom_testclient::image::{test_pattern, Format32};
use axiom_testclient::memfd::SharedMemory;
use axiom_testclient::{Image, Rgba, ShmLayout, TestClient, Window};
use smithay::backend::allocator::Fourcc;
use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_client::protocol::wl_output::Transform;
use wayland_client::protocol::wl_shm;

use crate::common::{assert_image, centred, import_stats, start};

const W: u32 = 160;
const H: u32 = 120;

/// The output as an ext-image-copy-capture frame into ARGB8888 wl_shm: the image and
/// every pixel's alpha byte.
fn capture_argb(client: &mut TestClient) -> (Image, Vec<u8>) {
    let output = client.output.clone();
    let (session, _) = client.ext_capture_session(&output).unwrap();
    let bytes = vec![0x55; (W * H * 4) as usize];
    let layout = ShmLayout { width: W, height: H, stride: W as usize * 4, offset: 0 };
    let target = client.create_shm_buffer(&bytes, layout, wl_shm::Format::Argb8888 as u32, true).unwrap();
    let frame = client.ext_capture_frame(&session, &target.buffer).unwrap();
    assert!(frame.ready, "{frame:?}");
    let memory = target.memory.bytes();
    let alpha = memory.chunks_exact(4).map(|p| p[3]).collect();
    (Image::from_xrgb8888(W, H, W as usize * 4, memory), alpha)
}

/// Shows `first` in a new window, then commits `next` over all of it: that commit's
/// damage lies inside the window, which covers it with opaque pixels.
fn show_then_replace(client: &mut TestClient, first: &WlBuffer, next: &WlBuffer, transform: Transform) -> Window {
    let window = client.create_window("copied").unwrap();
    window.surface.set_buffer_transform(transform);
    window.surface.attach(Some(first), 0, 0);
    window.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
    client.commit_and_wait_frame(&window.surface).unwrap();
    window.surface.attach(Some(next), 0, 0);
    window.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
    client.commit_and_wait_frame(&window.surface).unwrap();
    window
}

/// An XRGB8888 memfd dma-buf (sealed, so the import ladder reads it in place) of
/// `image` with `stride`, its unused bytes zero. The memory must outlive the buffer.
fn xrgb_dmabuf(client: &mut TestClient, image: &Image, stride: u32) -> (SharedMemory, WlBuffer) {
    let bytes = Format32::Xrgb8888.encode_image(image, stride as usize, 0x00);
    let mut memory = SharedMemory::new(bytes.len()).unwrap();
    memory.bytes_mut().copy_from_slice(&bytes);
    seal_shrink(memory.fd()).unwrap();
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let params = client.dmabuf_params(&dmabuf, &[Plane { fd: memory.fd(), offset: 0, stride, modifier: 0 }]);
    let buffer = match client.dmabuf_create(&params, image.width as i32, image.height as i32, Fourcc::Xrgb8888 as u32) {
        Ok(Created::Buffer(buffer)) => buffer,
        other => panic!("create failed: {:?}", other.map(|_| ())),
    };
    (memory, buffer)
}

/// A wl_shm window replaced by new content is copied from its upload; an ARGB capture
/// of the output shows its pixels with alpha one though its X bytes are zero.
#[test]
fn an_opaque_window_replaced_whole_is_copied_and_shows_alpha_one() {
    let compositor = start(W, H);
    let mut client = compositor.connect().unwrap();
    let (w, h) = (64, 48);
    let first =
        client.create_buffer(&Image::solid(w, h, Rgba::opaque(9, 9, 9)), Format32::Xrgb8888, 256, 0x00).unwrap();
    let pattern = test_pattern(w, h);
    let next = client.create_buffer(&pattern, Format32::Xrgb8888, 256, 0x00).unwrap();
    let before = import_stats(&compositor);
    let _window = show_then_replace(&mut client, &first.buffer, &next.buffer, Transform::Normal);
    let after = import_stats(&compositor);
    assert!(after["texel_copies"] > before["texel_copies"], "{after:?}");

    let (shot, alpha) = capture_argb(&mut client);
    let (x, y) = centred(W, H, w, h);
    assert_image(&shot.crop(x, y, w, h), &pattern, 0, "copied-shm");
    assert!(alpha.iter().all(|&a| a == 0xff), "alpha other than one: {:?}", alpha.iter().find(|&&a| a != 0xff));
}

/// Windows stacked over a replaced one keep their order: opaque ones over it are
/// copied after it, a translucent one is blended over both copies.
#[test]
fn windows_over_a_copied_window_stay_over_it() {
    let compositor = start(W, H);
    let mut client = compositor.connect().unwrap();
    let (green, half_red) = (Rgba::opaque(0, 255, 0), Rgba(128, 0, 0, 128));
    let (aw, ah) = (80, 60);
    let first =
        client.create_buffer(&Image::solid(aw, ah, Rgba::opaque(9, 9, 9)), Format32::Xrgb8888, 320, 0x00).unwrap();
    let pattern = test_pattern(aw, ah);
    let next = client.create_buffer(&pattern, Format32::Xrgb8888, 320, 0x00).unwrap();
    let bottom = client.create_window("bottom").unwrap();
    client.present(&bottom.surface, &first).unwrap();
    client.commit_and_wait_frame(&bottom.surface).unwrap();
    let middle_buffer = client.create_buffer(&Image::solid(40, 30, green), Format32::Xrgb8888, 256, 0x00).unwrap();
    let middle = client.create_window("middle").unwrap();
    client.present(&middle.surface, &middle_buffer).unwrap();
    client.commit_and_wait_frame(&middle.surface).unwrap();
    let top_buffer = client.create_buffer(&Image::solid(20, 16, half_red), Format32::Argb8888, 80, 0x00).unwrap();
    let top = client.create_window("top").unwrap();
    client.present(&top.surface, &top_buffer).unwrap();
    client.commit_and_wait_frame(&top.surface).unwrap();

    let before = import_stats(&compositor);
    bottom.surface.attach(Some(&next.buffer), 0, 0);
    bottom.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
    client.commit_and_wait_frame(&bottom.surface).unwrap();
    let after = import_stats(&compositor);
    assert!(after["texel_copies"] >= before["texel_copies"] + 2, "both opaque windows copied: {after:?}");

    let (shot, alpha) = capture_argb(&mut client);
    let (ax, ay) = centred(W, H, aw, ah);
    let (mx, my) = centred(W, H, 40, 30);
    let (tx, ty) = centred(W, H, 20, 16);
    let want = Image::new(aw, ah, |x, y| {
        let (cx, cy) = (x + ax, y + ay);
        let within = |(x0, y0): (u32, u32), w: u32, h: u32| cx >= x0 && cy >= y0 && cx < x0 + w && cy < y0 + h;
        match (within((tx, ty), 20, 16), within((mx, my), 40, 30)) {
            // 50% red (premultiplied) over green.
            (true, _) => Rgba::opaque(128, 127, 0),
            (false, true) => green,
            _ => pattern.pixel(x, y),
        }
    });
    assert_image(&shot.crop(ax, ay, aw, ah), &want, 1, "stacked-over-copied");
    assert!(alpha.iter().all(|&a| a == 0xff), "alpha other than one");
}

/// A buffer turned by its transform is drawn, not copied, and shows turned.
#[test]
fn a_turned_window_is_drawn_not_copied() {
    let compositor = start(W, H);
    let mut client = compositor.connect().unwrap();
    let (w, h) = (64, 48);
    let pattern = test_pattern(w, h);
    let first = client.create_buffer(&pattern, Format32::Xrgb8888, 256, 0xff).unwrap();
    let next = client.create_buffer(&pattern, Format32::Xrgb8888, 256, 0xff).unwrap();
    let before = import_stats(&compositor);
    let _window = show_then_replace(&mut client, &first.buffer, &next.buffer, Transform::_180);
    let after = import_stats(&compositor);
    assert_eq!(after["texel_copies"], before["texel_copies"], "{after:?}");
    let (shot, _) = capture_argb(&mut client);
    let (x, y) = centred(W, H, w, h);
    let turned = pattern.rotated_clockwise().rotated_clockwise();
    assert_image(&shot.crop(x, y, w, h), &turned, 0, "turned");
}

/// Memfd dma-bufs: rows 256 bytes apart are copied (from the client's memory on the
/// import ladder, from the upload on the CPU step); rows 240 bytes apart show the
/// same pixels whichever way they are painted, alpha one both times.
#[test]
fn dmabuf_windows_show_exact_pixels_with_alpha_one_copied_or_drawn() {
    let compositor = start(W, H);
    let mut client = compositor.connect().unwrap();
    for (w, stride) in [(64, 256), (60, 240)] {
        let h = 48;
        let pattern = test_pattern(w, h);
        let (_first_memory, first) = xrgb_dmabuf(&mut client, &Image::solid(w, h, Rgba::opaque(9, 9, 9)), stride);
        let (_next_memory, next) = xrgb_dmabuf(&mut client, &pattern, stride);
        let before = import_stats(&compositor);
        let window = show_then_replace(&mut client, &first, &next, Transform::Normal);
        let after = import_stats(&compositor);
        if stride == 256 {
            assert!(after["texel_copies"] > before["texel_copies"], "{after:?}");
        }
        let (shot, alpha) = capture_argb(&mut client);
        let (x, y) = centred(W, H, w, h);
        assert_image(&shot.crop(x, y, w, h), &pattern, 0, &format!("dmabuf-stride-{stride}"));
        assert!(alpha.iter().all(|&a| a == 0xff), "stride {stride}: alpha other than one");
        window.destroy();
        client.roundtrip().unwrap();
    }
}
