//! Every linux-dmabuf format shows the expected pixels. The test draws one
//! known RGB image, converts it to each format (`axiom_formats::encode`: RGB to
//! YCbCr for every matrix and range through the reference converter), sends it as a memfd
//! "dmabuf" with an odd size, padded strides and non-zero plane offsets, and
//! compares a screenshot with what the format can represent.

use axiom_testclient::convert::{YuvMatrix, YuvRange};
use axiom_testclient::dmabuf::{seal_shrink, Created, Plane};
use axiom_testclient::encode::{block_pattern, encode, ChromaSiting, Encoded, Options};
use axiom_testclient::fourcc::{self, name};
use axiom_testclient::layout::FORMATS;
use axiom_testclient::memfd::SharedMemory;
use axiom_testclient::{Image, TestClient};
use wayland_protocols::wp::color_representation::v1::client::wp_color_representation_manager_v1::WpColorRepresentationManagerV1;
use wayland_protocols::wp::color_representation::v1::client::wp_color_representation_surface_v1::{
    ChromaLocation, Coefficients, Range,
};

use wayland_client::protocol::wl_buffer::WlBuffer;

use crate::common::{assert_image, centred, import_stats, start};

const OUT_W: u32 = 160;
const OUT_H: u32 = 120;
/// Odd on purpose: chroma planes round up, rows are not multiples of anything.
const W: u32 = 33;
const H: u32 = 17;
/// Bytes added to every row, and before every plane.
const STRIDE_PAD: u32 = 16;
const PLANE_GAP: u32 = 64;

fn source() -> Image {
    block_pattern(W, H)
}

/// `image` in `fourcc` with padded strides and plane gaps; the matrix and range apply to YUV.
fn encode_as(fourcc: u32, image: &Image, matrix: YuvMatrix, range: YuvRange) -> Encoded {
    encode_sited(fourcc, image, matrix, range, ChromaSiting::TYPE_0)
}

/// As `encode_as`, expecting 4:2:0 chroma sited at `chroma`.
fn encode_sited(fourcc: u32, image: &Image, matrix: YuvMatrix, range: YuvRange, chroma: ChromaSiting) -> Encoded {
    encode(fourcc, image, Options { stride_pad: STRIDE_PAD, plane_gap: PLANE_GAP, matrix, range, chroma })
        .expect("known format")
}

/// The colour representation a window asks for: matrix and range, and where its
/// chroma sits (unset: None).
type Colour<'a> = (&'a WpColorRepresentationManagerV1, Coefficients, Range, Option<ChromaLocation>);

/// Sends `encoded` as a dmabuf (create or create_immed; sealed memfd or not), shows it
/// in a new window and returns the screenshot of the window.
fn show(
    client: &mut TestClient,
    encoded: &Encoded,
    fourcc: u32,
    immed: bool,
    seal: bool,
    colour: Option<Colour<'_>>,
) -> Image {
    show_sized(client, encoded, fourcc, (W, H), immed, seal, colour)
}

/// `encoded` in a memfd (sealed or not) as a dmabuf of `size` (create or create_immed);
/// the memory must outlive the buffer's use.
fn encoded_buffer(
    client: &mut TestClient,
    encoded: &Encoded,
    fourcc: u32,
    (w, h): (u32, u32),
    immed: bool,
    seal: bool,
) -> (SharedMemory, WlBuffer) {
    let dmabuf = client.bind_dmabuf(5).unwrap();
    let mut memory = SharedMemory::new(encoded.bytes.len()).unwrap();
    memory.bytes_mut().copy_from_slice(&encoded.bytes);
    if seal {
        seal_shrink(memory.fd()).unwrap();
    }
    let params = {
        let planes: Vec<Plane<'_>> = encoded
            .planes
            .iter()
            .map(|&(offset, stride)| Plane { fd: memory.fd(), offset, stride, modifier: 0 })
            .collect();
        client.dmabuf_params(&dmabuf, &planes)
    };
    let buffer = if immed {
        client.dmabuf_create_immed(&params, w as i32, h as i32, fourcc)
    } else {
        match client.dmabuf_create(&params, w as i32, h as i32, fourcc).unwrap() {
            Created::Buffer(buffer) => buffer,
            Created::Failed => panic!("{}: create failed", name(fourcc)),
        }
    };
    (memory, buffer)
}

/// As `show`, for a buffer of `size`.
fn show_sized(
    client: &mut TestClient,
    encoded: &Encoded,
    fourcc: u32,
    (w, h): (u32, u32),
    immed: bool,
    seal: bool,
    colour: Option<Colour<'_>>,
) -> Image {
    let (_memory, buffer) = encoded_buffer(client, encoded, fourcc, (w, h), immed, seal);
    let window = client.create_window(&name(fourcc)).unwrap();
    let _rep = colour.map(|(manager, c, r, chroma)| {
        let rep = client.set_color_representation(manager, &window.surface, c, r);
        if let Some(location) = chroma {
            rep.set_chroma_location(location);
        }
        rep
    });
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, w as i32, h as i32);
    client.commit_and_wait_frame(&window.surface).unwrap();
    let (x, y) = centred(OUT_W, OUT_H, w, h);
    let shot = client.screenshot_region(x as i32, y as i32, w as i32, h as i32).unwrap();
    window.destroy();
    buffer.destroy();
    shot
}

#[test]
fn every_rgb_format_shows_exact_pixels() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let image = source();
    let formats = FORMATS.iter().filter(|f| f.yuv_bits.is_none()).map(|f| f.fourcc);
    for (i, fourcc) in formats.enumerate() {
        let encoded = encode_as(fourcc, &image, YuvMatrix::Bt601, YuvRange::Limited);
        // Sealed memfds are mapped (or imported by Vulkan), unsealed ones read with pread;
        // create and create_immed alternate.
        for seal in [true, false] {
            let shot = show(&mut client, &encoded, fourcc, i % 2 == 0, seal, None);
            assert_image(&shot, &encoded.expected, 0, &format!("dmabuf-{}-sealed-{seal}", name(fourcc)));
        }
    }
}

#[test]
fn every_yuv_format_is_converted_with_bt601_limited_by_default() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let image = source();
    let formats = FORMATS.iter().filter(|f| f.yuv_bits.is_some()).map(|f| f.fourcc);
    for (i, fourcc) in formats.enumerate() {
        let encoded = encode_as(fourcc, &image, YuvMatrix::Bt601, YuvRange::Limited);
        for seal in [true, false] {
            let shot = show(&mut client, &encoded, fourcc, i % 2 == 1, seal, None);
            assert_image(&shot, &encoded.expected, 1, &format!("dmabuf-{}-sealed-{seal}", name(fourcc)));
        }
    }
}

#[test]
fn color_representation_selects_matrix_and_range() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let image = source();
    let matrices = [
        (YuvMatrix::Bt601, Coefficients::Bt601),
        (YuvMatrix::Bt709, Coefficients::Bt709),
        (YuvMatrix::Bt2020, Coefficients::Bt2020),
    ];
    let ranges = [(YuvRange::Limited, Range::Limited), (YuvRange::Full, Range::Full)];
    let manager = client.bind_color_representation().unwrap();
    assert_eq!(client.color_events().supported.len(), 6, "3 matrices x 2 ranges advertised");
    for (matrix, coefficients) in matrices {
        for (range, protocol_range) in ranges {
            for fourcc in [fourcc::NV12, fourcc::P010] {
                let encoded = encode_as(fourcc, &image, matrix, range);
                let shot = show(
                    &mut client,
                    &encoded,
                    fourcc,
                    false,
                    true,
                    Some((&manager, coefficients, protocol_range, None)),
                );
                assert_image(&shot, &encoded.expected, 1, &format!("colour-{}-{matrix:?}-{range:?}", name(fourcc)));
            }
        }
    }
}

/// Subsampled chroma is interpolated between the samples around each pixel, where the
/// client says they sit (wp_color_representation_v1's chroma location; type 0 where it
/// names none): across the sharp chroma edges of the block pattern, within one code
/// value of the reference interpolation. Replicating each block's chroma fails this.
#[test]
fn chroma_is_interpolated_where_the_client_says_its_samples_sit() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let image = source();
    let manager = client.bind_color_representation().unwrap();
    let sitings = [
        (ChromaLocation::Type0, ChromaSiting::TYPE_0),
        (ChromaLocation::Type1, ChromaSiting::TYPE_1),
        (ChromaLocation::Type2, ChromaSiting::TYPE_2),
    ];
    for fourcc in [fourcc::NV12, fourcc::P010, fourcc::YUV420] {
        for (location, siting) in sitings {
            let encoded = encode_sited(fourcc, &image, YuvMatrix::Bt709, YuvRange::Limited, siting);
            let colour = Some((&manager, Coefficients::Bt709, Range::Limited, Some(location)));
            let shot = show(&mut client, &encoded, fourcc, false, true, colour);
            assert_image(&shot, &encoded.expected, 1, &format!("chroma-{}-{location:?}", name(fourcc)));
        }
    }
}

/// White, black and the saturated primaries, as YCbCr code values worked by hand from
/// the ITU-R definitions (`axiom_formats::convert::ITU_PRIMARIES`, not the converter the
/// shader shares), show as those colours in every matrix and range, within two codes.
#[test]
fn itu_code_values_show_as_the_colours_they_stand_for() {
    use axiom_testclient::convert::ITU_PRIMARIES;
    const COLUMN: u32 = 16;
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let manager = client.bind_color_representation().unwrap();
    let protocol = |matrix, range| {
        let coefficients = match matrix {
            YuvMatrix::Bt601 => Coefficients::Bt601,
            YuvMatrix::Bt709 => Coefficients::Bt709,
            YuvMatrix::Bt2020 => Coefficients::Bt2020,
        };
        (coefficients, if range == YuvRange::Full { Range::Full } else { Range::Limited })
    };
    for (matrix, range, colours) in ITU_PRIMARIES {
        // NV12, one 16-pixel column a colour: its centre's chroma comes from its own samples.
        let (w, h) = (COLUMN * colours.len() as u32, 8);
        let luma: Vec<u8> = (0..w * h).map(|i| colours[(i % w / COLUMN) as usize].1[0] as u8).collect();
        let chroma: Vec<u8> = (0..w / 2 * h / 2)
            .flat_map(|i| {
                let [_, cb, cr] = colours[(i % (w / 2) * 2 / COLUMN) as usize].1;
                [cb as u8, cr as u8]
            })
            .collect();
        let encoded = Encoded {
            bytes: [luma, chroma].concat(),
            planes: vec![(0, w), (w * h, w)],
            expected: Image::new(w, h, |x, _| {
                let [r, g, b] = colours[(x / COLUMN) as usize].0;
                axiom_testclient::Rgba::opaque(r, g, b)
            }),
        };
        let (coefficients, protocol_range) = protocol(matrix, range);
        let colour = Some((&manager, coefficients, protocol_range, None));
        let shot = show_sized(&mut client, &encoded, fourcc::NV12, (w, h), false, true, colour);
        for (i, (rgb, ycbcr)) in colours.iter().enumerate() {
            let centre = shot.pixel(i as u32 * COLUMN + COLUMN / 2, h / 2);
            let got = [centre.0, centre.1, centre.2];
            assert!(
                got.iter().zip(rgb).all(|(a, b)| a.abs_diff(*b) <= 2),
                "{matrix:?} {range:?}: {ycbcr:?} shows as {got:?}, not {rgb:?}"
            );
        }
    }
}

/// A 4:2:0 buffer rewritten in a few rows and damaged only there: the interpolated
/// chroma of those rows reaches two luma rows beyond each side, and those rows are
/// repainted too (else they would show the old chroma blend).
#[test]
fn a_partly_damaged_nv12_buffer_repaints_every_row_its_chroma_reaches() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let before = source();
    let after = Image::new(W, H, |x, y| match y {
        4..8 => axiom_testclient::Rgba::opaque(200, 60, 30),
        _ => before.pixel(x, y),
    });
    let [old, new] = [&before, &after].map(|image| encode_as(fourcc::NV12, image, YuvMatrix::Bt601, YuvRange::Limited));
    let (mut memory, buffer) = encoded_buffer(&mut client, &old, fourcc::NV12, (W, H), false, false);
    let window = client.create_window("partial").unwrap();
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, W as i32, H as i32);
    client.commit_and_wait_frame(&window.surface).unwrap();
    let (x, y) = centred(OUT_W, OUT_H, W, H);
    let shot = client.screenshot_region(x as i32, y as i32, W as i32, H as i32).unwrap();
    assert_image(&shot, &old.expected, 1, "nv12-partial-before");

    memory.bytes_mut().copy_from_slice(&new.bytes);
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 4, W as i32, 4);
    client.commit_and_wait_frame(&window.surface).unwrap();
    let shot = client.screenshot_region(x as i32, y as i32, W as i32, H as i32).unwrap();
    assert_image(&shot, &new.expected, 1, "nv12-partial-after");
}

/// The size of the plane-copy tests' images.
const COPIED_SIZE: (u32, u32) = (64, 16);

/// A block pattern of `COPIED_SIZE` in 4:2:0 `fourcc` (BT.601 limited, chroma type 0),
/// rows `stride_pad` bytes longer than the image's.
fn encode_copied(fourcc: u32, stride_pad: u32) -> Encoded {
    let (matrix, range, chroma) = (YuvMatrix::Bt601, YuvRange::Limited, ChromaSiting::TYPE_0);
    let options = Options { stride_pad, plane_gap: PLANE_GAP, matrix, range, chroma };
    encode(fourcc, &block_pattern(COPIED_SIZE.0, COPIED_SIZE.1), options).expect("known format")
}

/// Where the import ladder reads a 4:2:0 buffer in place as a buffer (step 2: the CI
/// host), each commit's planes are copied on the GPU into textures the shader samples,
/// with no CPU byte read; elsewhere (step 1, the CPU step) none is. Rows 256 bytes
/// apart are copied at once (NV12), others row by row (YUV420's chroma, 224 bytes
/// apart); planes a copy cannot start at (the odd offsets of the other tests here) are
/// read in place. Pixels within one code value either way.
#[test]
fn planes_of_4_2_0_buffers_read_as_buffers_are_copied_into_textures_on_the_gpu() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let (w, h) = COPIED_SIZE;
    for fourcc in [fourcc::NV12, fourcc::YUV420] {
        let encoded = encode_copied(fourcc, 256 - w);
        let before = import_stats(&compositor);
        let shot = show_sized(&mut client, &encoded, fourcc, (w, h), false, true, None);
        let after = import_stats(&compositor);
        assert_image(&shot, &encoded.expected, 1, &format!("plane-copies-{}", name(fourcc)));
        let rose = |key: &str| after[key] > before[key];
        assert_eq!(rose("plane_copies"), rose("vulkan_buffer"), "{}: {after:?}", name(fourcc));
        if rose("vulkan_buffer") {
            assert_eq!(after["cpu_bytes"], before["cpu_bytes"], "{}: {after:?}", name(fourcc));
        }
    }
}

/// An NV12 buffer whose chroma rows are an odd number of bytes apart cannot be
/// copied a row at a time (a copy starts at a whole texel): it is read in place, with
/// the same pixels and no error.
#[test]
fn nv12_chroma_rows_an_odd_number_of_bytes_apart_are_read_in_place() {
    let compositor = start(OUT_W, OUT_H);
    let mut client = compositor.connect().unwrap();
    let (w, h) = COPIED_SIZE;
    // Rows 65 bytes apart, the chroma plane at an even offset.
    let encoded = encode_copied(fourcc::NV12, 1);
    let (offset, stride) = encoded.planes[1];
    assert!(offset % 2 == 0 && stride % 2 == 1, "the layout this test means: {:?}", encoded.planes);
    let before = import_stats(&compositor);
    let shot = show_sized(&mut client, &encoded, fourcc::NV12, (w, h), false, true, None);
    let after = import_stats(&compositor);
    assert_image(&shot, &encoded.expected, 1, "nv12-odd-chroma-stride");
    assert_eq!(after["plane_copies"], before["plane_copies"], "{after:?}");
}
