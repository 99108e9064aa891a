//! Where each output is on the canvas the renderer composes. Outputs sit left
//! to right, top-aligned, in the order the backend lists them; the first is the
//! primary output: new windows open on it, and only it shows client buffers on
//! its planes. Every backend but DRM has one output, and its area is the canvas.

use std::sync::atomic::{AtomicU64, Ordering};

use smithay::desktop::Window;
use smithay::output::Output;
use smithay::utils::{Logical, Physical, Point, Rectangle, Size};

use crate::render::damage::Rect;
use crate::shell::placement;
use crate::Axiom;

/// Each output's place on the canvas, left to right from x = 0; and the canvas size.
pub fn side_by_side(sizes: &[Size<i32, Logical>]) -> (Vec<Point<i32, Logical>>, Size<i32, Logical>) {
    let mut x = 0;
    let mut places = Vec::with_capacity(sizes.len());
    for size in sizes {
        places.push((x, 0).into());
        x += size.w;
    }
    let height = sizes.iter().map(|s| s.h).max().unwrap_or(0);
    (places, (x, height).into())
}

/// Frames an output has shown (KMS: flips completed), kept with the output.
#[derive(Default)]
struct FramesShown(AtomicU64);

/// Counts a frame `output` has shown.
pub fn count_frame(output: &Output) {
    output.user_data().insert_if_missing_threadsafe(FramesShown::default);
    if let Some(frames) = output.user_data().get::<FramesShown>() {
        frames.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The frames `output` has shown.
pub fn frames_shown(output: &Output) -> u64 {
    output.user_data().get::<FramesShown>().map_or(0, |frames| frames.0.load(Ordering::Relaxed))
}

impl Axiom {
    /// The part of the canvas `output` shows; None once it is gone.
    pub fn output_area(&self, output: &Output) -> Option<Rectangle<i32, Logical>> {
        self.space.output_geometry(output)
    }

    /// The pixels of the canvas `output` shows: from its place times the canvas
    /// scale, as large as its mode; None once it is gone.
    pub fn canvas_area(&self, output: &Output) -> Option<Rectangle<i32, Physical>> {
        let origin = self.output_area(output)?.loc.to_f64().to_physical(self.renderer.canvas_scale).to_i32_round();
        Some(Rectangle::new(origin, output.current_mode()?.size))
    }

    /// Each output's `canvas_area`, as the renderer's rectangles.
    pub fn output_canvas_rects(&self) -> Vec<Rect> {
        let areas = self.space.outputs().filter_map(|output| self.canvas_area(output));
        areas.map(|a| Rect { x0: a.loc.x, y0: a.loc.y, x1: a.loc.x + a.size.w, y1: a.loc.y + a.size.h }).collect()
    }

    /// The primary output's area (the whole canvas where it is the only output).
    pub fn primary_area(&self) -> Rectangle<i32, Logical> {
        self.output_area(&self.output).unwrap_or_else(|| Rectangle::from_size(self.output_size()))
    }

    /// The output holding a window's centre; None where no output shows it.
    pub fn output_under_centre(&self, window: &Window) -> Option<Output> {
        let geometry = self.space.element_geometry(window)?;
        let centre = geometry.loc + geometry.size.downscale(2).to_point();
        self.space.output_under(centre.to_f64()).next().cloned()
    }

    /// The output a window is on: the one holding its centre, else the primary one.
    pub fn output_of(&self, window: &Window) -> Output {
        self.output_under_centre(window).unwrap_or_else(|| self.output.clone())
    }

    /// Where a new window of `size` opens: centred on the primary output.
    pub fn new_window_location(&self, size: Size<i32, Logical>) -> Point<i32, Logical> {
        let area = self.primary_area();
        area.loc + placement::centred(area.size, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_sit_left_to_right_on_a_canvas_as_tall_as_the_tallest() {
        let (places, canvas) = side_by_side(&[(1024, 768).into(), (800, 600).into(), (640, 1024).into()]);
        assert_eq!(places, vec![(0, 0).into(), (1024, 0).into(), (1824, 0).into()]);
        assert_eq!(canvas, (2464, 1024).into());
        assert_eq!(side_by_side(&[]).1, (0, 0).into());
    }
}
