//! Memory layout of each plane of each format: blocks of `block_w` x `block_h`
//! pixels, `bytes_per_block` bytes each (a block is one texel of the plane's
//! texture in the compositor).

use crate::fourcc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneLayout {
    pub block_w: u32,
    pub block_h: u32,
    pub bytes_per_block: u32,
}

impl PlaneLayout {
    /// Size of this plane in blocks for a `width` x `height` buffer.
    pub fn size(&self, width: u32, height: u32) -> (u32, u32) {
        (width.div_ceil(self.block_w), height.div_ceil(self.block_h))
    }

    /// Bytes of one row of blocks.
    pub fn row_bytes(&self, width: u32) -> u64 {
        u64::from(width.div_ceil(self.block_w)) * u64::from(self.bytes_per_block)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatLayout {
    pub fourcc: u32,
    pub planes: &'static [PlaneLayout],
    /// Significant bits of each sample for YUV formats; None for RGB.
    pub yuv_bits: Option<u32>,
}

const fn plane(block_w: u32, block_h: u32, bytes_per_block: u32) -> PlaneLayout {
    PlaneLayout { block_w, block_h, bytes_per_block }
}

pub const PACKED16: &[PlaneLayout] = &[plane(1, 1, 2)];
pub const PACKED32: &[PlaneLayout] = &[plane(1, 1, 4)];
pub const PACKED64: &[PlaneLayout] = &[plane(1, 1, 8)];
/// Y plane of one byte per pixel, CbCr plane of two bytes per 2x2 block.
pub const NV12: &[PlaneLayout] = &[plane(1, 1, 1), plane(2, 2, 2)];
/// As NV12 with 16-bit little-endian samples (10 significant bits at the top).
pub const P010: &[PlaneLayout] = &[plane(1, 1, 2), plane(2, 2, 4)];
pub const YUV420: &[PlaneLayout] = &[plane(1, 1, 1), plane(2, 2, 1), plane(2, 2, 1)];
/// Y0 Cb Y1 Cr: one block per two pixels.
pub const YUYV: &[PlaneLayout] = &[plane(2, 1, 4)];

const fn rgb(fourcc: u32, planes: &'static [PlaneLayout]) -> FormatLayout {
    FormatLayout { fourcc, planes, yuv_bits: None }
}

const fn yuv(fourcc: u32, planes: &'static [PlaneLayout], bits: u32) -> FormatLayout {
    FormatLayout { fourcc, planes, yuv_bits: Some(bits) }
}

/// Every format Axiom imports, in the order it advertises them.
pub const FORMATS: &[FormatLayout] = &[
    rgb(fourcc::ARGB8888, PACKED32),
    rgb(fourcc::XRGB8888, PACKED32),
    rgb(fourcc::ABGR8888, PACKED32),
    rgb(fourcc::XBGR8888, PACKED32),
    rgb(fourcc::RGB565, PACKED16),
    rgb(fourcc::ARGB2101010, PACKED32),
    rgb(fourcc::XRGB2101010, PACKED32),
    rgb(fourcc::ABGR2101010, PACKED32),
    rgb(fourcc::XBGR2101010, PACKED32),
    rgb(fourcc::ABGR16161616F, PACKED64),
    rgb(fourcc::XBGR16161616F, PACKED64),
    yuv(fourcc::NV12, NV12, 8),
    yuv(fourcc::P010, P010, 10),
    yuv(fourcc::YUV420, YUV420, 8),
    yuv(fourcc::YUYV, YUYV, 8),
];

pub fn layout(fourcc: u32) -> Option<&'static FormatLayout> {
    FORMATS.iter().find(|f| f.fourcc == fourcc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_sizes_round_up_for_odd_dimensions() {
        let nv12 = layout(fourcc::NV12).unwrap();
        assert_eq!(nv12.planes[0].size(33, 17), (33, 17));
        assert_eq!(nv12.planes[1].size(33, 17), (17, 9));
        assert_eq!(nv12.planes[1].row_bytes(33), 34);
        assert_eq!(layout(fourcc::YUYV).unwrap().planes[0].row_bytes(33), 68);
        assert_eq!(layout(fourcc::P010).unwrap().planes[1].row_bytes(33), 68);
    }

    #[test]
    fn every_fourcc_is_listed_once() {
        for (i, a) in FORMATS.iter().enumerate() {
            assert!(FORMATS[i + 1..].iter().all(|b| b.fourcc != a.fourcc), "{} twice", fourcc::name(a.fourcc));
        }
    }
}
