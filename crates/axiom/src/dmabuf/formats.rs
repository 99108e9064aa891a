//! The DRM formats the renderer can sample from a linux-dmabuf buffer: the
//! memory layout of their planes (shared with clients, `axiom_formats`) and
//! the texture each plane becomes.
//!
//! Every plane is uploaded (or imported) as a texture of 8-bit normalised (or
//! float) texels whose bytes match the memory exactly; the shader rebuilds
//! 16-bit values, swaps channels, forces alpha and converts YUV, so no byte is
//! rearranged on the CPU.

use axiom_formats::layout::{self as shared, FormatLayout};
use smithay::backend::allocator::Fourcc;

use crate::render::formats::SampleMode;

/// One plane: blocks of `block_w` x `block_h` pixels, each `bytes_per_block`
/// bytes in memory and one texel of `texture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneLayout {
    pub block_w: u32,
    pub block_h: u32,
    pub bytes_per_block: u32,
    pub texture: wgpu::TextureFormat,
}

impl PlaneLayout {
    const fn new(shared: shared::PlaneLayout, texture: wgpu::TextureFormat) -> Self {
        Self { block_w: shared.block_w, block_h: shared.block_h, bytes_per_block: shared.bytes_per_block, texture }
    }

    fn shared(&self) -> shared::PlaneLayout {
        shared::PlaneLayout { block_w: self.block_w, block_h: self.block_h, bytes_per_block: self.bytes_per_block }
    }

    /// Size of this plane in blocks (texels) for a `width` x `height` buffer.
    pub fn size(&self, width: u32, height: u32) -> (u32, u32) {
        self.shared().size(width, height)
    }

    /// Bytes of one row of blocks.
    pub fn row_bytes(&self, width: u32) -> u64 {
        self.shared().row_bytes(width)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmabufFormat {
    pub fourcc: Fourcc,
    pub planes: &'static [PlaneLayout],
    pub mode: SampleMode,
    /// No alpha channel: alpha is forced to 1.
    pub opaque: bool,
}

use wgpu::TextureFormat as T;

const fn one(shared: &'static [shared::PlaneLayout], texture: T) -> [PlaneLayout; 1] {
    [PlaneLayout::new(shared[0], texture)]
}

const BGRA8: &[PlaneLayout] = &one(shared::PACKED32, T::Bgra8Unorm);
const RGBA8: &[PlaneLayout] = &one(shared::PACKED32, T::Rgba8Unorm);
const RGB10A2: &[PlaneLayout] = &one(shared::PACKED32, T::Rgb10a2Unorm);
const RGBA16F: &[PlaneLayout] = &one(shared::PACKED64, T::Rgba16Float);
const RG8_16BIT: &[PlaneLayout] = &one(shared::PACKED16, T::Rg8Unorm);
const NV12: &[PlaneLayout] =
    &[PlaneLayout::new(shared::NV12[0], T::R8Unorm), PlaneLayout::new(shared::NV12[1], T::Rg8Unorm)];
// 16-bit little-endian samples as two (Y) or four (CbCr) unorm8 channels.
const P010_PLANES: &[PlaneLayout] =
    &[PlaneLayout::new(shared::P010[0], T::Rg8Unorm), PlaneLayout::new(shared::P010[1], T::Rgba8Unorm)];
const YUV420: &[PlaneLayout] = &[
    PlaneLayout::new(shared::YUV420[0], T::R8Unorm),
    PlaneLayout::new(shared::YUV420[1], T::R8Unorm),
    PlaneLayout::new(shared::YUV420[2], T::R8Unorm),
];
// Y0 Cb Y1 Cr: one RGBA8 texel per two pixels.
const YUYV: &[PlaneLayout] = &one(shared::YUYV, T::Rgba8Unorm);

const fn f(fourcc: Fourcc, planes: &'static [PlaneLayout], mode: SampleMode, opaque: bool) -> DmabufFormat {
    DmabufFormat { fourcc, planes, mode, opaque }
}

use SampleMode::*;

/// Every format the import ladder knows, in `axiom_formats::layout::FORMATS` order.
/// Which of them are advertised depends on what the adapter can sample.
pub const DMABUF_FORMATS: &[DmabufFormat] = &[
    f(Fourcc::Argb8888, BGRA8, Direct, false),
    f(Fourcc::Xrgb8888, BGRA8, Direct, true),
    f(Fourcc::Abgr8888, RGBA8, Direct, false),
    f(Fourcc::Xbgr8888, RGBA8, Direct, true),
    f(Fourcc::Rgb565, RG8_16BIT, Rgb565, true),
    f(Fourcc::Argb2101010, RGB10A2, SwapRedBlue, false),
    f(Fourcc::Xrgb2101010, RGB10A2, SwapRedBlue, true),
    f(Fourcc::Abgr2101010, RGB10A2, Direct, false),
    f(Fourcc::Xbgr2101010, RGB10A2, Direct, true),
    f(Fourcc::Abgr16161616f, RGBA16F, Direct, false),
    f(Fourcc::Xbgr16161616f, RGBA16F, Direct, true),
    f(Fourcc::Nv12, NV12, Nv12, true),
    f(Fourcc::P010, P010_PLANES, P010, true),
    f(Fourcc::Yuv420, YUV420, Yuv420, true),
    f(Fourcc::Yuyv, YUYV, Yuyv, true),
];

pub fn dmabuf_format(fourcc: u32) -> Option<&'static DmabufFormat> {
    DMABUF_FORMATS.iter().find(|f| f.fourcc as u32 == fourcc)
}

/// The shared layout of a format, as clients see it.
pub fn shared_layout(format: &DmabufFormat) -> Option<&'static FormatLayout> {
    shared::layout(format.fourcc as u32)
}

/// The formats whose every plane texture the adapter can sample and fill by copy.
pub fn supported_formats(adapter: &wgpu::Adapter) -> Vec<&'static DmabufFormat> {
    DMABUF_FORMATS
        .iter()
        .filter(|format| {
            format.planes.iter().all(|plane| {
                let features = adapter.get_texture_format_features(plane.texture);
                features.allowed_usages.contains(wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_shared_layouts_one_to_one() {
        assert_eq!(DMABUF_FORMATS.len(), shared::FORMATS.len());
        for (ours, theirs) in DMABUF_FORMATS.iter().zip(shared::FORMATS) {
            assert_eq!(ours.fourcc as u32, theirs.fourcc);
            let planes: Vec<_> = ours.planes.iter().map(|p| p.shared()).collect();
            assert_eq!(planes, theirs.planes.to_vec());
            assert_eq!(ours.mode.is_yuv(), theirs.yuv_bits.is_some());
            assert_eq!(theirs.yuv_bits.unwrap_or(8), ours.mode.yuv_bits());
        }
    }
}
