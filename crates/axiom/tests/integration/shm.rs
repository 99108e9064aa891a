//! wl_shm buffers: each 32-bit format shows exactly the pixels the client drew.

use axiom_testclient::image::{blend_premultiplied, test_pattern, Format32, Rgba};
use axiom_testclient::{Image, TestClient};

use crate::common::{assert_image, centred, start, BACKGROUND};

const OUT_W: u32 = 320;
const OUT_H: u32 = 240;

/// Shows `image` in a new window (centred) and returns the screenshot of the window's area.
fn show_centred(client: &mut TestClient, image: &Image, format: Format32, stride: usize, x_byte: u8) -> Image {
    let window = client.create_window(&format!("{format:?}")).unwrap();
    let buffer = client.create_buffer(image, format, stride, x_byte).unwrap();
    client.present(&window.surface, &buffer).unwrap();
    let (x, y) = centred(OUT_W, OUT_H, image.width, image.height);
    let shot = client.screenshot_region(x as i32, y as i32, image.width as i32, image.height as i32).unwrap();
    window.destroy();
    shot
}

#[test]
fn each_32bit_format_shows_exact_pixels() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let (w, h) = (61, 37); // odd sizes catch row/stride mistakes
    let pattern = test_pattern(w, h);
    for format in Format32::ALL {
        // Non-tight stride, and 0x00 in X bytes: a renderer that samples X as alpha shows nothing.
        let shot = show_centred(&mut client, &pattern, format, w as usize * 4 + 12, 0x00);
        assert_image(&shot, &pattern, 0, &format!("shm-{format:?}"));
    }
}

#[test]
fn alpha_formats_blend_premultiplied_over_the_background() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let (w, h) = (40, 20);
    // Premultiplied colours: alpha 0 (fully transparent), 128 and 255.
    let colours = [Rgba(0, 0, 0, 0), Rgba(100, 50, 10, 128), Rgba(200, 100, 50, 255)];
    let source = Image::new(w, h, |x, _| colours[(x * 3 / w) as usize]);
    let expected = Image::new(w, h, |x, y| blend_premultiplied(source.pixel(x, y), BACKGROUND));
    for format in [Format32::Argb8888, Format32::Abgr8888] {
        let shot = show_centred(&mut client, &source, format, w as usize * 4, 0);
        assert_image(&shot, &expected, 1, &format!("alpha-{format:?}"));
    }
}

/// A surface whose opaque region covers it is drawn without blending: its alpha is not
/// read (a transparent black pixel shows black, not the background), as weston does.
#[test]
fn a_surface_declared_opaque_shows_its_colour_whatever_its_alpha() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let (w, h) = (40, 20);
    let colours = [Rgba(0, 0, 0, 0), Rgba(100, 50, 10, 128), Rgba(200, 100, 50, 255)];
    let source = Image::new(w, h, |x, _| colours[(x * 3 / w) as usize]);
    let window = client.create_window("opaque").unwrap();
    let buffer = client.create_buffer(&source, Format32::Argb8888, w as usize * 4, 0).unwrap();
    client.set_opaque(&window.surface, w as i32, h as i32);
    client.present(&window.surface, &buffer).unwrap();
    let (x, y) = centred(OUT_W, OUT_H, w, h);
    let shot = client.screenshot_region(x as i32, y as i32, w as i32, h as i32).unwrap();
    assert_image(&shot, &source.map(|p| Rgba::opaque(p.0, p.1, p.2)), 0, "declared-opaque");
    window.destroy();
    // A region one column short leaves the surface blended.
    let window = client.create_window("almost opaque").unwrap();
    let buffer = client.create_buffer(&source, Format32::Argb8888, w as usize * 4, 0).unwrap();
    client.set_opaque(&window.surface, w as i32 - 1, h as i32);
    client.present(&window.surface, &buffer).unwrap();
    let shot = client.screenshot_region(x as i32, y as i32, w as i32, h as i32).unwrap();
    let blended = Image::new(w, h, |x, y| blend_premultiplied(source.pixel(x, y), BACKGROUND));
    assert_image(&shot, &blended, 1, "almost-opaque");
}

#[test]
fn only_damaged_rows_are_uploaded() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let (w, h) = (32, 32);
    let red = Rgba::opaque(255, 0, 0);
    let blue = Rgba::opaque(0, 0, 255);
    let window = client.create_window("damage").unwrap();
    let mut buffer = client.create_buffer(&Image::solid(w, h, red), Format32::Xrgb8888, w as usize * 4, 0xff).unwrap();
    client.present(&window.surface, &buffer).unwrap();

    // Repaint the whole buffer blue, but damage rows 8..16 only: the compositor must
    // show blue there and keep red elsewhere, because it only uploads what is damaged.
    let blue_bytes = Format32::Xrgb8888.encode_image(&Image::solid(w, h, blue), w as usize * 4, 0xff);
    buffer.memory.bytes_mut()[..blue_bytes.len()].copy_from_slice(&blue_bytes);
    window.surface.attach(Some(&buffer.buffer), 0, 0);
    window.surface.damage_buffer(0, 8, w as i32, 8);
    client.commit_and_wait_frame(&window.surface).unwrap();

    let (x, y) = centred(OUT_W, OUT_H, w, h);
    let shot = client.screenshot_region(x as i32, y as i32, w as i32, h as i32).unwrap();
    let expected = Image::new(w, h, |_, row| if (8..16).contains(&row) { blue } else { red });
    assert_image(&shot, &expected, 0, "damage-rows");
}

#[test]
fn viewport_scales_a_buffer() {
    // A 4x2 buffer stretched to 40x20 through wp_viewporter: filtered, not 10x10 blocks.
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let texels = [Rgba::opaque(255, 0, 0), Rgba::opaque(0, 255, 0), Rgba::opaque(0, 0, 255), Rgba::opaque(255, 255, 0)];
    let source = Image::new(4, 2, |x, y| texels[((x + y) % 4) as usize]);
    let window = client.create_window("viewport").unwrap();
    let buffer = client.create_buffer(&source, Format32::Xrgb8888, 16, 0xff).unwrap();
    let viewport = client.viewport(&window.surface);
    viewport.set_destination(40, 20);
    client.present(&window.surface, &buffer).unwrap();
    let (x, y) = centred(OUT_W, OUT_H, 40, 20);
    let shot = client.screenshot_region(x as i32, y as i32, 40, 20).unwrap();
    assert_image(&shot, &source.bilinear(40, 20), 1, "viewport");
}

#[test]
fn empty_output_is_the_background_and_screenshot_regions_clip() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    assert_eq!(client.output_size(), Some((OUT_W as i32, OUT_H as i32)));
    let shot = client.screenshot().unwrap();
    assert_image(&shot, &Image::solid(OUT_W, OUT_H, BACKGROUND), 0, "empty");
    // A region hanging over the edge is clipped to the output.
    let corner = client.screenshot_region(OUT_W as i32 - 10, OUT_H as i32 - 5, 50, 50).unwrap();
    assert_eq!((corner.width, corner.height), (10, 5));
}
