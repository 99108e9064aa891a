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
        let r = Rect { x0: self.x0.max(0), y0: self.y0.max(0), x1: self.x1.min(width), y1: self.y1.min(height) };
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
    pub uniform: DrawUniform,
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
        DrawKey { surface: ObjectId::null(), uniform: DrawUniform { dst, ..DrawUniform::zeroed() } }
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
