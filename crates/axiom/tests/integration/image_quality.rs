//! How a buffer is drawn: each of the eight buffer transforms the right way round
//! (with a viewport crop, buffer_scale 2 and linux-dmabuf's y-invert), scaled surfaces
//! filtered bilinearly, unscaled ones texel-exact. References come from image
//! operations in axiom-formats (turns, mirrors, a bilinear resampler), not from the
//! compositor's own mapping.

use axiom_testclient::dmabuf::{Created, Plane};
use axiom_testclient::image::{test_pattern, Format32, Rgba};
use axiom_testclient::memfd::SharedMemory;
use axiom_testclient::{Image, TestClient};
use smithay::backend::allocator::Fourcc;
use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_client::protocol::wl_output::Transform;
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1::Flags;

use crate::common::{assert_image, centred, start};

const OUT_W: u32 = 320;
const OUT_H: u32 = 240;

const TRANSFORMS: [Transform; 8] = [
    Transform::Normal,
    Transform::_90,
    Transform::_180,
    Transform::_270,
    Transform::Flipped,
    Transform::Flipped90,
    Transform::Flipped180,
    Transform::Flipped270,
];

/// What a surface shows of `buffer` under `transform`: the client turned its content
/// counter-clockwise (after mirroring it, for the flipped ones) to make the buffer, so
/// the content is the buffer turned back clockwise, then mirrored.
fn shown(buffer: &Image, transform: Transform) -> Image {
    let (turns, mirrored) = match transform {
        Transform::_90 => (1, false),
        Transform::_180 => (2, false),
        Transform::_270 => (3, false),
        Transform::Flipped => (0, true),
        Transform::Flipped90 => (1, true),
        Transform::Flipped180 => (2, true),
        Transform::Flipped270 => (3, true),
        _ => (0, false),
    };
    let turned = (0..turns).fold(buffer.clone(), |image, _| image.rotated_clockwise());
    if mirrored {
        turned.mirrored()
    } else {
        turned
    }
}

/// A buffer of `image`: wl_shm, or an XRGB8888 memfd dma-buf (y-inverted: rows stored
/// bottom-up). The memory must outlive the buffer's use.
enum Kind {
    Shm,
    Dmabuf { y_invert: bool },
}

fn buffer_of(client: &mut TestClient, image: &Image, kind: &Kind) -> (WlBuffer, SharedMemory) {
    let stride = image.width as usize * 4;
    match kind {
        Kind::Shm => {
            let buffer = client.create_buffer(image, Format32::Xrgb8888, stride, 0xff).unwrap();
            (buffer.buffer, buffer.memory)
        }
        Kind::Dmabuf { y_invert } => {
            let stored = match y_invert {
                true => Image::new(image.width, image.height, |x, y| image.pixel(x, image.height - 1 - y)),
                false => image.clone(),
            };
            let bytes = Format32::Xrgb8888.encode_image(&stored, stride, 0xff);
            let mut memory = SharedMemory::new(bytes.len()).unwrap();
            memory.bytes_mut().copy_from_slice(&bytes);
            let dmabuf = client.bind_dmabuf(5).unwrap();
            let plane = Plane { fd: memory.fd(), offset: 0, stride: stride as u32, modifier: 0 };
            let params = client.dmabuf_params(&dmabuf, &[plane]);
            let (w, h, xrgb) = (image.width as i32, image.height as i32, Fourcc::Xrgb8888 as u32);
            let buffer = match y_invert {
                true => params.create_immed(w, h, xrgb, Flags::YInvert, &client.qh, ()),
                false => match client.dmabuf_create(&params, w, h, xrgb).unwrap() {
                    Created::Buffer(buffer) => buffer,
                    other => panic!("dma-buf not created: {other:?}"),
                },
            };
            (buffer, memory)
        }
    }
}

/// A window showing `buffer` under `transform`, `scale` and a viewport crop `source`
/// (surface coordinates); the screenshot of its `size`, centred.
fn show(
    client: &mut TestClient,
    buffer: &WlBuffer,
    transform: Transform,
    scale: i32,
    source: Option<(f64, f64, f64, f64)>,
    size: (u32, u32),
) -> Image {
    let window = client.create_window("oriented").unwrap();
    window.surface.set_buffer_transform(transform);
    window.surface.set_buffer_scale(scale);
    let viewport = source.map(|(x, y, w, h)| {
        let viewport = client.viewport(&window.surface);
        viewport.set_source(x, y, w, h);
        viewport
    });
    window.surface.attach(Some(buffer), 0, 0);
    window.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
    client.commit_and_wait_frame(&window.surface).unwrap();
    let (x, y) = centred(OUT_W, OUT_H, size.0, size.1);
    let shot = client.screenshot_region(x as i32, y as i32, size.0 as i32, size.1 as i32).unwrap();
    if let Some(viewport) = viewport {
        viewport.destroy();
    }
    window.destroy();
    shot
}

#[test]
fn each_buffer_transform_shows_the_content_the_right_way_round() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    // Asymmetric, every pixel distinct: a wrong turn or mirror cannot match.
    let pattern = test_pattern(12, 8);
    for kind in [Kind::Shm, Kind::Dmabuf { y_invert: false }, Kind::Dmabuf { y_invert: true }] {
        let (plain, _memory) = buffer_of(&mut client, &pattern, &kind);
        // buffer_scale 2: each texel a 2x2 block, so the halving reads one colour a pixel.
        let (doubled, _doubled_memory) = buffer_of(&mut client, &pattern.enlarged(2), &kind);
        for transform in TRANSFORMS {
            let want = shown(&pattern, transform);
            let (w, h) = (want.width, want.height);
            let name = |case: &str| format!("transform-{transform:?}-{case}-{}", kind_name(&kind));
            assert_image(&show(&mut client, &plain, transform, 1, None, (w, h)), &want, 0, &name("plain"));
            assert_image(&show(&mut client, &doubled, transform, 2, None, (w, h)), &want, 0, &name("scale2"));
            // A crop in surface coordinates, i.e. of the content the right way round.
            let crop = want.crop(1, 2, w - 3, h - 4);
            let source = Some((1.0, 2.0, f64::from(w - 3), f64::from(h - 4)));
            let shot = show(&mut client, &plain, transform, 1, source, (w - 3, h - 4));
            assert_image(&shot, &crop, 0, &name("crop"));
        }
    }
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Shm => "shm",
        Kind::Dmabuf { y_invert: false } => "dmabuf",
        Kind::Dmabuf { y_invert: true } => "dmabuf-y-invert",
    }
}

/// A surface drawn larger or smaller than its buffer (wp_viewporter destination) is
/// filtered bilinearly, within one code value of the reference; drawn at its size it
/// is texel-exact.
#[test]
fn scaled_surfaces_are_filtered_and_unscaled_ones_stay_exact() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let pattern = test_pattern(16, 8);
    // Sharp edges, where nearest-neighbour and bilinear differ most.
    let stripes = Image::new(16, 8, |x, _| match x % 4 {
        0 | 1 => Rgba::opaque(250, 20, 20),
        _ => Rgba::opaque(20, 20, 250),
    });
    for (name, image) in [("pattern", &pattern), ("stripes", &stripes)] {
        let buffer = client.create_buffer(image, Format32::Xrgb8888, 64, 0xff).unwrap();
        for (w, h) in [(24, 12), (8, 4), (16, 8)] {
            let window = client.create_window("scaled").unwrap();
            let viewport = client.viewport(&window.surface);
            viewport.set_destination(w as i32, h as i32);
            client.present(&window.surface, &buffer).unwrap();
            let (x, y) = centred(OUT_W, OUT_H, w, h);
            let shot = client.screenshot_region(x as i32, y as i32, w as i32, h as i32).unwrap();
            let (want, tolerance) = match (w, h) == (16, 8) {
                true => (image.clone(), 0),
                false => (image.bilinear(w, h), 1),
            };
            assert_image(&shot, &want, tolerance, &format!("scaled-{name}-{w}x{h}"));
            viewport.destroy();
            window.destroy();
        }
    }
}

/// A turned wl_shm buffer rewritten in part and damaged in surface coordinates
/// (wl_surface.damage): what shows is the new content the right way round, every row
/// the damage names read again.
#[test]
fn a_turned_buffer_damaged_in_surface_coordinates_shows_its_new_content() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let before = test_pattern(12, 8);
    // Buffer rows 0 to 2 change: under a quarter turn they are columns on the surface.
    let after = Image::new(12, 8, |x, y| if y < 3 { Rgba::opaque(250, 250, 20) } else { before.pixel(x, y) });
    for transform in [Transform::_90, Transform::_270, Transform::Flipped90, Transform::Flipped270] {
        let window = client.create_window("turned").unwrap();
        let mut buffer = client.create_buffer(&before, Format32::Xrgb8888, 48, 0xff).unwrap();
        window.surface.set_buffer_transform(transform);
        client.present(&window.surface, &buffer).unwrap();
        let want = shown(&after, transform);
        let (w, h) = (want.width, want.height);
        buffer.memory.bytes_mut().copy_from_slice(&Format32::Xrgb8888.encode_image(&after, 48, 0xff));
        // The changed buffer rows, as the surface shows them: where `shown` puts them.
        let changed = shown(&Image::new(12, 8, |_, y| Rgba::opaque(u8::from(y < 3), 0, 0)), transform);
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
        for y in 0..h {
            for x in 0..w {
                if changed.pixel(x, y).0 == 1 {
                    (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
                }
            }
        }
        window.surface.attach(Some(&buffer.buffer), 0, 0);
        window.surface.damage(x0 as i32, y0 as i32, (x1 - x0) as i32, (y1 - y0) as i32);
        client.commit_and_wait_frame(&window.surface).unwrap();
        let (x, y) = centred(OUT_W, OUT_H, w, h);
        let shot = client.screenshot_region(x as i32, y as i32, w as i32, h as i32).unwrap();
        assert_image(&shot, &want, 0, &format!("turned-damage-{transform:?}"));
        window.destroy();
    }
}
