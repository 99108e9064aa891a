//! Backends drive outputs: each shows the composed frames somewhere (off screen,
//! a window, KMS) and feeds its input. The compositor state holds a `Backend`
//! and asks it what depends on where frames go; `serve.rs` is what every
//! backend shares, and the repaint clock (`vblank.rs`) decides when to repaint.

pub mod drm;
pub mod headless;
pub mod repaint;
pub mod serve;
pub mod vblank;
pub mod winit;

use smithay::desktop::utils::OutputPresentationFeedback;
use smithay::output::Output;

pub use drm::Captured;

use crate::handlers::frame_pacing::FifoBarriers;
use crate::Axiom;

/// Where the outputs' frames go.
#[derive(Default)]
pub enum Backend {
    /// Off screen: each output is shown at its own clock's tick.
    #[default]
    Headless,
    /// A window of the desktop (winit): the renderer presents each frame into it.
    Winit,
    /// KMS connectors of one device; None while there is no device to drive (it
    /// went away, or none was found yet): outputs then tick as headless ones do.
    Drm(Option<Box<drm::Kms>>),
}

impl Backend {
    /// The KMS device being driven, if any.
    pub fn kms(&self) -> Option<&drm::Kms> {
        match self {
            Backend::Drm(kms) => kms.as_deref(),
            _ => None,
        }
    }

    pub fn kms_mut(&mut self) -> Option<&mut drm::Kms> {
        match self {
            Backend::Drm(kms) => kms.as_deref_mut(),
            _ => None,
        }
    }

    /// Stops driving the KMS device, and hands it over.
    pub fn take_kms(&mut self) -> Option<drm::Kms> {
        match self {
            Backend::Drm(kms) => kms.take().map(|kms| *kms),
            _ => None,
        }
    }

    /// Whether a display shows frames at flips it reports (their feedback waits for the flip).
    pub fn flips(&self) -> bool {
        self.kms().is_some()
    }
}

/// What the primary output's planes show with a composed frame (KMS): a client
/// buffer on an overlay plane, or one on the primary plane (`direct`), and the cursor
/// for cursor planes.
pub struct FramePlanes<'a> {
    pub overlay: Option<drm::Overlay>,
    pub direct: bool,
    pub cursor: Option<&'a drm::PlaneCursor>,
}

/// What a frame composed at one clock's tick changed, for the outputs other clocks
/// pace: the scene's `damage` (canvas pixels), and whether what the primary output's
/// planes show may have (a client committed meanwhile).
#[derive(Clone, Copy, Debug)]
pub struct SceneChange {
    pub damage: Option<crate::render::damage::Rect>,
    pub planes: bool,
}

impl Axiom {
    /// Shows a frame composed at a tick of the clock `paced` names: on KMS with the next
    /// flip of each output that clock paces (`planes`: what the primary output's planes
    /// show), which then presents `feedback`; the other outputs owe a frame at their own
    /// clock's next tick where `changed` concerns them. Elsewhere `feedback` comes back, to
    /// be presented when the GPU has finished the frame (`backend/repaint.rs`).
    pub(crate) fn show_frame(
        &mut self,
        feedback: Vec<(Output, OutputPresentationFeedback)>,
        barriers: &mut FifoBarriers,
        planes: FramePlanes<'_>,
        paced: Option<&Output>,
        changed: SceneChange,
    ) -> Vec<(Output, OutputPresentationFeedback)> {
        if self.backend.flips() {
            self.show_on_kms(feedback, barriers, planes, paced, changed);
            return Vec::new();
        }
        feedback
    }

    /// What the primary output's display shows, where the backend can capture it (KMS's
    /// writeback connector); None: screencopy composes what it needs.
    pub(crate) fn capture_screen(&mut self) -> Option<Captured> {
        self.capture_kms_screen()
    }
}
