//! The DRM files client timelines are imported into, and how their handles go.
//!
//! smithay 0.7 imports each timeline a client hands over as a syncobj handle in the
//! import device's DRM file and never destroys that handle (its timeline has no Drop:
//! only a withdrawn global invalidates them), so a client importing and destroying
//! timelines in a loop would grow the kernel objects the compositor holds without
//! bound. A handle goes with its file: timelines are imported into a file of our own
//! (a generation), and after [`ROTATE_AFTER`] timelines destroyed a fresh file takes
//! over (smithay's `update_device` moves the live timelines into it). The old file is
//! closed once no timeline destroyed while it was current is still in use: a point on
//! one may still be owed its signal (a buffer on screen whose timeline object went).
//! smithay holds a timeline's fd exactly as long as the timeline, so the fd number it
//! received naming the same file as a dup of ours (kcmp) says the timeline lives.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use smithay::backend::drm::{DrmDeviceFd, DrmNode, NodeType};
use smithay::reexports::drm::control::{syncobj, Device as _};
use smithay::reexports::drm::Device as _;
use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::utils::DeviceFd;

/// Timelines destroyed while a file is current before a fresh one takes over: each
/// rotation costs one re-import per live timeline.
pub const ROTATE_AFTER: usize = 64;

/// The DRM files timelines live in: the current one, and older ones kept open while a
/// timeline destroyed in their time may still be used.
pub struct TimelineFiles {
    /// The node new files are opened on, and whether it is a primary node (which
    /// can make its opener master) rather than a render node.
    path: PathBuf,
    primary: bool,
    current: Generation,
    retiring: Vec<Generation>,
    /// The fd number smithay received with each live timeline object.
    received: HashMap<ObjectId, RawFd>,
    /// Whether a timer sweeps the older files until they are closed.
    pub sweeping: bool,
}

/// One DRM file and the timelines destroyed while it was current.
struct Generation {
    device: DrmDeviceFd,
    /// Timelines destroyed in its time that smithay may still hold.
    destroyed: Vec<HeldTimeline>,
    /// How many were destroyed in its time, in use or not.
    destroyed_count: usize,
    /// A destroyed timeline could not be followed: the file stays open for good.
    pinned: bool,
}

/// A destroyed timeline's fd as smithay received it, and our dup of the same file.
struct HeldTimeline {
    number: RawFd,
    ours: OwnedFd,
}

impl HeldTimeline {
    fn in_use(&self) -> bool {
        same_file(self.number, self.ours.as_raw_fd()).unwrap_or(true)
    }
}

/// Whether two fds of this process name one open file (kcmp KCMP_FILE); None where
/// the kernel cannot say.
fn same_file(a: RawFd, b: RawFd) -> Option<bool> {
    const KCMP_FILE: libc::c_int = 0;
    let pid = std::process::id() as libc::pid_t;
    // SAFETY: kcmp only compares; it reads no memory of ours.
    let order = unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_FILE, a, b) };
    match order {
        0 => Some(true),
        1 | 2 => Some(false),
        // EBADF: the number is closed, so not the same file.
        _ if io::Error::last_os_error().raw_os_error() == Some(libc::EBADF) => Some(false),
        _ => None,
    }
}

impl TimelineFiles {
    /// Timelines go into files opened on `device`'s node (its render node where it has
    /// one). Err where no such file opens, or the kernel cannot tell when a timeline goes.
    pub fn open(device: &DrmDeviceFd, path: &str) -> io::Result<Self> {
        let (path, primary) = node_path(device).unwrap_or_else(|| (PathBuf::from(path), true));
        let probe = open_file(&path)?;
        if same_file(probe.as_fd().as_raw_fd(), probe.as_fd().as_raw_fd()) != Some(true) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "kcmp cannot compare files"));
        }
        Ok(Self {
            path,
            primary,
            current: Generation::new(probe),
            retiring: Vec::new(),
            received: HashMap::new(),
            sweeping: false,
        })
    }

    /// The file timelines are imported into now.
    pub fn device(&self) -> &DrmDeviceFd {
        &self.current.device
    }

    pub fn opens_primary_node(&self) -> bool {
        self.primary
    }

    /// smithay was asked to import a timeline received as fd `number` (`dup`: a dup of
    /// it taken before) for the object `timeline`: it holds the fd where it imported it.
    pub fn imported(&mut self, timeline: ObjectId, number: RawFd, dup: OwnedFd) {
        if same_file(number, dup.as_raw_fd()) == Some(true) {
            self.received.insert(timeline, number);
        }
    }

    /// The object `timeline` is being destroyed (smithay still holds its timeline).
    /// True when the current file is due to be replaced.
    pub fn destroying(&mut self, timeline: &ObjectId) -> bool {
        let Some(number) = self.received.remove(timeline) else { return false };
        // SAFETY: smithay owns `number` until its timeline goes, which is not before
        // this returns; the borrow is only dup'ed.
        let received = unsafe { BorrowedFd::borrow_raw(number) };
        match received.try_clone_to_owned() {
            Ok(ours) => self.current.destroyed.push(HeldTimeline { number, ours }),
            // Unknown whether it is still used: the file stays open for it.
            Err(err) => {
                tracing::warn!("explicit sync: cannot follow a destroyed timeline ({err}): its DRM file stays open");
                self.current.pinned = true;
            }
        }
        self.current.destroyed_count += 1;
        self.sweep();
        self.current.destroyed_count >= ROTATE_AFTER
    }

    /// A fresh file takes over: returns it, for smithay to move the live timelines
    /// into. The current one is kept while timelines destroyed in its time are used.
    pub fn rotate(&mut self) -> io::Result<DrmDeviceFd> {
        let file = open_file(&self.path)?;
        let fresh = Generation::new(file);
        let device = fresh.device.clone();
        self.retiring.push(std::mem::replace(&mut self.current, fresh));
        Ok(device)
    }

    /// After smithay moved the live timelines into the current file: where one did not
    /// move (smithay only logs it), it still lives in the file before, kept for good.
    pub fn check_moved(&mut self) {
        if self.current.live_handles() < self.received.len() {
            tracing::warn!("explicit sync: a live timeline did not move to the fresh DRM file: the old one stays open");
            if let Some(before) = self.retiring.last_mut() {
                before.pinned = true;
            }
        }
    }

    /// Closes each older file no timeline uses any more. True while some stay open.
    pub fn sweep(&mut self) -> bool {
        self.current.destroyed.retain(HeldTimeline::in_use);
        for generation in &mut self.retiring {
            generation.destroyed.retain(HeldTimeline::in_use);
        }
        self.retiring.retain(|generation| generation.pinned || !generation.destroyed.is_empty());
        !self.retiring.is_empty()
    }

    /// DRM files open for timelines, and the syncobj handles in them (asked of the kernel).
    pub fn counts(&self) -> (usize, usize) {
        let generations = || std::iter::once(&self.current).chain(&self.retiring);
        (generations().count(), generations().map(Generation::live_handles).sum())
    }
}

impl Generation {
    fn new(device: DrmDeviceFd) -> Self {
        Self { device, destroyed: Vec::new(), destroyed_count: 0, pinned: false }
    }

    /// The kernel gives a file's handles lowest first from 1, and smithay never destroys
    /// one: they lie together from 1, so counting stops after a long run of gaps.
    fn live_handles(&self) -> usize {
        const GAPS: u32 = 64;
        let exists = |raw: u32| {
            let Some(handle) = std::num::NonZeroU32::new(raw) else { return false };
            let mut point = [0u64];
            self.device.syncobj_timeline_query(&[syncobj::Handle::from(handle)], &mut point, false).is_ok()
        };
        let (mut count, mut gap, mut raw) = (0, 0, 1);
        while gap < GAPS {
            match exists(raw) {
                true => (count, gap) = (count + 1, 0),
                false => gap += 1,
            }
            raw += 1;
        }
        count
    }
}

/// The path of `device`'s render node, or of its own node where it has none (true).
fn node_path(device: &DrmDeviceFd) -> Option<(PathBuf, bool)> {
    let node = DrmNode::from_dev_id(device.dev_id().ok()?).ok()?;
    match node.node_with_type(NodeType::Render).and_then(Result::ok) {
        Some(render) => Some((render.dev_path()?, false)),
        None => Some((node.dev_path()?, node.ty() != NodeType::Render)),
    }
}

fn open_file(path: &std::path::Path) -> io::Result<DrmDeviceFd> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY, Mode::empty())?;
    let device = DrmDeviceFd::new(DeviceFd::from(fd));
    // smithay asks for master with every DrmDeviceFd; had this file become master (a
    // primary node while the session is away: not rotated then), it must not stay.
    let _ = device.release_master_lock();
    Ok(device)
}
