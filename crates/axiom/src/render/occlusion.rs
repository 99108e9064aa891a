//! Which windows a composed frame does not show: each of their quads lies
//! outside the output or wholly under one opaque quad drawn above it. Their
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

/// The windows none of whose quads show in a `width` x `height` output;
/// `quads` come bottom first.
pub fn hidden_windows<K: Eq + Hash + Clone>(quads: &[Quad<K>], width: i32, height: i32) -> HashSet<K> {
    let mut shown = HashSet::new();
    let mut hidden = HashSet::new();
    for (i, quad) in quads.iter().enumerate() {
        let visible = quad
            .area
            .clamp(width, height)
            .is_some_and(|area| !quads[i + 1..].iter().any(|above| above.opaque && contains(above.area, area)));
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

    fn quad(window: u32, x: i32, y: i32, w: i32, h: i32, opaque: bool) -> Quad<u32> {
        Quad { window, area: Rect { x0: x, y0: y, x1: x + w, y1: y + h }, opaque }
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
}
