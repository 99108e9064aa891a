//! Encoders: one known RGB image written in any format's memory layout (RGB
//! to YCbCr through the reference converter), with the image the compositor
//! should show for it (what the format can represent of the source).

use crate::convert::{rgb_to_yuv, ycbcr_to_rgb, YuvMatrix, YuvRange};
use crate::fourcc;
use crate::image::{bilinear_at, Format32, Image, Rgba};
use crate::layout::{layout, FormatLayout};

/// A buffer of one format in one piece of memory.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    /// (offset, stride) of each plane.
    pub planes: Vec<(u32, u32)>,
    /// What the compositor should show.
    pub expected: Image,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Bytes added to every row beyond what it needs.
    pub stride_pad: u32,
    /// Bytes before the first plane and between planes.
    pub plane_gap: u32,
    pub matrix: YuvMatrix,
    pub range: YuvRange,
    /// Where the compositor takes 4:2:0 chroma samples to sit (the expected image).
    pub chroma: ChromaSiting,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            stride_pad: 0,
            plane_gap: 0,
            matrix: YuvMatrix::Bt601,
            range: YuvRange::Limited,
            chroma: ChromaSiting::TYPE_0,
        }
    }
}

/// Where a 4:2:0 chroma sample sits, in pixels from the top-left of its 2x2 block
/// (H.273 Chroma420SampleLocType): between them, pixels take chroma interpolated
/// bilinearly from the samples around them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChromaSiting {
    pub x: f64,
    pub y: f64,
}

impl ChromaSiting {
    /// Left, between the block's rows: MPEG-2, H.264 and HEVC's default.
    pub const TYPE_0: Self = Self { x: 0.0, y: 0.5 };
    /// The block's centre: JPEG, MPEG-1.
    pub const TYPE_1: Self = Self { x: 0.5, y: 0.5 };
    /// The block's top-left pixel: BT.2020 UHD.
    pub const TYPE_2: Self = Self { x: 0.0, y: 0.0 };
}

/// An image whose 2x2 blocks are uniform (so that 4:2:0 subsampling loses
/// nothing) with saturated and mid values.
pub fn block_pattern(width: u32, height: u32) -> Image {
    Image::new(width, height, |x, y| {
        let (bx, by) = (x / 2, y / 2);
        Rgba::opaque((bx * 15 % 256) as u8, (by * 29 % 256) as u8, ((bx + by) * 53 % 256) as u8)
    })
}

/// Encodes `image` (opaque) as `fourcc`; None for a format this crate does not know.
pub fn encode(fourcc: u32, image: &Image, options: Options) -> Option<Encoded> {
    let format = layout(fourcc)?;
    Some(match format.yuv_bits {
        None => encode_rgb(format, image, options),
        Some(bits) => encode_yuv(format, image, options, bits),
    })
}

/// Lays the planes out one after the other and lets `fill` write plane `i`, row `y`.
fn planes(
    format: &FormatLayout,
    width: u32,
    height: u32,
    options: Options,
    mut fill: impl FnMut(usize, u32, &mut [u8]),
) -> (Vec<u8>, Vec<(u32, u32)>) {
    let mut planes = Vec::new();
    let mut offset = options.plane_gap;
    for plane in format.planes {
        let stride = plane.row_bytes(width) as u32 + options.stride_pad;
        let (_, rows) = plane.size(width, height);
        planes.push((offset, stride));
        offset += stride * rows + options.plane_gap;
    }
    // Padding bytes are noise, not zero, so that reading them would show.
    let mut bytes = vec![0xA5u8; offset as usize];
    for (index, plane) in format.planes.iter().enumerate() {
        let (offset, stride) = planes[index];
        let (_, rows) = plane.size(width, height);
        for y in 0..rows {
            let start = (offset + y * stride) as usize;
            fill(index, y, &mut bytes[start..start + plane.row_bytes(width) as usize]);
        }
    }
    (bytes, planes)
}

fn to10(c: u8) -> u32 {
    (u32::from(c) * 1023 + 127) / 255
}

/// `v` of `bits` bits expanded to 8 bits, rounded.
fn expand(v: u32, bits: u32) -> u8 {
    let max = (1 << bits) - 1;
    ((v * 255 + max / 2) / max) as u8
}

fn encode_rgb(format: &FormatLayout, image: &Image, options: Options) -> Encoded {
    let code = format.fourcc;
    let (bytes, offsets) = planes(format, image.width, image.height, options, |_, y, row| {
        for x in 0..image.width {
            let p = image.pixel(x, y);
            let at = x as usize;
            let x32 = |f: Format32| f.encode(p, 0);
            match code {
                fourcc::ARGB8888 => row[at * 4..at * 4 + 4].copy_from_slice(&x32(Format32::Argb8888)),
                fourcc::XRGB8888 => row[at * 4..at * 4 + 4].copy_from_slice(&x32(Format32::Xrgb8888)),
                fourcc::ABGR8888 => row[at * 4..at * 4 + 4].copy_from_slice(&x32(Format32::Abgr8888)),
                fourcc::XBGR8888 => row[at * 4..at * 4 + 4].copy_from_slice(&x32(Format32::Xbgr8888)),
                fourcc::RGB565 => {
                    let (r, g, b) = (u16::from(p.0 >> 3), u16::from(p.1 >> 2), u16::from(p.2 >> 3));
                    row[at * 2..at * 2 + 2].copy_from_slice(&((r << 11) | (g << 5) | b).to_le_bytes());
                }
                fourcc::ARGB2101010 | fourcc::XRGB2101010 | fourcc::ABGR2101010 | fourcc::XBGR2101010 => {
                    let (r, g, b) = (to10(p.0), to10(p.1), to10(p.2));
                    // X formats get 0 in the alpha bits: a compositor sampling them would show it.
                    let a = if matches!(code, fourcc::ARGB2101010 | fourcc::ABGR2101010) { 3 } else { 0 };
                    let v = if matches!(code, fourcc::ARGB2101010 | fourcc::XRGB2101010) {
                        (a << 30) | (r << 20) | (g << 10) | b
                    } else {
                        (a << 30) | (b << 20) | (g << 10) | r
                    };
                    row[at * 4..at * 4 + 4].copy_from_slice(&v.to_le_bytes());
                }
                fourcc::ABGR16161616F | fourcc::XBGR16161616F => {
                    let a = if code == fourcc::ABGR16161616F { 1.0 } else { 0.0 };
                    let channels = [f32::from(p.0) / 255.0, f32::from(p.1) / 255.0, f32::from(p.2) / 255.0, a];
                    for (i, c) in channels.into_iter().enumerate() {
                        row[at * 8 + i * 2..at * 8 + i * 2 + 2]
                            .copy_from_slice(&half::f16::from_f32(c).to_bits().to_le_bytes());
                    }
                }
                _ => unreachable!("every RGB layout is handled"),
            }
        }
    });
    let expected = match code {
        fourcc::RGB565 => image.map(|p| {
            Rgba::opaque(expand(u32::from(p.0 >> 3), 5), expand(u32::from(p.1 >> 2), 6), expand(u32::from(p.2 >> 3), 5))
        }),
        fourcc::ARGB2101010 | fourcc::XRGB2101010 | fourcc::ABGR2101010 | fourcc::XBGR2101010 => {
            image.map(|p| Rgba::opaque(expand(to10(p.0), 10), expand(to10(p.1), 10), expand(to10(p.2), 10)))
        }
        _ => image.clone(),
    };
    Encoded { bytes, planes: offsets, expected }
}

fn encode_yuv(format: &FormatLayout, image: &Image, options: Options, bits: u32) -> Encoded {
    let (w, h) = (image.width, image.height);
    let code = format.fourcc;
    let yuv = |x: u32, y: u32| {
        let p = image.pixel(x.min(w - 1), y.min(h - 1));
        rgb_to_yuv([p.0, p.1, p.2], options.matrix, options.range, bits)
    };
    let le16 = |v: u16| (v << (16 - bits)).to_le_bytes();
    let (bytes, offsets) = planes(format, w, h, options, |plane, y, row| match (code, plane) {
        (fourcc::NV12 | fourcc::YUV420, 0) => {
            for x in 0..w {
                row[x as usize] = yuv(x, y)[0] as u8;
            }
        }
        (fourcc::NV12, 1) => {
            for bx in 0..w.div_ceil(2) {
                let [_, u, v] = yuv(bx * 2, y * 2);
                row[bx as usize * 2..bx as usize * 2 + 2].copy_from_slice(&[u as u8, v as u8]);
            }
        }
        (fourcc::YUV420, 1 | 2) => {
            for bx in 0..w.div_ceil(2) {
                row[bx as usize] = yuv(bx * 2, y * 2)[plane] as u8;
            }
        }
        (fourcc::P010, 0) => {
            for x in 0..w {
                row[x as usize * 2..x as usize * 2 + 2].copy_from_slice(&le16(yuv(x, y)[0]));
            }
        }
        (fourcc::P010, 1) => {
            for bx in 0..w.div_ceil(2) {
                let [_, u, v] = yuv(bx * 2, y * 2);
                let at = bx as usize * 4;
                row[at..at + 2].copy_from_slice(&le16(u));
                row[at + 2..at + 4].copy_from_slice(&le16(v));
            }
        }
        (fourcc::YUYV, 0) => {
            for bx in 0..w.div_ceil(2) {
                let [y0, u, v] = yuv(bx * 2, y);
                let y1 = yuv(bx * 2 + 1, y)[0];
                row[bx as usize * 4..bx as usize * 4 + 4].copy_from_slice(&[y0 as u8, u as u8, y1 as u8, v as u8]);
            }
        }
        _ => unreachable!("every YUV plane is handled"),
    });
    // Each chroma sample is the block's top-left pixel's (the encoder above); a pixel's
    // chroma is interpolated between the samples around it where they sit: 4:2:0 at
    // (2i, 2j) + siting, YUYV (4:2:2) at (2i, j).
    let yuyv = code == fourcc::YUYV;
    let (grid_w, grid_h) = (w.div_ceil(2), if yuyv { h } else { h.div_ceil(2) });
    let sample = |i: f64, j: f64| {
        let (i, j) = (i.clamp(0.0, f64::from(grid_w - 1)) as u32, j.clamp(0.0, f64::from(grid_h - 1)) as u32);
        let [_, u, v] = yuv(i * 2, if yuyv { j } else { j * 2 });
        [f64::from(u), f64::from(v)]
    };
    let siting = if yuyv { ChromaSiting { x: 0.0, y: 0.0 } } else { options.chroma };
    let expected = Image::new(w, h, |x, y| {
        let [luma, _, _] = yuv(x, y);
        let u = (f64::from(x) - siting.x) / 2.0;
        let v = if yuyv { f64::from(y) } else { (f64::from(y) - siting.y) / 2.0 };
        let [cb, cr] = bilinear_at((u, v), sample);
        let [r, g, b] = ycbcr_to_rgb([f64::from(luma), cb, cr], options.matrix, options.range, bits);
        Rgba::opaque(r, g, b)
    });
    Encoded { bytes, planes: offsets, expected }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_encodes_and_expected_images_stay_close_to_the_source() {
        // Chroma is interpolated between blocks: a grey ramp (one chroma) stays close for YUV.
        let blocks = block_pattern(33, 17);
        let ramp = Image::new(33, 17, |x, y| {
            let v = ((x * 7 + y * 3) % 256) as u8;
            Rgba::opaque(v, v, v)
        });
        for format in crate::layout::FORMATS {
            let image = if format.yuv_bits.is_some() { &ramp } else { &blocks };
            let encoded =
                encode(format.fourcc, image, Options { stride_pad: 16, plane_gap: 64, ..Default::default() }).unwrap();
            assert_eq!(encoded.planes.len(), format.planes.len());
            // 565 loses the low bits; YUV loses a little to rounding.
            let tolerance = if format.fourcc == fourcc::RGB565 { 7 } else { 3 };
            encoded
                .expected
                .compare(image, tolerance)
                .unwrap_or_else(|e| panic!("{}: {e}", fourcc::name(format.fourcc)));
        }
    }
}
