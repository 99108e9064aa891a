//! Builds a frame: walks the mapped windows bottom to top, each with its
//! subsurfaces (in their stacking order) and then its popups.

use smithay::backend::renderer::utils::{RendererSurfaceState, RendererSurfaceStateUserData};
use smithay::desktop::{PopupManager, Space, Window};
use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::Resource;
use smithay::utils::{Logical, Point, Size};
use smithay::wayland::compositor::{with_surface_tree_upward, TraversalAction};

use std::collections::HashSet;

use super::damage::Rect;
use super::formats::SampleMode;
use super::occlusion::{self, Quad};
use super::source_map::{BufferView, SourceMap};
use super::texture::{texture_slot, Imported};
use super::{DrawItem, DrawUniform, Renderer};
use crate::cursor::CursorImage;
use crate::dmabuf::ImportStats;
use crate::handlers::color_representation;

impl Renderer {
    /// Imports what changed and returns the quads of the whole output, bottom first,
    /// leaving out the window of `on_plane` (a display plane shows it), the cursor's last.
    pub fn collect_draws(
        &self,
        space: &Space<Window>,
        stats: &mut ImportStats,
        on_plane: Option<&WlSurface>,
        cursor: Option<&CursorImage>,
    ) -> Vec<DrawItem> {
        let mut items = Vec::new();
        for window in space.elements() {
            let Some(location) = space.element_location(window) else { continue };
            // An xdg toplevel, or an X11 window once Xwayland gave it a surface.
            let Some(surface) =
                window.toplevel().map(|t| t.wl_surface().clone()).or_else(|| crate::xwayland::wl_surface_of(window))
            else {
                continue;
            };
            if on_plane == Some(&surface) {
                continue;
            }
            let geometry = window.geometry();
            let surface_origin = location - geometry.loc;
            let window = surface.id();
            self.collect_surface_tree(&surface, &window, surface_origin, &mut items, stats);
            for (popup, popup_offset) in PopupManager::popups_for_surface(&surface) {
                let origin = location + popup_offset - popup.geometry().loc;
                self.collect_surface_tree(popup.wl_surface(), &window, origin, &mut items, stats);
            }
        }
        if let Some(cursor) = cursor {
            self.collect_cursor(cursor, &mut items, stats);
        }
        items
    }

    /// The windows whose quads among `items` all lie off every output (`outputs`,
    /// in canvas pixels) or under an opaque quad above them; `on_top`: a quad a
    /// display plane shows above them all.
    pub fn hidden_windows(
        &self,
        items: &[DrawItem],
        on_top: Option<Quad<ObjectId>>,
        outputs: &[Rect],
    ) -> HashSet<ObjectId> {
        let quads: Vec<Quad<ObjectId>> = items
            .iter()
            .map(|i| Quad {
                window: i.window.clone(),
                area: Rect::from_xywh(i.uniform.dst),
                opaque: i.uniform.opaque == 1,
            })
            .chain(on_top)
            .collect();
        occlusion::hidden_windows(&quads, outputs)
    }

    pub(super) fn collect_surface_tree(
        &self,
        root: &WlSurface,
        window: &ObjectId,
        origin: Point<i32, Logical>,
        items: &mut Vec<DrawItem>,
        stats: &mut ImportStats,
    ) {
        let output_size = self.output_size();
        with_surface_tree_upward(
            root,
            origin,
            |_, states, location| {
                let Some(data) = states.data_map.get::<RendererSurfaceStateUserData>() else {
                    return TraversalAction::SkipChildren;
                };
                let data = data.lock().unwrap_or_else(|e| e.into_inner());
                match data.view() {
                    Some(view) if data.buffer().is_some() => TraversalAction::DoChildren(*location + view.offset),
                    _ => TraversalAction::SkipChildren,
                }
            },
            |surface, states, location| {
                let Some(data) = states.data_map.get::<RendererSurfaceStateUserData>() else { return };
                let data = data.lock().unwrap_or_else(|e| e.into_inner());
                let Some(view) = data.view() else { return };
                let mut slot = texture_slot(states).lock().unwrap_or_else(|e| e.into_inner());
                let uploaded_rows = match self.import_surface(&data, &mut slot, stats) {
                    Imported::Nothing => return,
                    Imported::Unchanged => Vec::new(),
                    Imported::Updated(rows) => rows,
                };
                let Some(texture) = slot.as_ref() else { return };
                let position = *location + view.offset;
                let (bw, bh) = texture.size;
                let view_of_buffer = BufferView {
                    src: view.src,
                    surface_size: data.buffer_size().map_or(view.src.size, |size| size.to_f64()),
                    transform: data.buffer_transform(),
                    scale: f64::from(data.buffer_scale().max(1)),
                    y_inverted_height: texture.y_invert.then_some(f64::from(bh)),
                };
                let map = SourceMap::new(&view_of_buffer);
                let yuv = color_representation::coefficients(states, texture.mode);
                let (chroma_x, chroma_y) = color_representation::chroma_siting(states);
                // Rows stored bottom-up: the siting is measured from the other side of the
                // block (of a last, odd, row's half block).
                let chroma_y = match texture.y_invert {
                    true if bh % 2 == 0 => 1.0 - chroma_y,
                    true => -chroma_y,
                    false => chroma_y,
                };
                let s = self.canvas_scale;
                // On whole output pixels, as smithay's precise rounding does: a fractional
                // scale would otherwise put a quad between pixels, and filter it.
                let (x0, y0) = ((f64::from(position.x) * s).round(), (f64::from(position.y) * s).round());
                // (In f64: a viewport's destination size is the client's, up to i32::MAX.)
                let x1 = ((f64::from(position.x) + f64::from(view.dst.w)) * s).round();
                let y1 = ((f64::from(position.y) + f64::from(view.dst.h)) * s).round();
                let dst = [x0 as f32, y0 as f32, (x1 - x0) as f32, (y1 - y0) as f32];
                let (src, src_y_axis) = map.uniform();
                let uniform = DrawUniform {
                    dst,
                    src,
                    src_y_axis,
                    filter: u32::from(!map.is_texel_exact(dst)),
                    output_size: [output_size.w as f32, output_size.h as f32],
                    buffer_size: [bw as f32, bh as f32],
                    mode: texture.mode as u32,
                    opaque: u32::from(texture.opaque || declared_opaque(&data, view.dst)),
                    yuv,
                    chroma: [chroma_x, chroma_y, 0.0, 0.0],
                    ..texture.source_uniform()
                };
                items.push(DrawItem {
                    in_place: texture.in_place_read(),
                    bind_group: texture.bind_group.clone(),
                    texels: texture.texels(),
                    content_damage: rows_on_output(&uploaded_rows, &map, &uniform, texture.mode),
                    uniform,
                    surface: surface.id(),
                    window: window.clone(),
                    cursor: false,
                });
            },
            |_, _, _| true,
        );
    }
}

/// Whether the client declared all of its surface (`size`, after the viewport) opaque:
/// then its alpha is not read, as weston does, and nothing beneath it is drawn.
fn declared_opaque(data: &RendererSurfaceState, size: Size<i32, Logical>) -> bool {
    // smithay keeps the region as rectangles that do not overlap, inside the surface.
    let area = |w: i32, h: i32| i64::from(w) * i64::from(h);
    data.opaque_regions()
        .is_some_and(|rects| rects.iter().map(|r| area(r.size.w, r.size.h)).sum::<i64>() >= area(size.w, size.h))
}

/// The output area showing buffer rows `rows` (first, count) of a quad: all of it where
/// the quad turns rows into columns; a filtered quad reads a texel beyond each edge, and
/// 4:2:0 chroma of a row reaches two luma rows on each side.
fn rows_on_output(rows: &[(u32, u32)], map: &SourceMap, uniform: &DrawUniform, mode: SampleMode) -> Option<Rect> {
    let [dx, dy, dw, dh] = uniform.dst;
    let (sy, sh) = (map.origin[1], map.y_axis[1]);
    if rows.is_empty() {
        return None;
    }
    if !map.keeps_rows() || sh == 0.0 {
        return Some(Rect::from_xywh(uniform.dst));
    }
    let margin = uniform.filter as f32 + if mode.is_420() { 2.0 } else { 0.0 };
    let to_output = |row: f32| dy + (row - sy) / sh * dh;
    rows.iter()
        .map(|&(first, count)| {
            let (a, b) = (to_output(first as f32 - margin), to_output((first + count) as f32 + margin));
            let (top, bottom) = (a.min(b).max(dy), a.max(b).min(dy + dh));
            Rect::from_xywh([dx, top, dw, (bottom - top).max(0.0)])
        })
        .reduce(Rect::union)
}
