//! The cursor's quads, drawn above every window: a client's cursor surface tree,
//! or the compositor's arrow, a small texture made once.

use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::reexports::wayland_server::Resource;

use super::formats::SampleMode;
use super::{DrawItem, DrawUniform, Renderer};
use crate::cursor::CursorImage;
use crate::dmabuf::ImportStats;

/// The arrow, its tip at (0, 0): X black, o white, blank transparent.
const ARROW: [&str; 19] = [
    "X           ",
    "XX          ",
    "XoX         ",
    "XooX        ",
    "XoooX       ",
    "XooooX      ",
    "XoooooX     ",
    "XooooooX    ",
    "XoooooooX   ",
    "XooooooooX  ",
    "XoooooooooX ",
    "XooooooXXXXX",
    "XoooXooX    ",
    "XooXXooX    ",
    "XoX  XooX   ",
    "XX   XooX   ",
    "X     XooX  ",
    "      XooX  ",
    "       XX   ",
];
pub const ARROW_SIZE: (u32, u32) = (ARROW[0].len() as u32, ARROW.len() as u32);

/// The arrow's size on a canvas of `scale` canvas pixels per logical unit.
pub fn arrow_canvas_size(scale: f64) -> smithay::utils::Size<i32, smithay::utils::Physical> {
    let (w, h) = ARROW_SIZE;
    ((f64::from(w) * scale).round() as i32, (f64::from(h) * scale).round() as i32).into()
}

/// The arrow's pixels, premultiplied B, G, R, A (wl_shm ARGB8888).
pub fn arrow_pixels() -> Vec<[u8; 4]> {
    ARROW
        .iter()
        .flat_map(|row| row.bytes())
        .map(|c| match c {
            b'X' => [0, 0, 0, 0xff],
            b'o' => [0xff; 4],
            _ => [0; 4],
        })
        .collect()
}

/// The arrow's texture and the plane bindings that sample it.
pub(super) struct Arrow {
    _texture: wgpu::Texture,
    bind_group: wgpu::BindGroup,
}

impl Arrow {
    pub(super) fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        layout: &wgpu::BindGroupLayout,
        words: Option<&wgpu::Buffer>,
        sampler: &wgpu::Sampler,
    ) -> Self {
        let (width, height) = ARROW_SIZE;
        let size = wgpu::Extent3d { width, height, depth_or_array_layers: 1 };
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("cursor arrow"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Bgra8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let pixels: Vec<u8> = arrow_pixels().concat();
        queue.write_texture(
            texture.as_image_copy(),
            &pixels,
            wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(width * 4), rows_per_image: None },
            size,
        );
        let view = texture.create_view(&Default::default());
        let bind_group = super::plane_bind_group(device, layout, &[view], words, sampler);
        Self { _texture: texture, bind_group }
    }
}

impl Renderer {
    /// The cursor's quads alone (canvas pixels): what a display's cursor plane shows.
    pub fn cursor_items(&self, cursor: &CursorImage, stats: &mut ImportStats) -> Vec<DrawItem> {
        let mut items = Vec::new();
        self.collect_cursor(cursor, &mut items, stats);
        items
    }

    /// Appends the cursor's quads to `items` (above everything before them).
    pub(super) fn collect_cursor(&self, cursor: &CursorImage, items: &mut Vec<DrawItem>, stats: &mut ImportStats) {
        let from = items.len();
        match cursor {
            CursorImage::Surface { surface, origin } => {
                self.collect_surface_tree(surface, &surface.id(), *origin, items, stats);
            }
            CursorImage::Arrow { origin } => {
                let s = self.canvas_scale;
                let (w, h) = ARROW_SIZE;
                // At the canvas scale, as a scale-1 client's cursor surface is, its size
                // the same wherever it is (`Axiom::cursor_shown_on`).
                let (x0, y0) = ((f64::from(origin.x) * s).round(), (f64::from(origin.y) * s).round());
                let size = arrow_canvas_size(s);
                let dst = [x0 as f32, y0 as f32, size.w as f32, size.h as f32];
                let output_size = self.output_size();
                let uniform = DrawUniform {
                    dst,
                    src: [0.0, 0.0, w as f32, 0.0],
                    src_y_axis: [0.0, h as f32, 0.0, 0.0],
                    filter: u32::from(dst[2] != w as f32 || dst[3] != h as f32),
                    output_size: [output_size.w as f32, output_size.h as f32],
                    buffer_size: [w as f32, h as f32],
                    mode: SampleMode::Direct as u32,
                    opaque: 0,
                    // The arrow's texture is BGRA8 (a plain sample draws it: pipelines.rs).
                    plane_kind: [super::buffer_source::TEXTURE_BGRA8, 0, 0, 0],
                    ..bytemuck::Zeroable::zeroed()
                };
                items.push(DrawItem {
                    bind_group: self.arrow.bind_group.clone(),
                    texels: None,
                    uniform,
                    surface: ObjectId::null(),
                    window: ObjectId::null(),
                    content_damage: None,
                    in_place: None,
                    cursor: false,
                });
            }
        }
        for item in &mut items[from..] {
            item.cursor = true;
        }
    }
}
