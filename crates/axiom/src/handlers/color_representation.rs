//! wp_color_representation_v1 (staging): a client chooses, per surface, the
//! YCbCr matrix and range of its YUV buffers, and where their chroma samples sit.
//! Without it, BT.601 limited range, chroma at H.273 type 0 (left, between rows:
//! MPEG-2, H.264 and HEVC's default).

use std::sync::Mutex;

use smithay::backend::allocator::Buffer as _;
use smithay::backend::renderer::utils::with_renderer_surface_state;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{
    Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, WEnum, Weak,
};
use smithay::wayland::compositor::{with_states, SurfaceData};
use smithay::wayland::dmabuf::get_dmabuf;
use wayland_protocols::wp::color_representation::v1::server::{
    wp_color_representation_manager_v1::{self as manager, WpColorRepresentationManagerV1},
    wp_color_representation_surface_v1::{
        self as surface_rep, AlphaMode, ChromaLocation, Coefficients, Range, WpColorRepresentationSurfaceV1,
    },
};

use crate::render::formats::SampleMode;
use crate::Axiom;
use axiom_formats::convert::{yuv_to_rgb_coefficients, YuvMatrix, YuvRange};

pub struct ColorRepresentationState;

impl ColorRepresentationState {
    pub fn new(dh: &DisplayHandle) -> Self {
        dh.create_global::<Axiom, WpColorRepresentationManagerV1, ()>(1, ());
        Self
    }
}

const SUPPORTED: [(Coefficients, YuvMatrix); 3] = [
    (Coefficients::Bt601, YuvMatrix::Bt601),
    (Coefficients::Bt709, YuvMatrix::Bt709),
    (Coefficients::Bt2020, YuvMatrix::Bt2020),
];

/// Per-surface state, double-buffered: `pending` becomes `current` on commit.
///
/// The surface and its object refer to each other weakly: a strong handle each way
/// would keep both (and the surface's texture and imports) alive after the client
/// destroys the surface or disconnects.
#[derive(Debug, Default)]
struct SurfaceColorRepresentation {
    /// The surface's wp_color_representation_surface_v1, while it exists.
    object: Option<Weak<WpColorRepresentationSurfaceV1>>,
    pending: Option<(YuvMatrix, YuvRange)>,
    current: Option<(YuvMatrix, YuvRange)>,
    pending_chroma: Option<ChromaLocation>,
    current_chroma: Option<ChromaLocation>,
}

type SurfaceSlot = Mutex<SurfaceColorRepresentation>;

fn with_slot<T>(surface: &WlSurface, f: impl FnOnce(&mut SurfaceColorRepresentation) -> T) -> T {
    with_states(surface, |states| {
        states.data_map.insert_if_missing_threadsafe(SurfaceSlot::default);
        let slot = states.data_map.get::<SurfaceSlot>().expect("inserted just above");
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    })
}

/// Applies the pending colour representation; called from the commit handler after
/// the buffer state is applied. YCbCr coefficients on an RGB buffer are the protocol's
/// `pixel_format` error.
pub fn commit(surface: &WlSurface) {
    let rgb_buffer = with_renderer_surface_state(surface, |state| {
        state.buffer().map(|buffer| {
            let yuv = get_dmabuf(buffer)
                .ok()
                .and_then(|d| crate::dmabuf::formats::dmabuf_format(d.format().code as u32))
                .is_some_and(|f| f.mode.is_yuv());
            !yuv
        })
    })
    .flatten()
    .unwrap_or(false);
    with_states(surface, |states| {
        if let Some(slot) = states.data_map.get::<SurfaceSlot>() {
            let mut rep = slot.lock().unwrap_or_else(|e| e.into_inner());
            rep.current = rep.pending;
            rep.current_chroma = rep.pending_chroma;
            let ycbcr_set = rep.current.is_some() || rep.current_chroma.is_some();
            if let (true, true, Some(Ok(object))) = (ycbcr_set, rgb_buffer, rep.object.as_ref().map(Weak::upgrade)) {
                object.post_error(
                    surface_rep::Error::PixelFormat,
                    "YCbCr coefficients or chroma location set on a surface with an RGB buffer",
                );
            }
        }
    });
}

/// The shader's YUV coefficients for a surface whose texture samples as `mode`.
pub fn coefficients(states: &SurfaceData, mode: SampleMode) -> [[f32; 4]; 3] {
    if !mode.is_yuv() {
        return [[0.0; 4]; 3];
    }
    let (matrix, range) = states
        .data_map
        .get::<SurfaceSlot>()
        .and_then(|slot| slot.lock().ok().and_then(|rep| rep.current))
        .unwrap_or_default();
    yuv_to_rgb_coefficients(matrix, range, mode.yuv_bits()).map(|row| row.map(|c| c as f32))
}

/// Where a surface's 4:2:0 chroma samples sit in their 2x2 block, in pixels from its
/// top-left (H.273 Chroma420SampleLocType); type 0 where the client names none.
pub fn chroma_siting(states: &SurfaceData) -> (f32, f32) {
    let location = states
        .data_map
        .get::<SurfaceSlot>()
        .and_then(|slot| slot.lock().ok().and_then(|rep| rep.current_chroma))
        .unwrap_or(ChromaLocation::Type0);
    match location {
        ChromaLocation::Type1 => (0.5, 0.5),
        ChromaLocation::Type2 => (0.0, 0.0),
        ChromaLocation::Type3 => (0.5, 0.0),
        ChromaLocation::Type4 => (0.0, 1.0),
        ChromaLocation::Type5 => (0.5, 1.0),
        _ => (0.0, 0.5),
    }
}

impl GlobalDispatch<WpColorRepresentationManagerV1, ()> for Axiom {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        resource: New<WpColorRepresentationManagerV1>,
        _: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        let manager = data_init.init(resource, ());
        manager.supported_alpha_mode(AlphaMode::PremultipliedElectrical);
        for (coefficients, _) in SUPPORTED {
            for range in [Range::Full, Range::Limited] {
                manager.supported_coefficients_and_ranges(coefficients, range);
            }
        }
        manager.done();
    }
}

impl Dispatch<WpColorRepresentationManagerV1, ()> for Axiom {
    fn request(
        _: &mut Self,
        _: &Client,
        manager: &WpColorRepresentationManagerV1,
        request: manager::Request,
        _: &(),
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let manager::Request::GetSurface { id, surface } = request {
            if with_slot(&surface, |rep| rep.object.as_ref().is_some_and(Weak::is_alive)) {
                manager
                    .post_error(manager::Error::SurfaceExists, "the surface already has a color representation object");
                return;
            }
            let object = data_init.init(id, surface.downgrade());
            with_slot(&surface, |rep| rep.object = Some(object.downgrade()));
        }
    }
}

impl Dispatch<WpColorRepresentationSurfaceV1, Weak<WlSurface>> for Axiom {
    fn request(
        _: &mut Self,
        _: &Client,
        object: &WpColorRepresentationSurfaceV1,
        request: surface_rep::Request,
        surface: &Weak<WlSurface>,
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
        let surface = surface.upgrade().ok().filter(Resource::is_alive);
        if let surface_rep::Request::Destroy = request {
            if let Some(surface) = surface {
                // Destroying the object unsets its metadata (from the next commit).
                with_slot(&surface, |rep| {
                    rep.object = None;
                    rep.pending = None;
                    rep.pending_chroma = None;
                });
            }
            return;
        }
        let Some(surface) = surface else {
            object.post_error(surface_rep::Error::Inert, "the surface is gone");
            return;
        };
        match request {
            surface_rep::Request::SetAlphaMode { alpha_mode }
                if alpha_mode != WEnum::Value(AlphaMode::PremultipliedElectrical) =>
            {
                object.post_error(surface_rep::Error::AlphaMode, "only premultiplied_electrical is supported");
            }
            surface_rep::Request::SetCoefficientsAndRange { coefficients, range } => {
                let matrix = SUPPORTED.iter().find(|(c, _)| WEnum::Value(*c) == coefficients).map(|(_, m)| *m);
                let range = match range {
                    WEnum::Value(Range::Full) => Some(YuvRange::Full),
                    WEnum::Value(Range::Limited) => Some(YuvRange::Limited),
                    _ => None,
                };
                match (matrix, range) {
                    (Some(matrix), Some(range)) => with_slot(&surface, |rep| rep.pending = Some((matrix, range))),
                    _ => object.post_error(surface_rep::Error::Coefficients, "unsupported coefficients and range"),
                }
            }
            surface_rep::Request::SetChromaLocation { chroma_location } => match chroma_location {
                WEnum::Value(
                    location @ (ChromaLocation::Type0
                    | ChromaLocation::Type1
                    | ChromaLocation::Type2
                    | ChromaLocation::Type3
                    | ChromaLocation::Type4
                    | ChromaLocation::Type5),
                ) => with_slot(&surface, |rep| rep.pending_chroma = Some(location)),
                _ => object.post_error(surface_rep::Error::ChromaLocation, "invalid chroma location"),
            },
            _ => {}
        }
    }
}
