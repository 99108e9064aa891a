//! Frames complete asynchronously: the event loop submits GPU work and goes on;
//! a thread waits for each submission (`Device::poll`) and tells the event loop
//! through a calloop channel. What a submission reads in place (client buffers,
//! which stay unreleased, and the semaphores it waits on) is let go only then,
//! and what waits for it (a KMS flip) follows it.

use std::collections::VecDeque;
use std::sync::mpsc;

use super::InPlaceRead;
use smithay::reexports::calloop::channel::{channel, Channel, Sender};

/// A submission, numbered in order.
pub type SubmissionId = u64;

/// Submissions the GPU has not finished: each waits for every one before it.
pub struct Completions {
    watch: mpsc::Sender<(SubmissionId, wgpu::SubmissionIndex)>,
    /// Taken by the backend into its event loop (`take_source`).
    source: Option<Channel<SubmissionId>>,
    last: SubmissionId,
    finished: SubmissionId,
    in_flight: VecDeque<InFlight>,
}

/// Frames on the GPU at most: past that, the repaint waits for a later tick, and
/// so do frame callbacks (`backend/repaint.rs`). One: on a GPU-bound device a second
/// frame queued behind the first only adds its wait to every frame's latency
/// (`scripts/bench-kms`, docs/PERFORMANCE-KMS.md).
const MAX_FRAMES_IN_FLIGHT: usize = 1;

/// What a submission uses until it finishes.
struct InFlight {
    id: SubmissionId,
    /// It composed a frame.
    frame: bool,
    /// It waits on the GPU for a client's fence: nothing is submitted behind it until it
    /// is done, since on some drivers (lavapipe) a submission queued behind a waiting one
    /// blocks its caller, the event loop, until the fence signals.
    waits_on_client: bool,
    /// Client memory it reads in place: let go once it is done with it.
    _reads: Vec<InPlaceRead>,
}

impl Completions {
    /// Starts the thread that waits on `device` for each submission.
    pub fn new(device: &wgpu::Device) -> anyhow::Result<Self> {
        let (watch, submitted) = mpsc::channel::<(SubmissionId, wgpu::SubmissionIndex)>();
        let (done, source) = channel();
        let device = device.clone();
        std::thread::Builder::new()
            .name("gpu-completions".into())
            .spawn(move || wait_each(&device, &submitted, &done))?;
        Ok(Self { watch, source: Some(source), last: 0, finished: 0, in_flight: VecDeque::new() })
    }

    /// The event source that yields each finished submission's id (once).
    pub fn take_source(&mut self) -> Option<Channel<SubmissionId>> {
        self.source.take()
    }

    /// Records the submission `index`, which reads `reads` in place until done, and
    /// waits on a client's fence where `waits_on_client`.
    pub(super) fn submitted(
        &mut self,
        index: wgpu::SubmissionIndex,
        reads: Vec<InPlaceRead>,
        waits_on_client: bool,
    ) -> SubmissionId {
        self.last += 1;
        let id = self.last;
        self.in_flight.push_back(InFlight { id, frame: false, waits_on_client, _reads: reads });
        if self.watch.send((id, index)).is_err() {
            tracing::error!("the GPU completion thread is gone: frames are not let go");
        }
        id
    }

    /// Submissions up to `id` have finished: the buffers they read are released.
    pub(super) fn finished_through(&mut self, id: SubmissionId) {
        self.finished = self.finished.max(id.min(self.last));
        while self.in_flight.front().is_some_and(|f| f.id <= self.finished) {
            self.in_flight.pop_front();
        }
    }

    /// Submission `id` composed a frame.
    pub(super) fn composed(&mut self, id: SubmissionId) {
        if let Some(submission) = self.in_flight.iter_mut().rfind(|f| f.id == id) {
            submission.frame = true;
        }
    }

    /// Submission `id`, painted from the scene, is no output's frame (a capture).
    pub(super) fn not_a_frame(&mut self, id: SubmissionId) {
        if let Some(submission) = self.in_flight.iter_mut().rfind(|f| f.id == id) {
            submission.frame = false;
        }
    }

    /// As many composed frames are on the GPU as may be, or one waits on a client's
    /// fence: composing waits.
    pub fn frames_ahead(&self) -> bool {
        self.in_flight.iter().filter(|f| f.frame).count() >= MAX_FRAMES_IN_FLIGHT || self.waits_on_client()
    }

    /// A submission still waits on a client's fence: nothing more is submitted until it is done.
    pub fn waits_on_client(&self) -> bool {
        self.in_flight.iter().any(|f| f.waits_on_client)
    }

    /// Every submission so far.
    pub fn last(&self) -> SubmissionId {
        self.last
    }

    /// Whether the GPU has finished submission `id`.
    pub fn has_finished(&self, id: SubmissionId) -> bool {
        id <= self.finished
    }

    /// Submissions not known to be finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// The completion thread: waits for each submission in order, then tells the event loop.
fn wait_each(
    device: &wgpu::Device,
    submitted: &mpsc::Receiver<(SubmissionId, wgpu::SubmissionIndex)>,
    done: &Sender<SubmissionId>,
) {
    while let Ok((id, index)) = submitted.recv() {
        if let Err(err) = device.poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None }) {
            tracing::error!("waiting for GPU work failed: {err}");
        }
        if done.send(id).is_err() {
            return;
        }
    }
}
