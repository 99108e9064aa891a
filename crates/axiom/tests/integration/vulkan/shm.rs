//! wl_shm pools of sealed memfds read in place as host pointers (step 3).

use axiom_testclient::encode::{block_pattern, encode, Options};
use axiom_testclient::image::Format32;
use axiom_testclient::{Image, Rgba, ShmLayout, TestClient};
use smithay::backend::allocator::Fourcc;

use super::{OUT_H, OUT_W};
use crate::common::{assert_image, centred, import_stats, start};

/// The wl_shm code of a DRM fourcc: ARGB8888 and XRGB8888 have their own, the rest share.
fn shm_code(fourcc: u32) -> u32 {
    match fourcc {
        f if f == Fourcc::Argb8888 as u32 => 0,
        f if f == Fourcc::Xrgb8888 as u32 => 1,
        f => f,
    }
}

/// Every format the compositor advertises on wl_shm, as DRM fourccs.
const SHM_FORMATS: [Fourcc; 11] = [
    Fourcc::Argb8888,
    Fourcc::Xrgb8888,
    Fourcc::Abgr8888,
    Fourcc::Xbgr8888,
    Fourcc::Abgr2101010,
    Fourcc::Xbgr2101010,
    Fourcc::Argb2101010,
    Fourcc::Xrgb2101010,
    Fourcc::Abgr16161616f,
    Fourcc::Xbgr16161616f,
    Fourcc::Rgb565,
];

/// Shows `fourcc`'s encoding of `image` from an shm pool (sealed or not) and returns
/// the screenshot and the expected image.
fn show_shm(client: &mut TestClient, image: &Image, fourcc: Fourcc, seal: bool) -> (Image, Image) {
    let encoded =
        encode(fourcc as u32, image, Options { stride_pad: 12, plane_gap: 36, ..Options::default() }).unwrap();
    let (offset, stride) = encoded.planes[0];
    let layout =
        ShmLayout { width: image.width, height: image.height, stride: stride as usize, offset: offset as usize };
    let buffer = client.create_shm_buffer(&encoded.bytes, layout, shm_code(fourcc as u32), seal).unwrap();
    let window = client.create_window("shm-in-place").unwrap();
    client.present(&window.surface, &buffer).unwrap();
    let (x, y) = centred(OUT_W, OUT_H, image.width, image.height);
    let shot = client.screenshot_region(x as i32, y as i32, image.width as i32, image.height as i32).unwrap();
    window.destroy();
    buffer.buffer.destroy();
    (shot, encoded.expected)
}

#[test]
fn sealed_shm_is_read_in_place_in_every_format_and_other_shm_is_copied() {
    let compositor = start(OUT_W, OUT_H);
    assert!(compositor.log().contains("3 shm -> host pointer read in place: live"), "{}", compositor.log());
    let image = block_pattern(33, 17);

    // A client whose pools are all sealed memfds: step 3, no CPU upload.
    let mut sealed = compositor.connect().unwrap();
    for fourcc in SHM_FORMATS {
        let (shot, expected) = show_shm(&mut sealed, &image, fourcc, true);
        assert_image(&shot, &expected, 0, &format!("shm-in-place-{}", axiom_testclient::fourcc::name(fourcc as u32)));
    }
    sealed.roundtrip().unwrap();
    let stats = import_stats(&compositor);
    assert_eq!(stats.get("host_pointer"), Some(&(SHM_FORMATS.len() as u64)), "{stats:?}");
    assert_eq!(stats.get("shm_cpu_uploads"), Some(&0), "no shm byte uploaded by the CPU: {stats:?}");
    assert_eq!(stats.get("live_imports"), Some(&0), "imports go with their buffers: {stats:?}");

    // A client with an unsealed pool could shrink it under the device: the CPU path reads it.
    let mut unsealed = compositor.connect().unwrap();
    let (shot, expected) = show_shm(&mut unsealed, &image, Fourcc::Xrgb8888, false);
    assert_image(&shot, &expected, 0, "shm-unsealed");
    let stats = import_stats(&compositor);
    assert_eq!(stats.get("host_pointer"), Some(&(SHM_FORMATS.len() as u64)), "{stats:?}");
    assert!(stats.get("shm_cpu_uploads").is_some_and(|&n| n > 0), "{stats:?}");
}

#[test]
fn shm_read_in_place_shows_rewritten_bytes_without_reimport() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let (w, h) = (32u32, 16u32);
    let (red, blue) = (Rgba::opaque(255, 0, 0), Rgba::opaque(0, 0, 255));
    let stride = w as usize * 4 + 64;
    let bytes = Format32::Xrgb8888.encode_image(&Image::solid(w, h, red), stride, 0);
    let layout = ShmLayout { width: w, height: h, stride, offset: 0 };
    let mut buffer = client.create_shm_buffer(&bytes, layout, Format32::Xrgb8888.shm_code(), true).unwrap();
    let window = client.create_window("shm-rewrite").unwrap();
    client.present(&window.surface, &buffer).unwrap();
    let (x, y) = centred(OUT_W, OUT_H, w, h);
    let region = |c: &mut TestClient| c.screenshot_region(x as i32, y as i32, w as i32, h as i32).unwrap();
    assert_image(&region(&mut client), &Image::solid(w, h, red), 0, "shm-in-place-red");

    // Rewrite the pool's bytes and commit the same buffer with damage: the device reads
    // the client's memory, so the new pixels show without a new import or an upload.
    let blue_bytes = Format32::Xrgb8888.encode_image(&Image::solid(w, h, blue), stride, 0);
    buffer.memory.bytes_mut().copy_from_slice(&blue_bytes);
    window.surface.attach(Some(&buffer.buffer), 0, 0);
    window.surface.damage_buffer(0, 0, w as i32, h as i32);
    client.commit_and_wait_frame(&window.surface).unwrap();
    assert_image(&region(&mut client), &Image::solid(w, h, blue), 0, "shm-in-place-blue");

    let stats = import_stats(&compositor);
    assert_eq!(stats.get("host_pointer"), Some(&1), "imported once: {stats:?}");
    assert_eq!(stats.get("shm_cpu_uploads"), Some(&0), "{stats:?}");
    assert_eq!(stats.get("live_imports"), Some(&1), "{stats:?}");
}

#[test]
fn a_pool_resize_retires_the_host_imports_of_its_client_before_the_remap() {
    use axiom_testclient::hostile::requests::{memfd, XRGB8888};
    use axiom_testclient::hostile::wire::Arg;
    use axiom_testclient::hostile::WireClient;

    let compositor = start(OUT_W, OUT_H);
    let mut c = WireClient::connect(&compositor.socket_path()).unwrap();
    let g = c.bind_common().unwrap();
    let (surface, _, _) = c.configured_toplevel(&g).unwrap();
    let (w, h) = (16, 8);
    let fd = memfd(4096).unwrap();
    rustix::fs::fcntl_add_seals(&fd, rustix::fs::SealFlags::SHRINK).unwrap();
    let pool = c.create_pool(&g, &fd, 4096).unwrap();
    let buffer = c.create_buffer(pool, 0, w, h, w * 4, XRGB8888).unwrap();
    let show = |c: &mut WireClient| {
        c.attach(surface, buffer, 0, 0).unwrap();
        c.damage_buffer(surface, 0, 0, w, h).unwrap();
        let frame = c.frame(surface).unwrap();
        c.commit(surface).unwrap();
        c.wait_event(frame, 0).unwrap();
        c.events.clear();
    };
    show(&mut c);
    let live = |name: &str| import_stats(&compositor).get(name).copied();
    assert_eq!(live("live_host_imports"), Some(1), "read in place as a host pointer");

    // The pool grows: smithay remaps it, so the import of its old mapping must be gone
    // by then, not at the next repaint.
    rustix::fs::ftruncate(&fd, 8192).unwrap();
    c.send(pool, 2, &[Arg::Int(8192)]).unwrap();
    c.roundtrip().unwrap();
    assert_eq!(live("live_host_imports"), Some(0), "retired at the resize");
    assert_eq!(live("live_imports"), Some(0));

    // The surface is shown again from the new mapping (the CPU path now), pixel-exact.
    show(&mut c);
    let mut viewer = compositor.connect().unwrap();
    let (x, y) = centred(OUT_W, OUT_H, w as u32, h as u32);
    let shot = viewer.screenshot_region(x as i32, y as i32, w, h).unwrap();
    assert_image(&shot, &Image::solid(w as u32, h as u32, Rgba::opaque(0, 0, 0)), 0, "shm-after-resize");
}
