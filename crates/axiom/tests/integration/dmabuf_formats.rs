//! Every linux-dmabuf format shows the expected pixels. The test draws one
//! known RGB image, converts it to each format itself (RGB to YCbCr for every
//! matrix and range, through the reference converter), sends it as a memfd
//! "dmabuf" with an odd size, padded strides and non-zero plane offsets, and
//! compares a screenshot with what the format can represent.

use axiom::convert::{rgb_to_yuv, yuv_to_rgb, YuvMatrix, YuvRange};
use axiom::dmabuf::formats::{dmabuf_format, DmabufFormat};
use axiom_testclient::dmabuf::{seal_shrink, Created, Plane};
use axiom_testclient::image::Format32;
use axiom_testclient::memfd::SharedMemory;
use axiom_testclient::{Image, Rgba, TestClient};
use smithay::backend::allocator::Fourcc;
use wayland_protocols::wp::color_representation::v1::client::wp_color_representation_manager_v1::WpColorRepresentationManagerV1;
use wayland_protocols::wp::color_representation::v1::client::wp_color_representation_surface_v1::{Coefficients, Range};

use crate::common::{assert_image, centred, start};

const OUT_W: u32 = 160;
const OUT_H: u32 = 120;
/// Odd on purpose: chroma planes round up, rows are not multiples of anything.
const W: u32 = 33;
const H: u32 = 17;
/// Bytes added to every row, and before every plane.
const STRIDE_PAD: u32 = 16;
const PLANE_GAP: u32 = 64;

/// An image whose 2x2 blocks are uniform (so 4:2:0 subsampling loses nothing)
/// and whose colours cover saturated and mid values.
fn source() -> Image {
    Image::new(W, H, |x, y| {
        let (bx, by) = (x / 2, y / 2);
        Rgba::opaque((bx * 15 % 256) as u8, (by * 29 % 256) as u8, ((bx + by) * 53 % 256) as u8)
    })
}

/// A buffer in one memfd: the bytes, each plane's (offset, stride), and the image it should show.
struct Encoded {
    bytes: Vec<u8>,
    planes: Vec<(u32, u32)>,
    expected: Image,
}

/// Lays out planes one after the other (with a gap) and lets `fill` write plane `i` row `y`.
fn layout(format: &DmabufFormat, mut fill: impl FnMut(usize, u32, &mut [u8])) -> (Vec<u8>, Vec<(u32, u32)>) {
    let mut planes = Vec::new();
    let mut offset = PLANE_GAP;
    for plane in format.planes {
        let stride = plane.row_bytes(W) as u32 + STRIDE_PAD;
        let (_, rows) = plane.size(W, H);
        planes.push((offset, stride));
        offset += stride * rows + PLANE_GAP;
    }
    let mut bytes = vec![0xA5u8; offset as usize];
    for (index, plane) in format.planes.iter().enumerate() {
        let (offset, stride) = planes[index];
        let (_, rows) = plane.size(W, H);
        for y in 0..rows {
            let start = (offset + y * stride) as usize;
            fill(index, y, &mut bytes[start..start + plane.row_bytes(W) as usize]);
        }
    }
    (bytes, planes)
}

fn encode_rgb(fourcc: Fourcc, image: &Image) -> Encoded {
    let format = dmabuf_format(fourcc as u32).expect("known format");
    let to10 = |c: u8| (u32::from(c) * 1023 + 127) / 255;
    let from10 = |c: u32| ((c * 255 + 511) / 1023) as u8;
    let mut expected = image.clone();
    let (bytes, planes) = layout(format, |_, y, row| {
        for x in 0..W {
            let p = image.pixel(x, y);
            let at = x as usize;
            match fourcc {
                Fourcc::Argb8888 => row[at * 4..at * 4 + 4].copy_from_slice(&Format32::Argb8888.encode(p, 0)),
                Fourcc::Xrgb8888 => row[at * 4..at * 4 + 4].copy_from_slice(&Format32::Xrgb8888.encode(p, 0)),
                Fourcc::Abgr8888 => row[at * 4..at * 4 + 4].copy_from_slice(&Format32::Abgr8888.encode(p, 0)),
                Fourcc::Xbgr8888 => row[at * 4..at * 4 + 4].copy_from_slice(&Format32::Xbgr8888.encode(p, 0)),
                Fourcc::Rgb565 => {
                    let (r, g, b) = (u16::from(p.0 >> 3), u16::from(p.1 >> 2), u16::from(p.2 >> 3));
                    row[at * 2..at * 2 + 2].copy_from_slice(&((r << 11) | (g << 5) | b).to_le_bytes());
                }
                Fourcc::Argb2101010 | Fourcc::Xrgb2101010 | Fourcc::Abgr2101010 | Fourcc::Xbgr2101010 => {
                    let (r, g, b) = (to10(p.0), to10(p.1), to10(p.2));
                    // X formats get 0 in the alpha bits: sampling them would show it.
                    let a = if matches!(fourcc, Fourcc::Argb2101010 | Fourcc::Abgr2101010) { 3 } else { 0 };
                    let v = if matches!(fourcc, Fourcc::Argb2101010 | Fourcc::Xrgb2101010) {
                        (a << 30) | (r << 20) | (g << 10) | b
                    } else {
                        (a << 30) | (b << 20) | (g << 10) | r
                    };
                    row[at * 4..at * 4 + 4].copy_from_slice(&v.to_le_bytes());
                }
                Fourcc::Abgr16161616f | Fourcc::Xbgr16161616f => {
                    let a = if fourcc == Fourcc::Abgr16161616f { 1.0 } else { 0.0 };
                    let channels = [f32::from(p.0) / 255.0, f32::from(p.1) / 255.0, f32::from(p.2) / 255.0, a];
                    for (i, c) in channels.into_iter().enumerate() {
                        let h = half::f16::from_f32(c).to_bits().to_le_bytes();
                        row[at * 8 + i * 2..at * 8 + i * 2 + 2].copy_from_slice(&h);
                    }
                }
                other => panic!("not an RGB format: {other:?}"),
            }
        }
    });
    if fourcc == Fourcc::Rgb565 {
        let expand = |v: u32, bits: u32| ((v * 255 + ((1 << bits) - 1) / 2) / ((1 << bits) - 1)) as u8;
        expected = Image::new(W, H, |x, y| {
            let p = image.pixel(x, y);
            Rgba::opaque(expand(u32::from(p.0 >> 3), 5), expand(u32::from(p.1 >> 2), 6), expand(u32::from(p.2 >> 3), 5))
        });
    }
    if matches!(fourcc, Fourcc::Argb2101010 | Fourcc::Xrgb2101010 | Fourcc::Abgr2101010 | Fourcc::Xbgr2101010) {
        expected = Image::new(W, H, |x, y| {
            let p = image.pixel(x, y);
            Rgba::opaque(from10(to10(p.0)), from10(to10(p.1)), from10(to10(p.2)))
        });
    }
    Encoded { bytes, planes, expected }
}

fn encode_yuv(fourcc: Fourcc, image: &Image, matrix: YuvMatrix, range: YuvRange) -> Encoded {
    let format = dmabuf_format(fourcc as u32).expect("known format");
    let bits = format.mode.yuv_bits();
    let yuv = |x: u32, y: u32| {
        let p = image.pixel(x.min(W - 1), y.min(H - 1));
        rgb_to_yuv([p.0, p.1, p.2], matrix, range, bits)
    };
    let p010 = |v: u16| (v << 6).to_le_bytes();
    let (bytes, planes) = layout(format, |plane, row_index, row| match (fourcc, plane) {
        (Fourcc::Nv12 | Fourcc::Yuv420, 0) => {
            for x in 0..W {
                row[x as usize] = yuv(x, row_index)[0] as u8;
            }
        }
        (Fourcc::Nv12, 1) => {
            for bx in 0..W.div_ceil(2) {
                let [_, u, v] = yuv(bx * 2, row_index * 2);
                row[bx as usize * 2] = u as u8;
                row[bx as usize * 2 + 1] = v as u8;
            }
        }
        (Fourcc::Yuv420, 1 | 2) => {
            for bx in 0..W.div_ceil(2) {
                row[bx as usize] = yuv(bx * 2, row_index * 2)[plane] as u8;
            }
        }
        (Fourcc::P010, 0) => {
            for x in 0..W {
                row[x as usize * 2..x as usize * 2 + 2].copy_from_slice(&p010(yuv(x, row_index)[0]));
            }
        }
        (Fourcc::P010, 1) => {
            for bx in 0..W.div_ceil(2) {
                let [_, u, v] = yuv(bx * 2, row_index * 2);
                let at = bx as usize * 4;
                row[at..at + 2].copy_from_slice(&p010(u));
                row[at + 2..at + 4].copy_from_slice(&p010(v));
            }
        }
        (Fourcc::Yuyv, 0) => {
            for bx in 0..W.div_ceil(2) {
                let [y0, u, v] = yuv(bx * 2, row_index);
                let y1 = yuv(bx * 2 + 1, row_index)[0];
                row[bx as usize * 4..bx as usize * 4 + 4].copy_from_slice(&[y0 as u8, u as u8, y1 as u8, v as u8]);
            }
        }
        other => panic!("no plane {other:?}"),
    });
    let expected = Image::new(W, H, |x, y| {
        let [cy, _, _] = yuv(x, y);
        let chroma_y = if fourcc == Fourcc::Yuyv { y } else { y / 2 * 2 };
        let [_, u, v] = yuv(x / 2 * 2, chroma_y);
        let [r, g, b] = yuv_to_rgb(cy, u, v, matrix, range, bits);
        Rgba::opaque(r, g, b)
    });
    Encoded { bytes, planes, expected }
}

/// Sends `encoded` as a dmabuf (create or create_immed; sealed memfd or not), shows it
/// in a new window and returns the screenshot of the window.
fn show(
    client: &mut TestClient,
    encoded: &Encoded,
    fourcc: Fourcc,
    immed: bool,
    seal: bool,
    colour: Option<(&WpColorRepresentationManagerV1, Coefficients, Range)>,
) -> Image {
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let mut memory = SharedMemory::new(encoded.bytes.len()).unwrap();
    memory.bytes_mut().copy_from_slice(&encoded.bytes);
    if seal {
        seal_shrink(memory.fd()).unwrap();
    }
    let planes: Vec<Plane<'_>> = encoded
        .planes
        .iter()
        .map(|&(offset, stride)| Plane { fd: memory.fd(), offset, stride, modifier: 0 })
        .collect();
    let params = client.dmabuf_params(&dmabuf, &planes);
    let buffer = if immed {
        client.dmabuf_create_immed(&params, W as i32, H as i32, fourcc as u32)
    } else {
        match client.dmabuf_create(&params, W as i32, H as i32, fourcc as u32).unwrap() {
            Created::Buffer(buffer) => buffer,
            Created::Failed => panic!("{fourcc:?}: create failed"),
        }
    };
    let window = client.create_window(&format!("{fourcc:?}")).unwrap();
    let _rep = colour.map(|(manager, c, r)| client.set_color_representation(manager, &window.surface, c, r));
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, W as i32, H as i32);
    client.commit_and_wait_frame(&window.surface).unwrap();
    let (x, y) = centred(OUT_W, OUT_H, W, H);
    let shot = client.screenshot_region(x as i32, y as i32, W as i32, H as i32).unwrap();
    window.toplevel.destroy();
    window.xdg_surface.destroy();
    window.surface.destroy();
    buffer.destroy();
    shot
}

#[test]
fn every_rgb_format_shows_exact_pixels() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let image = source();
    let formats = [
        Fourcc::Argb8888,
        Fourcc::Xrgb8888,
        Fourcc::Abgr8888,
        Fourcc::Xbgr8888,
        Fourcc::Rgb565,
        Fourcc::Argb2101010,
        Fourcc::Xrgb2101010,
        Fourcc::Abgr2101010,
        Fourcc::Xbgr2101010,
        Fourcc::Abgr16161616f,
        Fourcc::Xbgr16161616f,
    ];
    for (i, fourcc) in formats.into_iter().enumerate() {
        let encoded = encode_rgb(fourcc, &image);
        // Alternate create/create_immed and the mmap (sealed) / pread (unsealed) read paths.
        let shot = show(&mut client, &encoded, fourcc, i % 2 == 0, i % 3 == 0, None);
        assert_image(&shot, &encoded.expected, 0, &format!("dmabuf-{fourcc:?}"));
    }
}

#[test]
fn every_yuv_format_is_converted_with_bt601_limited_by_default() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let image = source();
    for (i, fourcc) in [Fourcc::Nv12, Fourcc::P010, Fourcc::Yuv420, Fourcc::Yuyv].into_iter().enumerate() {
        let encoded = encode_yuv(fourcc, &image, YuvMatrix::Bt601, YuvRange::Limited);
        let shot = show(&mut client, &encoded, fourcc, i % 2 == 1, i % 2 == 0, None);
        assert_image(&shot, &encoded.expected, 1, &format!("dmabuf-{fourcc:?}"));
        // The reference conversion is itself close to the source image.
        assert_image(&encoded.expected, &image, 3, &format!("reference-{fourcc:?}"));
    }
}

#[test]
fn color_representation_selects_matrix_and_range() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let image = source();
    let matrices = [(YuvMatrix::Bt601, Coefficients::Bt601), (YuvMatrix::Bt709, Coefficients::Bt709), (YuvMatrix::Bt2020, Coefficients::Bt2020)];
    let ranges = [(YuvRange::Limited, Range::Limited), (YuvRange::Full, Range::Full)];
    let manager = client.bind_color_representation().unwrap();
    assert_eq!(client.color_events().supported.len(), 6, "3 matrices x 2 ranges advertised");
    for (matrix, coefficients) in matrices {
        for (range, protocol_range) in ranges {
            for fourcc in [Fourcc::Nv12, Fourcc::P010] {
                let encoded = encode_yuv(fourcc, &image, matrix, range);
                let shot = show(&mut client, &encoded, fourcc, false, false, Some((&manager, coefficients, protocol_range)));
                assert_image(&shot, &encoded.expected, 1, &format!("colour-{fourcc:?}-{matrix:?}-{range:?}"));
            }
        }
    }
}
