//! DRM fourcc codes of the formats Axiom knows (drm_fourcc.h).

const fn code(s: &[u8; 4]) -> u32 {
    (s[0] as u32) | ((s[1] as u32) << 8) | ((s[2] as u32) << 16) | ((s[3] as u32) << 24)
}

pub const ARGB8888: u32 = code(b"AR24");
pub const XRGB8888: u32 = code(b"XR24");
pub const ABGR8888: u32 = code(b"AB24");
pub const XBGR8888: u32 = code(b"XB24");
pub const RGB565: u32 = code(b"RG16");
pub const ARGB2101010: u32 = code(b"AR30");
pub const XRGB2101010: u32 = code(b"XR30");
pub const ABGR2101010: u32 = code(b"AB30");
pub const XBGR2101010: u32 = code(b"XB30");
pub const ABGR16161616F: u32 = code(b"AB4H");
pub const XBGR16161616F: u32 = code(b"XB4H");
pub const NV12: u32 = code(b"NV12");
pub const P010: u32 = code(b"P010");
pub const YUV420: u32 = code(b"YU12");
pub const YUYV: u32 = code(b"YUYV");

/// "XR24"-style name of a fourcc.
pub fn name(fourcc: u32) -> String {
    fourcc.to_le_bytes().iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '?' }).collect()
}
