//! Output damage: which part of the output a frame must repaint, from what
//! moved, appeared, disappeared or got new content since the previous frame.

use smithay::reexports::wayland_server::backend::ObjectId;

use super::DrawUniform;

/// A rectangle in output pixels, [x0, x1) x [y0, y1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Rect {
    pub fn from_xywh(r: [f32; 4]) -> Self {
        let (x, y, w, h) = (r[0], r[1], r[2], r[3]);
        Rect { x0: x.floor() as i32, y0: y.floor() as i32, x1: (x + w).ceil() as i32, y1: (y + h).ceil() as i32 }
    }

    /// The same area as `area` (canvas pixels).
    pub fn of_area(area: smithay::utils::Rectangle<i32, smithay::utils::Physical>) -> Self {
        let (x1, y1) = (area.loc.x.saturating_add(area.size.w), area.loc.y.saturating_add(area.size.h));
        Rect { x0: area.loc.x, y0: area.loc.y, x1, y1 }
    }

    pub fn union(self, other: Rect) -> Rect {
        Rect {
            x0: self.x0.min(other.x0),
            y0: self.y0.min(other.y0),
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
        }
    }

    /// The part inside a `width` x `height` output; None if empty.
    pub fn clamp(self, width: i32, height: i32) -> Option<Rect> {
        self.intersect(Rect { x0: 0, y0: 0, x1: width, y1: height })
    }

    /// The part inside `other`; None if empty.
    pub fn intersect(self, other: Rect) -> Option<Rect> {
        let r = Rect {
            x0: self.x0.max(other.x0),
            y0: self.y0.max(other.y0),
            x1: self.x1.min(other.x1),
            y1: self.y1.min(other.y1),
        };
        (r.x0 < r.x1 && r.y0 < r.y1).then_some(r)
    }
}

fn union(acc: Option<Rect>, r: Rect) -> Option<Rect> {
    Some(acc.map_or(r, |a| a.union(r)))
}

/// What identifies a quad between frames: its surface and where and how it is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawKey {
    pub surface: ObjectId,
    /// The window whose tree or popup the surface is (`DrawItem::window`).
    pub window: ObjectId,
    pub uniform: DrawUniform,
    /// A quad of the cursor (`DrawItem::cursor`), after every window's.
    pub cursor: bool,
}

impl PartialEq for DrawUniform {
    fn eq(&self, other: &Self) -> bool {
        bytemuck::bytes_of(self) == bytemuck::bytes_of(other)
    }
}

/// The damage of a frame drawing `next` (each with the output area whose
/// content changed, if any) after a frame that drew `previous`.
/// Quads are compared position by position: any difference in surface or
/// geometry damages both the old and the new place, which also covers
/// restacking, mapping and unmapping.
pub fn frame_damage(previous: &[DrawKey], next: &[(DrawKey, Option<Rect>)]) -> Option<Rect> {
    let mut damage = None;
    for i in 0..previous.len().max(next.len()) {
        match (previous.get(i), next.get(i)) {
            (Some(old), Some((new, content))) if old == new => {
                if let Some(content) = content {
                    damage = union(damage, *content);
                }
            }
            (old, new) => {
                if let Some(old) = old {
                    damage = union(damage, Rect::from_xywh(old.uniform.dst));
                }
                if let Some((new, _)) = new {
                    damage = union(damage, Rect::from_xywh(new.uniform.dst));
                }
            }
        }
    }
    damage
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytemuck::Zeroable;

    fn key(id: u32, dst: [f32; 4]) -> DrawKey {
        // ObjectIds cannot be made by hand; the null id differs per test only by uniform.
        let _ = id;
        DrawKey {
            surface: ObjectId::null(),
            window: ObjectId::null(),
            uniform: DrawUniform { dst, ..DrawUniform::zeroed() },
            cursor: false,
        }
    }

    #[test]
    fn unchanged_frames_have_no_damage_and_content_damage_is_kept() {
        let a = key(1, [10.0, 10.0, 20.0, 20.0]);
        assert_eq!(frame_damage(std::slice::from_ref(&a), &[(a.clone(), None)]), None);
        let rows = Rect { x0: 10, y0: 15, x1: 30, y1: 17 };
        assert_eq!(frame_damage(std::slice::from_ref(&a), &[(a.clone(), Some(rows))]), Some(rows));
    }

    #[test]
    fn moves_maps_and_unmaps_damage_old_and_new_places() {
        let a = key(1, [10.0, 10.0, 20.0, 20.0]);
        let moved = key(1, [50.0, 0.0, 20.0, 20.0]);
        assert_eq!(
            frame_damage(std::slice::from_ref(&a), &[(moved.clone(), None)]),
            Some(Rect { x0: 10, y0: 0, x1: 70, y1: 30 })
        );
        assert_eq!(frame_damage(&[], &[(a.clone(), None)]), Some(Rect { x0: 10, y0: 10, x1: 30, y1: 30 }));
        assert_eq!(frame_damage(&[a, moved], &[]), Some(Rect { x0: 10, y0: 0, x1: 70, y1: 30 }));
    }

    #[test]
    fn rects_clamp_to_the_output() {
        let r = Rect { x0: -5, y0: -5, x1: 500, y1: 10 };
        assert_eq!(r.clamp(100, 100), Some(Rect { x0: 0, y0: 0, x1: 100, y1: 10 }));
        assert_eq!(Rect { x0: 200, y0: 0, x1: 300, y1: 10 }.clamp(100, 100), None);
    }
}

/// How many entries `History` keeps: beyond that the oldest two are merged, so that a
/// buffer many frames behind (frames composed while its display's flip was pending,
/// or at other outputs' clocks) repaints the union of what changed since, never all
/// of itself for want of knowing.
const KEPT_FRAMES: usize = 8;

/// What the frames up to `last` since the entry before changed, and of that what all
/// but the cursor's quads did.
#[derive(Debug, Clone, Copy)]
struct Change {
    last: u64,
    all: Rect,
    without_cursor: Option<Rect>,
}

/// The canvas damage of its frames since it was last resized, so that a buffer brought
/// up to date some frames ago (its age, in other compositors' words) learns what
/// changed since.
#[derive(Debug, Default)]
pub struct History {
    /// The number of the canvas's newest frame.
    frame: u64,
    /// What the frames since `known_since` changed, oldest first; recent frames each
    /// alone, older ones merged.
    recent: std::collections::VecDeque<Change>,
    /// Frames before this one say nothing of the canvas now (it was resized).
    known_since: u64,
}

impl History {
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// A frame repainted `damage`, of which `without_cursor` leaving the cursor's quads out.
    pub fn record(&mut self, damage: Rect, without_cursor: Option<Rect>) {
        self.frame += 1;
        self.recent.push_back(Change { last: self.frame, all: damage, without_cursor });
        if self.recent.len() > KEPT_FRAMES {
            if let (Some(oldest), Some(next)) = (self.recent.pop_front(), self.recent.front_mut()) {
                next.all = next.all.union(oldest.all);
                next.without_cursor = oldest.without_cursor.into_iter().fold(next.without_cursor, union);
            }
        }
    }

    /// The canvas changed as a whole (resized): what earlier frames did no longer tells.
    pub fn forget(&mut self) {
        self.frame += 1;
        self.recent.clear();
        self.known_since = self.frame;
    }

    /// What changed after frame `shown` (`cursor`: the cursor's quads included), or
    /// more where older frames were merged: None where that is not known (before a
    /// resize, or a frame never made), Some(None) where nothing did.
    pub fn since(&self, shown: u64, cursor: bool) -> Option<Option<Rect>> {
        if shown < self.known_since || shown > self.frame {
            return None;
        }
        let after = self.recent.iter().filter(|change| change.last > shown);
        let changes = after.filter_map(|change| if cursor { Some(change.all) } else { change.without_cursor });
        Some(changes.reduce(Rect::union))
    }
}

#[cfg(test)]
mod history_tests {
    use super::{History, Rect, KEPT_FRAMES};

    fn rect(x0: i32) -> Rect {
        Rect { x0, y0: 0, x1: x0 + 1, y1: 1 }
    }

    #[test]
    fn damage_since_a_frame_is_the_union_of_the_frames_after_it() {
        let mut history = History::default();
        history.record(rect(0), Some(rect(0)));
        history.record(rect(5), None);
        history.record(rect(2), Some(rect(2)));
        assert_eq!(history.since(3, true), Some(None), "nothing after the newest frame");
        assert_eq!(history.since(2, true), Some(Some(rect(2))));
        assert_eq!(history.since(1, true), Some(Some(Rect { x0: 2, y0: 0, x1: 6, y1: 1 })));
        assert_eq!(history.since(0, true), Some(Some(Rect { x0: 0, y0: 0, x1: 6, y1: 1 })));
    }

    #[test]
    fn damage_without_the_cursor_leaves_out_what_only_the_cursor_changed() {
        let mut history = History::default();
        history.record(rect(0), Some(rect(0)));
        history.record(rect(5), None);
        assert_eq!(history.since(1, false), Some(None), "only the cursor moved");
        assert_eq!(history.since(1, true), Some(Some(rect(5))));
        assert_eq!(history.since(0, false), Some(Some(rect(0))));
    }

    #[test]
    fn frames_long_ago_are_merged_and_frames_before_a_resize_unknown() {
        let mut history = History::default();
        for i in 0..KEPT_FRAMES as i32 + 2 {
            let cursor_only = i == 1;
            history.record(rect(i), (!cursor_only).then(|| rect(i)));
        }
        let all = Rect { x0: 0, y0: 0, x1: KEPT_FRAMES as i32 + 2, y1: 1 };
        assert_eq!(history.since(0, true), Some(Some(all)), "frames 1.. merged, still known");
        assert_eq!(history.since(0, false), Some(Some(all)), "frame 1 changed more than the cursor");
        // Frames 1..=3 are merged into one entry: a buffer holding frame 1 repaints it all.
        assert_eq!(history.since(1, true), Some(Some(all)));
        let newest = history.frame();
        assert_eq!(history.since(newest - 1, true), Some(Some(rect(KEPT_FRAMES as i32 + 1))), "recent frames alone");
        history.forget();
        assert_eq!(history.since(newest, true), None, "resized since");
        history.record(rect(0), Some(rect(0)));
        assert_eq!(history.since(history.frame() - 1, true), Some(Some(rect(0))));
        assert_eq!(history.since(history.frame() + 1, false), None, "a frame never made");
    }

    #[test]
    fn a_buffer_many_cursor_motions_behind_repaints_at_most_its_own_frames_change_without_the_cursor() {
        let mut history = History::default();
        history.record(rect(0), Some(rect(0)));
        for i in 0..3 * KEPT_FRAMES as i32 {
            history.record(rect(i), None);
        }
        // Frame 1 is merged with those after it: its own change is repainted again.
        assert_eq!(history.since(1, false), Some(Some(rect(0))));
        let newest = history.frame();
        assert_eq!(history.since(newest - 2, false), Some(None), "only the cursor moved");
        assert!(history.since(1, true).is_some_and(|d| d.is_some()));
    }
}
