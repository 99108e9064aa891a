//! Validation of `zwp_linux_buffer_params_v1` before any byte is read: the
//! protocol's own errors, and plane bounds checked with overflow-safe
//! arithmetic against each fd's real size, for every plane including
//! subsampled chroma planes.

use super::formats::{dmabuf_format, DmabufFormat};

pub const MAX_PLANES: usize = 4;
/// DRM_FORMAT_MOD_LINEAR.
pub const MODIFIER_LINEAR: u64 = 0;

/// What the client sent with `add` for one plane (the fd is kept elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneParams {
    pub offset: u32,
    pub stride: u32,
    pub modifier: u64,
}

/// Why a buffer cannot be created. The first five are protocol errors
/// (`zwp_linux_buffer_params_v1.error`); `Unsupported` is answered with
/// `failed` (create) or `invalid_wl_buffer` (create_immed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsError {
    Incomplete(String),
    InvalidFormat(String),
    InvalidDimensions(String),
    OutOfBounds(String),
    Unsupported(String),
}

impl std::fmt::Display for ParamsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ParamsError::Incomplete(m)
        | ParamsError::InvalidFormat(m)
        | ParamsError::InvalidDimensions(m)
        | ParamsError::OutOfBounds(m)
        | ParamsError::Unsupported(m)) = self;
        f.write_str(m)
    }
}

/// A buffer that passed validation.
#[derive(Debug, Clone, Copy)]
pub struct ValidBuffer {
    pub format: &'static DmabufFormat,
    pub width: u32,
    pub height: u32,
    pub modifier: u64,
    /// Bytes the planes span (stride × rows, summed): what the buffer is charged.
    pub bytes: u64,
}

/// Checks a complete set of params. `is_advertised(fourcc, modifier)` says
/// whether the pair is in our format table; `fd_size(plane)` gives the size
/// of a plane's fd (None if it cannot be known, e.g. a pipe).
pub fn validate(
    planes: &[Option<PlaneParams>; MAX_PLANES],
    width: i32,
    height: i32,
    fourcc: u32,
    is_advertised: impl Fn(u32, u64) -> bool,
    fd_size: impl Fn(usize) -> Option<u64>,
    max_dimension: u32,
) -> Result<ValidBuffer, ParamsError> {
    let format = dmabuf_format(fourcc)
        .ok_or_else(|| ParamsError::InvalidFormat(format!("format 0x{fourcc:08x} is not supported")))?;
    let count = format.planes.len();
    let given = planes.iter().filter(|p| p.is_some()).count();
    if planes[..count].iter().any(Option::is_none) || given != count {
        return Err(ParamsError::Incomplete(format!(
            "format 0x{fourcc:08x} needs planes 0..{count}, got {given} plane(s)"
        )));
    }
    let modifier = planes[0].map(|p| p.modifier).unwrap_or(MODIFIER_LINEAR);
    if planes.iter().flatten().any(|p| p.modifier != modifier) {
        return Err(ParamsError::InvalidFormat("planes have different modifiers".into()));
    }
    if !is_advertised(fourcc, modifier) {
        return Err(ParamsError::InvalidFormat(format!(
            "format 0x{fourcc:08x} with modifier 0x{modifier:016x} is not advertised"
        )));
    }
    if width <= 0 || height <= 0 {
        return Err(ParamsError::InvalidDimensions(format!("invalid size {width}x{height}")));
    }
    let (width, height) = (width as u32, height as u32);

    let mut bytes = 0u64;
    for (index, (layout, params)) in format.planes.iter().zip(planes.iter().flatten()).enumerate() {
        let (_, plane_height) = layout.size(width, height);
        let end = u64::from(params.stride)
            .checked_mul(u64::from(plane_height))
            .and_then(|n| n.checked_add(u64::from(params.offset)))
            .ok_or_else(|| ParamsError::OutOfBounds(format!("plane {index}: offset + stride * height overflows")))?;
        let size = fd_size(index)
            .ok_or_else(|| ParamsError::Unsupported(format!("plane {index}: the fd has no size (not a buffer)")))?;
        if end > size {
            return Err(ParamsError::OutOfBounds(format!(
                "plane {index}: offset {} + stride {} * {plane_height} rows = {end} > fd size {size}",
                params.offset, params.stride
            )));
        }
        if u64::from(params.stride) < layout.row_bytes(width) {
            return Err(ParamsError::Unsupported(format!(
                "plane {index}: stride {} is smaller than a row ({} bytes)",
                params.stride,
                layout.row_bytes(width)
            )));
        }
        // Cannot overflow: each span is below its fd's size, and there are at most four.
        bytes = bytes.saturating_add(end - u64::from(params.offset));
    }
    if width > max_dimension || height > max_dimension {
        return Err(ParamsError::Unsupported(format!(
            "{width}x{height} is larger than the renderer's {max_dimension}x{max_dimension}"
        )));
    }
    Ok(ValidBuffer { format, width, height, modifier, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smithay::backend::allocator::Fourcc;

    const NV12: u32 = Fourcc::Nv12 as u32;
    const XRGB: u32 = Fourcc::Xrgb8888 as u32;

    fn plane(offset: u32, stride: u32) -> Option<PlaneParams> {
        Some(PlaneParams { offset, stride, modifier: MODIFIER_LINEAR })
    }

    fn check(
        planes: [Option<PlaneParams>; 4],
        w: i32,
        h: i32,
        fourcc: u32,
        size: u64,
    ) -> Result<ValidBuffer, ParamsError> {
        validate(&planes, w, h, fourcc, |_, m| m == MODIFIER_LINEAR, |_| Some(size), 16384)
    }

    #[test]
    fn a_tight_nv12_buffer_with_odd_size_is_valid() {
        // 33x17: Y is 33x17, CbCr is 17x9 blocks of 2 bytes.
        let y = 33 * 17;
        let ok = check([plane(0, 33), plane(y, 34), None, None], 33, 17, NV12, u64::from(y + 34 * 9));
        assert!(ok.is_ok(), "{ok:?}");
        // One byte short in the last chroma row: out of bounds.
        let short = check([plane(0, 33), plane(y, 34), None, None], 33, 17, NV12, u64::from(y + 34 * 9 - 1));
        assert!(matches!(short, Err(ParamsError::OutOfBounds(_))), "{short:?}");
    }

    #[test]
    fn protocol_errors_are_the_right_ones() {
        let big = u64::MAX;
        assert!(matches!(
            check([plane(0, 4), None, None, None], 1, 1, 0x1234_5678, big),
            Err(ParamsError::InvalidFormat(_))
        ));
        assert!(matches!(check([plane(0, 33), None, None, None], 33, 17, NV12, big), Err(ParamsError::Incomplete(_))));
        assert!(matches!(
            check([plane(0, 4), plane(0, 4), None, None], 1, 1, XRGB, big),
            Err(ParamsError::Incomplete(_))
        ));
        assert!(matches!(check([None, plane(0, 4), None, None], 1, 1, XRGB, big), Err(ParamsError::Incomplete(_))));
        assert!(matches!(
            check([plane(0, 4), None, None, None], 0, 1, XRGB, big),
            Err(ParamsError::InvalidDimensions(_))
        ));
        assert!(matches!(
            check([plane(0, 4), None, None, None], 1, -5, XRGB, big),
            Err(ParamsError::InvalidDimensions(_))
        ));
        let tiled = Some(PlaneParams { offset: 0, stride: 4, modifier: 0x0100_0000_0000_0001 });
        assert!(matches!(check([tiled, None, None, None], 1, 1, XRGB, big), Err(ParamsError::InvalidFormat(_))));
    }

    #[test]
    fn overflowing_values_never_pass() {
        let r = check([plane(u32::MAX, u32::MAX), None, None, None], i32::MAX, i32::MAX, XRGB, u64::MAX);
        assert!(r.is_err());
        let r = check([plane(u32::MAX, 4), None, None, None], 1, 1, XRGB, 4096);
        assert!(matches!(r, Err(ParamsError::OutOfBounds(_))), "{r:?}");
        let r = check([plane(0, u32::MAX), None, None, None], 1, 2, XRGB, 4096);
        assert!(matches!(r, Err(ParamsError::OutOfBounds(_))), "{r:?}");
    }

    #[test]
    fn unknowable_sizes_small_strides_and_huge_sizes_fail_softly() {
        let pipe = validate(&[plane(0, 4), None, None, None], 1, 1, XRGB, |_, _| true, |_| None, 16384);
        assert!(matches!(pipe, Err(ParamsError::Unsupported(_))));
        assert!(matches!(check([plane(0, 3), None, None, None], 1, 1, XRGB, 64), Err(ParamsError::Unsupported(_))));
        assert!(matches!(
            check([plane(0, 4 * 20000), None, None, None], 20000, 1, XRGB, u64::MAX),
            Err(ParamsError::Unsupported(_))
        ));
    }
}
