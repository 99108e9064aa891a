//! The DRM formats the renderer can sample from a linux-dmabuf buffer, and the
//! memory layout of each of their planes.
//!
//! Every plane is uploaded (or imported) as a texture of 8-bit normalised (or
//! float) texels whose bytes match the memory exactly; the shader rebuilds
//! 16-bit values, swaps channels, forces alpha and converts YUV, so no byte is
//! rearranged on the CPU.

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
    /// Size of this plane in blocks (texels) for a `width` x `height` buffer.
    pub fn size(&self, width: u32, height: u32) -> (u32, u32) {
        (width.div_ceil(self.block_w), height.div_ceil(self.block_h))
    }

    /// Bytes of one row of blocks.
    pub fn row_bytes(&self, width: u32) -> u64 {
        u64::from(width.div_ceil(self.block_w)) * u64::from(self.bytes_per_block)
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

impl DmabufFormat {
    pub fn is_yuv(&self) -> bool {
        self.mode.is_yuv()
    }
}

const fn plane(block_w: u32, block_h: u32, bytes_per_block: u32, texture: wgpu::TextureFormat) -> PlaneLayout {
    PlaneLayout { block_w, block_h, bytes_per_block, texture }
}

use wgpu::TextureFormat as T;

const BGRA8: &[PlaneLayout] = &[plane(1, 1, 4, T::Bgra8Unorm)];
const RGBA8: &[PlaneLayout] = &[plane(1, 1, 4, T::Rgba8Unorm)];
const RGB10A2: &[PlaneLayout] = &[plane(1, 1, 4, T::Rgb10a2Unorm)];
const RGBA16F: &[PlaneLayout] = &[plane(1, 1, 8, T::Rgba16Float)];
const RG8_16BIT: &[PlaneLayout] = &[plane(1, 1, 2, T::Rg8Unorm)];
// Y plane of one byte per pixel, CbCr plane of two bytes per 2x2 block.
const NV12: &[PlaneLayout] = &[plane(1, 1, 1, T::R8Unorm), plane(2, 2, 2, T::Rg8Unorm)];
// 16-bit little-endian samples (10 significant bits at the top).
const P010_PLANES: &[PlaneLayout] = &[plane(1, 1, 2, T::Rg8Unorm), plane(2, 2, 4, T::Rgba8Unorm)];
const YUV420: &[PlaneLayout] = &[plane(1, 1, 1, T::R8Unorm), plane(2, 2, 1, T::R8Unorm), plane(2, 2, 1, T::R8Unorm)];
// Y0 Cb Y1 Cr: one texel per two pixels.
const YUYV: &[PlaneLayout] = &[plane(2, 1, 4, T::Rgba8Unorm)];

const fn f(fourcc: Fourcc, planes: &'static [PlaneLayout], mode: SampleMode, opaque: bool) -> DmabufFormat {
    DmabufFormat { fourcc, planes, mode, opaque }
}

use SampleMode::*;

/// Every format the import ladder knows. Which of them are advertised depends
/// on what the adapter can sample (see `supported_formats`).
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
    fn plane_sizes_round_up_for_odd_dimensions() {
        let nv12 = dmabuf_format(Fourcc::Nv12 as u32).unwrap();
        assert_eq!(nv12.planes[0].size(33, 17), (33, 17));
        assert_eq!(nv12.planes[1].size(33, 17), (17, 9));
        assert_eq!(nv12.planes[1].row_bytes(33), 34);
        let yuyv = dmabuf_format(Fourcc::Yuyv as u32).unwrap();
        assert_eq!(yuyv.planes[0].row_bytes(33), 68);
        let p010 = dmabuf_format(Fourcc::P010 as u32).unwrap();
        assert_eq!(p010.planes[1].row_bytes(33), 68);
    }

    #[test]
    fn every_fourcc_is_listed_once() {
        for (i, a) in DMABUF_FORMATS.iter().enumerate() {
            assert!(DMABUF_FORMATS[i + 1..].iter().all(|b| b.fourcc != a.fourcc), "{:?} twice", a.fourcc);
        }
    }
}
