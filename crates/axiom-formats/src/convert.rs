//! Plain-Rust reference colour conversion. The shader's YUV conversion uses
//! the coefficients computed here ([`yuv_to_rgb_coefficients`]), and tests use
//! [`yuv_to_rgb`] / [`rgb_to_yuv`] to know which pixels to expect.

/// Which YCbCr matrix a buffer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YuvMatrix {
    #[default]
    Bt601,
    Bt709,
    Bt2020,
}

/// Whether samples use the full code range or the limited ("TV") range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YuvRange {
    #[default]
    Limited,
    Full,
}

impl YuvMatrix {
    pub const ALL: [YuvMatrix; 3] = [YuvMatrix::Bt601, YuvMatrix::Bt709, YuvMatrix::Bt2020];

    /// (Kr, Kb) of the matrix.
    fn kr_kb(self) -> (f64, f64) {
        match self {
            YuvMatrix::Bt601 => (0.299, 0.114),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
            YuvMatrix::Bt2020 => (0.2627, 0.0593),
        }
    }
}

/// Scale and offset of luma and chroma code values for `bits`-bit samples:
/// normalised = (code - offset) / scale.
fn range_params(range: YuvRange, bits: u32) -> (f64, f64, f64, f64) {
    let unit = f64::from(1u32 << (bits - 8));
    let max = f64::from((1u32 << bits) - 1);
    let half = f64::from(1u32 << (bits - 1));
    match range {
        YuvRange::Limited => (16.0 * unit, 219.0 * unit, 128.0 * unit, 224.0 * unit),
        YuvRange::Full => (0.0, max, half, max),
    }
}

/// A 3x4 matrix taking (Y, Cb, Cr, 1) code values to normalised R, G, B.
pub fn yuv_to_rgb_coefficients(matrix: YuvMatrix, range: YuvRange, bits: u32) -> [[f64; 4]; 3] {
    let (kr, kb) = matrix.kr_kb();
    let kg = 1.0 - kr - kb;
    let (y_off, y_scale, c_off, c_scale) = range_params(range, bits);
    // Normalised: Y' in [0,1], Pb/Pr in [-0.5, 0.5].
    // R = Y' + 2(1-Kr) Pr ; B = Y' + 2(1-Kb) Pb ; G = (Y' - Kr R - Kb B) / Kg.
    let rv = 2.0 * (1.0 - kr);
    let bu = 2.0 * (1.0 - kb);
    let gu = -kb * bu / kg;
    let gv = -kr * rv / kg;
    let ys = 1.0 / y_scale;
    let cs = 1.0 / c_scale;
    let row = |u: f64, v: f64| [ys, u * cs, v * cs, -y_off * ys - (u + v) * c_off * cs];
    [row(0.0, rv), row(gu, gv), row(bu, 0.0)]
}

fn to_u8(x: f64) -> u8 {
    (x.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Converts one YCbCr sample (code values of `bits` bits) to 8-bit RGB.
pub fn yuv_to_rgb(y: u16, cb: u16, cr: u16, matrix: YuvMatrix, range: YuvRange, bits: u32) -> [u8; 3] {
    ycbcr_to_rgb([y, cb, cr].map(f64::from), matrix, range, bits)
}

/// As `yuv_to_rgb`, for code values between integers (interpolated chroma).
pub fn ycbcr_to_rgb(ycbcr: [f64; 3], matrix: YuvMatrix, range: YuvRange, bits: u32) -> [u8; 3] {
    let m = yuv_to_rgb_coefficients(matrix, range, bits);
    let v = [ycbcr[0], ycbcr[1], ycbcr[2], 1.0];
    m.map(|row| to_u8(row.iter().zip(v).map(|(a, b)| a * b).sum()))
}

/// Converts 8-bit RGB to YCbCr code values of `bits` bits (rounded).
pub fn rgb_to_yuv(rgb: [u8; 3], matrix: YuvMatrix, range: YuvRange, bits: u32) -> [u16; 3] {
    let (kr, kb) = matrix.kr_kb();
    let kg = 1.0 - kr - kb;
    let [r, g, b] = rgb.map(|c| f64::from(c) / 255.0);
    let y = kr * r + kg * g + kb * b;
    let pb = (b - y) / (2.0 * (1.0 - kb));
    let pr = (r - y) / (2.0 * (1.0 - kr));
    let (y_off, y_scale, c_off, c_scale) = range_params(range, bits);
    let max = f64::from((1u32 << bits) - 1);
    let code = |x: f64| x.round().clamp(0.0, max) as u16;
    [code(y_off + y * y_scale), code(c_off + pb * c_scale), code(c_off + pr * c_scale)]
}

/// An 8-bit RGB colour and its YCbCr code values.
pub type ColourCodes = ([u8; 3], [u16; 3]);

/// 8-bit YCbCr code values of white, black and the saturated primaries, worked by
/// hand from the ITU-R definitions (BT.601, BT.709, BT.2020 Kr/Kb; limited range:
/// Y = 16 + 219 Y', C = 128 + 224 P; full range: Y = 255 Y', C = 128 + 255 P,
/// clamped to 255), not by this module: the reference the converter and the
/// compositor's shader are both checked against. BT.601 limited matches the classic
/// colour-bar tables (red 81/90/240), full range JPEG's (red 76/85/255), BT.709
/// limited the HD bars (red 63/102/240).
pub const ITU_PRIMARIES: [(YuvMatrix, YuvRange, [ColourCodes; 5]); 6] = {
    const W: [u8; 3] = [255, 255, 255];
    const K: [u8; 3] = [0, 0, 0];
    const R: [u8; 3] = [255, 0, 0];
    const G: [u8; 3] = [0, 255, 0];
    const B: [u8; 3] = [0, 0, 255];
    use YuvMatrix::*;
    use YuvRange::*;
    [
        (
            Bt601,
            Limited,
            [(W, [235, 128, 128]), (K, [16, 128, 128]), (R, [81, 90, 240]), (G, [145, 54, 34]), (B, [41, 240, 110])],
        ),
        (
            Bt601,
            Full,
            [(W, [255, 128, 128]), (K, [0, 128, 128]), (R, [76, 85, 255]), (G, [150, 44, 21]), (B, [29, 255, 107])],
        ),
        (
            Bt709,
            Limited,
            [(W, [235, 128, 128]), (K, [16, 128, 128]), (R, [63, 102, 240]), (G, [173, 42, 26]), (B, [32, 240, 118])],
        ),
        (
            Bt709,
            Full,
            [(W, [255, 128, 128]), (K, [0, 128, 128]), (R, [54, 99, 255]), (G, [182, 30, 12]), (B, [18, 255, 116])],
        ),
        (
            Bt2020,
            Limited,
            [(W, [235, 128, 128]), (K, [16, 128, 128]), (R, [74, 97, 240]), (G, [164, 47, 25]), (B, [29, 240, 119])],
        ),
        (
            Bt2020,
            Full,
            [(W, [255, 128, 128]), (K, [0, 128, 128]), (R, [67, 92, 255]), (G, [173, 36, 11]), (B, [15, 255, 118])],
        ),
    ]
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bt601_limited_values() {
        // Reference values of the BT.601 limited-range definition.
        assert_eq!(rgb_to_yuv([0, 0, 0], YuvMatrix::Bt601, YuvRange::Limited, 8), [16, 128, 128]);
        assert_eq!(rgb_to_yuv([255, 255, 255], YuvMatrix::Bt601, YuvRange::Limited, 8), [235, 128, 128]);
        assert_eq!(rgb_to_yuv([255, 0, 0], YuvMatrix::Bt601, YuvRange::Limited, 8), [81, 90, 240]);
        assert_eq!(yuv_to_rgb(235, 128, 128, YuvMatrix::Bt601, YuvRange::Limited, 8), [255, 255, 255]);
        assert_eq!(yuv_to_rgb(16, 128, 128, YuvMatrix::Bt601, YuvRange::Limited, 8), [0, 0, 0]);
        assert_eq!(rgb_to_yuv([255, 255, 255], YuvMatrix::Bt709, YuvRange::Limited, 10), [940, 512, 512]);
        assert_eq!(rgb_to_yuv([255, 255, 255], YuvMatrix::Bt709, YuvRange::Full, 8), [255, 128, 128]);
    }

    #[test]
    fn the_converter_gives_the_itu_values_worked_by_hand() {
        for (matrix, range, colours) in ITU_PRIMARIES {
            for (rgb, ycbcr) in colours {
                assert_eq!(rgb_to_yuv(rgb, matrix, range, 8), ycbcr, "{matrix:?} {range:?} {rgb:?}");
                let [y, cb, cr] = ycbcr;
                let back = yuv_to_rgb(y, cb, cr, matrix, range, 8);
                assert!(
                    back.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 2),
                    "{matrix:?} {range:?} {ycbcr:?} -> {back:?}"
                );
            }
        }
    }

    #[test]
    fn round_trips_stay_within_two_codes() {
        for matrix in YuvMatrix::ALL {
            for range in [YuvRange::Limited, YuvRange::Full] {
                for bits in [8, 10] {
                    for rgb in [[0, 0, 0], [255, 255, 255], [200, 30, 90], [12, 240, 3], [128, 128, 128]] {
                        let [y, u, v] = rgb_to_yuv(rgb, matrix, range, bits);
                        let back = yuv_to_rgb(y, u, v, matrix, range, bits);
                        for c in 0..3 {
                            assert!(back[c].abs_diff(rgb[c]) <= 2, "{matrix:?} {range:?} {bits}: {rgb:?} -> {back:?}");
                        }
                    }
                }
            }
        }
    }
}
