//! Which windows a composed frame does not show: each of their quads lies
//! outside every output (the canvas has parts no output shows where outputs
//! differ in height) or wholly under one opaque quad drawn above it. Their
//! presentation feedback is `discarded`, as wp_presentation asks for content
//! never displayed.

use std::collections::HashSet;
use std::hash::Hash;

use super::damage::Rect;

/// One quad of a frame as occlusion sees it: whose it is, where, and whether
/// every pixel of it is opaque (a format without alpha).
pub struct Quad<K> {
    pub window: K,
    pub area: Rect,
    pub opaque: bool,
}

/// The windows none of whose quads show on any of `outputs` (areas of the
/// canvas); `quads` come bottom first.
pub fn hidden_windows<K: Eq + Hash + Clone>(quads: &[Quad<K>], outputs: &[Rect]) -> HashSet<K> {
    let mut shown = HashSet::new();
    let mut hidden = HashSet::new();
    for (i, quad) in quads.iter().enumerate() {
        let covered = |area: Rect| quads[i + 1..].iter().any(|above| above.opaque && contains(above.area, area));
        let visible =
            outputs.iter().filter_map(|output| quad.area.intersect(*output)).any(|on_output| !covered(on_output));
        if visible {
            hidden.remove(&quad.window);
            shown.insert(quad.window.clone());
        } else if !shown.contains(&quad.window) {
            hidden.insert(quad.window.clone());
        }
    }
    hidden
}

fn contains(outer: Rect, inner: Rect) -> bool {
    outer.x0 <= inner.x0 && outer.y0 <= inner.y0 && outer.x1 >= inner.x1 && outer.y1 >= inner.y1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: i32, y: i32, w: i32, h: i32) -> Rect {
        Rect { x0: x, y0: y, x1: x + w, y1: y + h }
    }

    fn quad(window: u32, x: i32, y: i32, w: i32, h: i32, opaque: bool) -> Quad<u32> {
        Quad { window, area: rect(x, y, w, h), opaque }
    }

    fn hidden_windows(quads: &[Quad<u32>], width: i32, height: i32) -> HashSet<u32> {
        super::hidden_windows(quads, &[rect(0, 0, width, height)])
    }

    #[test]
    fn a_window_under_an_opaque_one_that_covers_it_is_hidden() {
        let quads = [quad(1, 10, 10, 20, 20, true), quad(2, 0, 0, 100, 100, true)];
        assert_eq!(hidden_windows(&quads, 100, 100), HashSet::from([1]));
    }

    #[test]
    fn translucent_or_partial_covers_leave_it_shown() {
        let translucent = [quad(1, 10, 10, 20, 20, true), quad(2, 0, 0, 100, 100, false)];
        assert!(hidden_windows(&translucent, 100, 100).is_empty());
        let partial = [quad(1, 10, 10, 20, 20, true), quad(2, 15, 0, 100, 100, true)];
        assert!(hidden_windows(&partial, 100, 100).is_empty());
    }

    #[test]
    fn one_visible_quad_shows_the_window_whatever_its_order() {
        // Window 1's subsurface pokes out from under window 2; its main quad is covered.
        let quads = [quad(1, 0, 0, 50, 50, true), quad(1, 60, 60, 10, 10, true), quad(2, 0, 0, 55, 55, true)];
        assert!(hidden_windows(&quads, 100, 100).is_empty());
        let reordered = [quad(1, 60, 60, 10, 10, true), quad(1, 0, 0, 50, 50, true), quad(2, 0, 0, 55, 55, true)];
        assert!(hidden_windows(&reordered, 100, 100).is_empty());
    }

    #[test]
    fn a_window_off_the_output_is_hidden_and_the_top_one_never_is() {
        let quads = [quad(1, 200, 0, 20, 20, true), quad(2, 0, 0, 100, 100, true)];
        assert_eq!(hidden_windows(&quads, 100, 100), HashSet::from([1]));
    }

    #[test]
    fn a_window_where_outputs_of_unequal_heights_leave_the_canvas_bare_is_hidden() {
        // A 100x100 output and a 50x40 one beside it: (100..150, 40..100) is on no output.
        let outputs = [rect(0, 0, 100, 100), rect(100, 0, 50, 40)];
        let quads = [quad(1, 110, 50, 20, 20, true), quad(2, 110, 30, 20, 20, true), quad(3, 90, 90, 20, 5, true)];
        assert_eq!(super::hidden_windows(&quads, &outputs), HashSet::from([1]));
        // Covered where it is on an output, bare where it is not: hidden too.
        let covered = [quad(1, 90, 50, 20, 20, true), quad(2, 0, 0, 100, 100, true)];
        assert_eq!(super::hidden_windows(&covered, &outputs), HashSet::from([1]));
    }
}
