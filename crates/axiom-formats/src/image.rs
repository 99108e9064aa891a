//! Images, test patterns and the byte layouts of wl_shm formats.

/// A colour as straight 8-bit R, G, B, A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgba(pub u8, pub u8, pub u8, pub u8);

impl Rgba {
    pub const fn opaque(r: u8, g: u8, b: u8) -> Self {
        Self(r, g, b, 255)
    }

    /// Largest per-channel difference from `other`, ignoring alpha.
    pub fn distance(self, other: Rgba) -> u8 {
        [self.0.abs_diff(other.0), self.1.abs_diff(other.1), self.2.abs_diff(other.2)].into_iter().max().unwrap_or(0)
    }
}

/// An RGBA image, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<Rgba>,
}

impl Image {
    pub fn new(width: u32, height: u32, f: impl Fn(u32, u32) -> Rgba) -> Self {
        let pixels = (0..height).flat_map(|y| (0..width).map(move |x| (x, y))).map(|(x, y)| f(x, y)).collect();
        Self { width, height, pixels }
    }

    /// Opaque pixels from rows of 8-bit R, G, B (and anything after, `channels` bytes
    /// a pixel), `stride` bytes apart: a decoded PNG's. Not generic, so that it runs
    /// as this crate is optimised, not as the caller is.
    pub fn from_rgb_rows(width: u32, height: u32, data: &[u8], stride: usize, channels: usize) -> Self {
        let row = |y: u32| &data[y as usize * stride..][..width as usize * channels];
        let pixels =
            (0..height).flat_map(|y| row(y).chunks_exact(channels).map(|p| Rgba::opaque(p[0], p[1], p[2]))).collect();
        Self { width, height, pixels }
    }

    pub fn solid(width: u32, height: u32, colour: Rgba) -> Self {
        Self::new(width, height, |_, _| colour)
    }

    /// The image with `f` applied to every pixel.
    pub fn map(&self, f: impl Fn(Rgba) -> Rgba) -> Image {
        Image { width: self.width, height: self.height, pixels: self.pixels.iter().map(|&p| f(p)).collect() }
    }

    pub fn pixel(&self, x: u32, y: u32) -> Rgba {
        self.pixels[(y * self.width + x) as usize]
    }

    /// The sub-image at (x, y) of the given size.
    pub fn crop(&self, x: u32, y: u32, width: u32, height: u32) -> Image {
        Image::new(width, height, |cx, cy| self.pixel(x + cx, y + cy))
    }

    /// Turned a quarter clockwise.
    pub fn rotated_clockwise(&self) -> Image {
        Image::new(self.height, self.width, |x, y| self.pixel(y, self.height - 1 - x))
    }

    /// Mirrored left to right.
    pub fn mirrored(&self) -> Image {
        Image::new(self.width, self.height, |x, y| self.pixel(self.width - 1 - x, y))
    }

    /// Each pixel made an `n` x `n` block.
    pub fn enlarged(&self, n: u32) -> Image {
        Image::new(self.width * n, self.height * n, |x, y| self.pixel(x / n, y / n))
    }

    /// Resampled to `width` x `height` as a GPU's bilinear filter does: each pixel's
    /// centre maps back into the image and reads between the four nearest texel
    /// centres, edges clamped; colours are premultiplied, so they mix as they are.
    pub fn bilinear(&self, width: u32, height: u32) -> Image {
        let (sx, sy) = (f64::from(self.width) / f64::from(width), f64::from(self.height) / f64::from(height));
        let texel = |x: f64, y: f64| {
            let x = x.clamp(0.0, f64::from(self.width - 1)) as u32;
            let y = y.clamp(0.0, f64::from(self.height - 1)) as u32;
            let p = self.pixel(x, y);
            [p.0, p.1, p.2, p.3].map(f64::from)
        };
        Image::new(width, height, |x, y| {
            let at = ((f64::from(x) + 0.5) * sx - 0.5, (f64::from(y) + 0.5) * sy - 0.5);
            let [r, g, b, a] = bilinear_at(at, texel).map(|c| c.round() as u8);
            Rgba(r, g, b, a)
        })
    }

    /// Decodes XRGB8888 / ARGB8888 memory (B, G, R, X bytes), alpha forced to 255.
    pub fn from_xrgb8888(width: u32, height: u32, stride: usize, bytes: &[u8]) -> Self {
        Self::new(width, height, |x, y| {
            let at = y as usize * stride + x as usize * 4;
            Rgba::opaque(bytes[at + 2], bytes[at + 1], bytes[at])
        })
    }

    /// Where `self` and `expected` differ by more than `tolerance` in a colour channel:
    /// the first such pixel and how many there are.
    pub fn compare(&self, expected: &Image, tolerance: u8) -> Result<(), String> {
        if (self.width, self.height) != (expected.width, expected.height) {
            return Err(format!(
                "size {}x{} != expected {}x{}",
                self.width, self.height, expected.width, expected.height
            ));
        }
        let mut bad = self
            .pixels
            .iter()
            .zip(&expected.pixels)
            .enumerate()
            .filter(|(_, (got, want))| got.distance(**want) > tolerance);
        match bad.next() {
            None => Ok(()),
            Some((i, (got, want))) => {
                let count = 1 + bad.count();
                let (x, y) = (i as u32 % self.width, i as u32 / self.width);
                Err(format!(
                    "{count} pixels differ by more than {tolerance}; first at ({x},{y}): got {got:?}, want {want:?}"
                ))
            }
        }
    }

    /// R, G, B, A bytes, row after row.
    pub fn rgba_bytes(&self) -> Vec<u8> {
        self.pixels.iter().flat_map(|p| [p.0, p.1, p.2, p.3]).collect()
    }
}

/// The value at `(u, v)` between the four samples around it (sample (i, j) at (i, j),
/// read with `sample`, which clamps), each channel mixed by its distance.
pub fn bilinear_at<const N: usize>((u, v): (f64, f64), sample: impl Fn(f64, f64) -> [f64; N]) -> [f64; N] {
    let (i, j) = (u.floor(), v.floor());
    let (fx, fy) = (u - i, v - j);
    let [a, b, c, d] = [sample(i, j), sample(i + 1.0, j), sample(i, j + 1.0), sample(i + 1.0, j + 1.0)];
    std::array::from_fn(|k| {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bottom = c[k] + (d[k] - c[k]) * fx;
        top + (bottom - top) * fy
    })
}

/// A pattern with distinct values in every channel, so that a channel swap,
/// an off-by-one row or a lost alpha shows up.
pub fn test_pattern(width: u32, height: u32) -> Image {
    Image::new(width, height, |x, y| {
        let r = (x * 255 / width.max(2).saturating_sub(1).max(1)) as u8;
        let g = (y * 255 / height.max(2).saturating_sub(1).max(1)) as u8;
        let b = ((x + y) * 37 % 256) as u8;
        Rgba::opaque(r, g, b)
    })
}

/// The 32-bit RGB wl_shm formats and their byte order in memory (little endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format32 {
    Argb8888,
    Xrgb8888,
    Abgr8888,
    Xbgr8888,
}

impl Format32 {
    pub const ALL: [Format32; 4] = [Format32::Argb8888, Format32::Xrgb8888, Format32::Abgr8888, Format32::Xbgr8888];

    pub fn has_alpha(self) -> bool {
        matches!(self, Format32::Argb8888 | Format32::Abgr8888)
    }

    /// The wl_shm format code (0 and 1 for ARGB8888/XRGB8888, the DRM fourcc otherwise).
    pub fn shm_code(self) -> u32 {
        match self {
            Format32::Argb8888 => 0,
            Format32::Xrgb8888 => 1,
            Format32::Abgr8888 => crate::fourcc::ABGR8888,
            Format32::Xbgr8888 => crate::fourcc::XBGR8888,
        }
    }

    /// Memory bytes of one pixel. `x_byte` fills the unused byte of X formats, so that
    /// a compositor that samples it shows the mistake.
    pub fn encode(self, p: Rgba, x_byte: u8) -> [u8; 4] {
        let a = if self.has_alpha() { p.3 } else { x_byte };
        match self {
            Format32::Argb8888 | Format32::Xrgb8888 => [p.2, p.1, p.0, a],
            Format32::Abgr8888 | Format32::Xbgr8888 => [p.0, p.1, p.2, a],
        }
    }

    /// The image in this format's memory layout with the given stride.
    pub fn encode_image(self, image: &Image, stride: usize, x_byte: u8) -> Vec<u8> {
        let mut bytes = vec![0u8; stride * image.height as usize];
        for y in 0..image.height {
            for x in 0..image.width {
                let at = y as usize * stride + x as usize * 4;
                bytes[at..at + 4].copy_from_slice(&self.encode(image.pixel(x, y), x_byte));
            }
        }
        bytes
    }
}

/// `src` (premultiplied) over an opaque `dst`, as the compositor blends.
pub fn blend_premultiplied(src: Rgba, dst: Rgba) -> Rgba {
    let inv = 255 - u32::from(src.3);
    let c = |s: u8, d: u8| (u32::from(s) + (u32::from(d) * inv + 127) / 255).min(255) as u8;
    Rgba::opaque(c(src.0, dst.0), c(src.1, dst.1), c(src.2, dst.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_matches_values_worked_by_hand() {
        // Two texels, 0 and 255, stretched to four pixels: centres at -0.25, 0.25, 0.75, 1.25 texels.
        let image = Image::new(2, 1, |x, _| if x == 0 { Rgba::opaque(0, 0, 0) } else { Rgba::opaque(255, 255, 255) });
        let grey = |v| Rgba::opaque(v, v, v);
        assert_eq!(image.bilinear(4, 1).pixels, vec![grey(0), grey(64), grey(191), grey(255)]);
        // Halved: each pixel the mean of two texels.
        assert_eq!(image.bilinear(1, 1).pixels, vec![grey(128)]);
    }

    #[test]
    fn a_quarter_turn_clockwise_takes_the_left_column_to_the_top_row() {
        let image = Image::new(3, 2, |x, y| Rgba::opaque(x as u8, y as u8, 0));
        let turned = image.rotated_clockwise();
        assert_eq!((turned.width, turned.height), (2, 3));
        // Top row, left to right: the left column, bottom to top.
        assert_eq!(turned.pixel(0, 0), image.pixel(0, 1));
        assert_eq!(turned.pixel(1, 0), image.pixel(0, 0));
        assert_eq!(image.mirrored().pixel(0, 0), image.pixel(2, 0));
    }
}
