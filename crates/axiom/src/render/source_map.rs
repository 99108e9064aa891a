//! Where each pixel of a surface's quad reads its buffer: the viewport's crop, the
//! buffer transform and scale, and linux-dmabuf's y-invert, folded into one affine
//! map the shader applies (`pixel = origin + t.x * x_axis + t.y * y_axis`, t the
//! position in the quad from 0 to 1).

use smithay::utils::{Logical, Rectangle, Size, Transform};

/// The buffer point (before the buffer scale) showing point `(x, y)` of a surface of
/// `size` (after the transform). The client applied `transform` to its content (the
/// rotations counter-clockwise, flips first, as wl_output.transform says); the
/// compositor undoes it. The same table as weston's `weston_transformed_coord`.
/// (smithay's `Point::to_buffer` turns 90 and 270 the other way round.)
pub fn surface_to_buffer(transform: Transform, size: Size<f64, Logical>, (x, y): (f64, f64)) -> (f64, f64) {
    let (w, h) = (size.w, size.h);
    match transform {
        Transform::Normal => (x, y),
        Transform::_90 => (y, w - x),
        Transform::_180 => (w - x, h - y),
        Transform::_270 => (h - y, x),
        Transform::Flipped => (w - x, y),
        Transform::Flipped90 => (y, x),
        Transform::Flipped180 => (x, h - y),
        Transform::Flipped270 => (h - y, w - x),
    }
}

/// A quad's affine map into its buffer's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceMap {
    pub origin: [f32; 2],
    pub x_axis: [f32; 2],
    pub y_axis: [f32; 2],
}

/// How a surface's buffer is shown: its viewport crop `src` (surface coordinates),
/// the surface's size before the viewport, the buffer's transform and scale, and,
/// for a y-inverted dma-buf, the buffer's height in pixels.
pub struct BufferView {
    pub src: Rectangle<f64, Logical>,
    pub surface_size: Size<f64, Logical>,
    pub transform: Transform,
    pub scale: f64,
    pub y_inverted_height: Option<f64>,
}

impl SourceMap {
    pub fn new(view: &BufferView) -> Self {
        let corner = |tx: f64, ty: f64| {
            let at = (view.src.loc.x + tx * view.src.size.w, view.src.loc.y + ty * view.src.size.h);
            let (x, y) = surface_to_buffer(view.transform, view.surface_size, at);
            let (x, y) = (x * view.scale, y * view.scale);
            // Rows are stored bottom-up: row r holds the image's row height - r.
            let y = view.y_inverted_height.map_or(y, |height| height - y);
            [x, y]
        };
        let (o, x, y) = (corner(0.0, 0.0), corner(1.0, 0.0), corner(0.0, 1.0));
        Self {
            origin: [o[0] as f32, o[1] as f32],
            x_axis: [(x[0] - o[0]) as f32, (x[1] - o[1]) as f32],
            y_axis: [(y[0] - o[0]) as f32, (y[1] - o[1]) as f32],
        }
    }

    /// Whether the quad's rows stay the buffer's rows (no quarter turn).
    pub fn keeps_rows(&self) -> bool {
        self.x_axis[1] == 0.0 && self.y_axis[0] == 0.0
    }

    /// Whether each pixel of a quad at `dst` (x, y, width, height in output pixels)
    /// shows exactly one texel: on whole pixels, one texel a pixel. Such a quad is
    /// sampled at the texel, exactly; any other is filtered.
    pub fn is_texel_exact(&self, dst: [f32; 4]) -> bool {
        let whole = |v: f32| v.fract() == 0.0;
        let (x_len, y_len) = match self.keeps_rows() {
            true => (self.x_axis[0].abs(), self.y_axis[1].abs()),
            false if self.x_axis[0] == 0.0 && self.y_axis[1] == 0.0 => (self.x_axis[1].abs(), self.y_axis[0].abs()),
            false => return false,
        };
        x_len == dst[2] && y_len == dst[3] && [dst[0], dst[1], self.origin[0], self.origin[1]].into_iter().all(whole)
    }

    /// As the shader's uniform: (origin, x axis) and (y axis, unused).
    pub fn uniform(&self) -> ([f32; 4], [f32; 4]) {
        let [ox, oy] = self.origin;
        let [xx, xy] = self.x_axis;
        let [yx, yy] = self.y_axis;
        ([ox, oy, xx, xy], [yx, yy, 0.0, 0.0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(transform: Transform, src: (f64, f64, f64, f64), size: (f64, f64)) -> BufferView {
        BufferView {
            src: Rectangle::new((src.0, src.1).into(), (src.2, src.3).into()),
            surface_size: size.into(),
            transform,
            scale: 1.0,
            y_inverted_height: None,
        }
    }

    #[test]
    fn a_quarter_turn_reads_columns_and_stays_texel_exact() {
        // A 4x2 buffer turned 90: the surface is 2x4, its top-left shows the buffer's bottom-left.
        let map = SourceMap::new(&view(Transform::_90, (0.0, 0.0, 2.0, 4.0), (2.0, 4.0)));
        assert_eq!(map, SourceMap { origin: [0.0, 2.0], x_axis: [0.0, -2.0], y_axis: [4.0, 0.0] });
        assert!(!map.keeps_rows());
        assert!(map.is_texel_exact([10.0, 10.0, 2.0, 4.0]));
        assert!(!map.is_texel_exact([10.0, 10.0, 3.0, 6.0]), "scaled");
        assert!(!map.is_texel_exact([10.5, 10.0, 2.0, 4.0]), "between pixels");
    }

    #[test]
    fn y_invert_and_scale_apply_in_buffer_pixels() {
        let mut v = view(Transform::Normal, (1.0, 1.0, 2.0, 1.0), (4.0, 2.0));
        v.scale = 2.0;
        v.y_inverted_height = Some(4.0);
        let map = SourceMap::new(&v);
        assert_eq!(map, SourceMap { origin: [2.0, 2.0], x_axis: [4.0, 0.0], y_axis: [0.0, -2.0] });
        assert!(map.keeps_rows());
    }
}
