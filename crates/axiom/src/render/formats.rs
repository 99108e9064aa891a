//! How each wl_shm format is sampled. No format is swizzled on the CPU: the
//! texture format matches the bytes in memory, and the shader fixes the rest
//! (forcing alpha to 1 for X formats, swapping R and B where no texture
//! format has the right order, unpacking 16-bit RGB565).

use smithay::reexports::wayland_server::protocol::wl_shm;

/// How the fragment shader turns a texel into a colour. Must match `shader.wgsl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SampleMode {
    /// The texel is the colour.
    Direct = 0,
    /// The texel's red and blue are swapped (ARGB2101010 stored as RGB10A2).
    SwapRedBlue = 1,
    /// Two bytes of little-endian RGB565 stored as RG8.
    Rgb565 = 2,
    /// Y in plane 0 (R8), interleaved CbCr in plane 1 (RG8) at half resolution.
    Nv12 = 3,
    /// As NV12 with 16-bit little-endian samples (RG8 / RGBA8 texels), 10 bits at the top.
    P010 = 4,
    /// Y, Cb and Cr in three R8 planes, chroma at half resolution.
    Yuv420 = 5,
    /// Packed Y0 Cb Y1 Cr, one RGBA8 texel per two pixels.
    Yuyv = 6,
    /// No texture: the colour in the first YUV row (the background).
    Solid = 7,
    /// No texture: alpha one, nothing else written (over a copied opaque quad: paint.rs).
    OpaqueAlpha = 8,
}

impl SampleMode {
    pub fn is_yuv(self) -> bool {
        matches!(self, SampleMode::Nv12 | SampleMode::P010 | SampleMode::Yuv420 | SampleMode::Yuyv)
    }

    /// Whether chroma is subsampled vertically (4:2:0): a pixel's chroma is interpolated
    /// from the chroma rows of the luma rows around it.
    pub fn is_420(self) -> bool {
        matches!(self, SampleMode::Nv12 | SampleMode::P010 | SampleMode::Yuv420)
    }

    /// Significant bits per YUV sample.
    pub fn yuv_bits(self) -> u32 {
        if self == SampleMode::P010 {
            10
        } else {
            8
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ShmFormat {
    pub shm: wl_shm::Format,
    pub texture: wgpu::TextureFormat,
    pub bytes_per_pixel: u32,
    pub mode: SampleMode,
    /// The format has no alpha channel (X formats): alpha is forced to 1.
    pub opaque: bool,
}

const fn f(
    shm: wl_shm::Format,
    texture: wgpu::TextureFormat,
    bytes_per_pixel: u32,
    mode: SampleMode,
    opaque: bool,
) -> ShmFormat {
    ShmFormat { shm, texture, bytes_per_pixel, mode, opaque }
}

use wgpu::TextureFormat as T;
use wl_shm::Format as S;
use SampleMode::*;

/// Every wl_shm format the renderer samples, advertised on wl_shm.
pub const SHM_FORMATS: &[ShmFormat] = &[
    f(S::Argb8888, T::Bgra8Unorm, 4, Direct, false),
    f(S::Xrgb8888, T::Bgra8Unorm, 4, Direct, true),
    f(S::Abgr8888, T::Rgba8Unorm, 4, Direct, false),
    f(S::Xbgr8888, T::Rgba8Unorm, 4, Direct, true),
    f(S::Abgr2101010, T::Rgb10a2Unorm, 4, Direct, false),
    f(S::Xbgr2101010, T::Rgb10a2Unorm, 4, Direct, true),
    f(S::Argb2101010, T::Rgb10a2Unorm, 4, SwapRedBlue, false),
    f(S::Xrgb2101010, T::Rgb10a2Unorm, 4, SwapRedBlue, true),
    f(S::Abgr16161616f, T::Rgba16Float, 8, Direct, false),
    f(S::Xbgr16161616f, T::Rgba16Float, 8, Direct, true),
    f(S::Rgb565, T::Rg8Unorm, 2, Rgb565, true),
];

pub fn shm_format(format: wl_shm::Format) -> Option<&'static ShmFormat> {
    SHM_FORMATS.iter().find(|f| f.shm == format)
}
