//! linux-dmabuf feedback (v4+): the format table shared as a sealed memfd,
//! the main device, and tranches.
//!
//! Every feedback object remembers which table it was sent, so a table is sent
//! again only when it really changed: a client that receives a fresh fd on
//! every `done` leaks fds.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use rustix::fs::{fcntl_add_seals, MemfdFlags, SealFlags};
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::{
    TrancheFlags, ZwpLinuxDmabufFeedbackV1,
};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;

/// (fourcc, modifier) pairs in a read-only, sealed memfd, 16 bytes each as the protocol lays them out.
#[derive(Debug)]
pub struct FormatTable {
    pub entries: Vec<(u32, u64)>,
    file: OwnedFd,
    size: u32,
}

impl FormatTable {
    pub fn new(entries: Vec<(u32, u64)>) -> std::io::Result<Self> {
        let mut bytes = Vec::with_capacity(entries.len() * 16);
        for &(format, modifier) in &entries {
            bytes.extend_from_slice(&format.to_ne_bytes());
            bytes.extend_from_slice(&0u32.to_ne_bytes());
            bytes.extend_from_slice(&modifier.to_ne_bytes());
        }
        let fd =
            rustix::fs::memfd_create("axiom-dmabuf-format-table", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(&bytes)?;
        let fd = OwnedFd::from(file);
        // Clients map the table; seal it so that nobody can change or shrink it under them.
        fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL)?;
        Ok(Self { entries, file: fd, size: bytes.len() as u32 })
    }

    pub fn index_of(&self, format: u32, modifier: u64) -> Option<u16> {
        self.entries.iter().position(|&e| e == (format, modifier)).and_then(|i| u16::try_from(i).ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tranche {
    pub target_device: u64,
    pub flags: TrancheFlags,
    /// Indices into the format table.
    pub indices: Vec<u16>,
}

/// One complete feedback: what a feedback object is told between two `done`s.
#[derive(Debug, Clone)]
pub struct Feedback {
    pub main_device: u64,
    pub table: Arc<FormatTable>,
    pub tranches: Vec<Tranche>,
}

impl PartialEq for Feedback {
    fn eq(&self, other: &Self) -> bool {
        self.main_device == other.main_device
            && (Arc::ptr_eq(&self.table, &other.table) || self.table.entries == other.table.entries)
            && self.tranches == other.tranches
    }
}

impl Feedback {
    /// The feedback with one tranche holding every format of `table`, for `device`.
    pub fn single_tranche(device: u64, table: Arc<FormatTable>) -> Self {
        let indices = (0..table.entries.len()).filter_map(|i| u16::try_from(i).ok()).collect();
        Self {
            main_device: device,
            table,
            tranches: vec![Tranche { target_device: device, flags: TrancheFlags::empty(), indices }],
        }
    }
}

/// Per feedback-object data.
#[derive(Debug, Default)]
pub struct FeedbackData {
    /// The surface of a surface feedback; None for the default feedback.
    pub surface: Option<WlSurface>,
    /// The last feedback sent, to skip unchanged updates and unchanged tables.
    last_sent: Mutex<Option<Feedback>>,
}

impl FeedbackData {
    pub fn for_surface(surface: Option<WlSurface>) -> Self {
        Self { surface, last_sent: Mutex::new(None) }
    }
}

/// Sends `feedback` to `resource` followed by `done`, unless it already has
/// exactly this feedback. The format table goes out only if it changed.
pub fn send_feedback(resource: &ZwpLinuxDmabufFeedbackV1, data: &FeedbackData, feedback: &Feedback) {
    let mut last = data.last_sent.lock().unwrap_or_else(|e| e.into_inner());
    if last.as_ref() == Some(feedback) {
        return;
    }
    let table_changed = last.as_ref().is_none_or(|l| l.table.entries != feedback.table.entries);
    if table_changed {
        resource.format_table(feedback.table.file.as_fd(), feedback.table.size);
    }
    resource.main_device(feedback.main_device.to_ne_bytes().to_vec());
    for tranche in &feedback.tranches {
        resource.tranche_target_device(tranche.target_device.to_ne_bytes().to_vec());
        resource.tranche_formats(tranche.indices.iter().flat_map(|i| i.to_ne_bytes()).collect());
        resource.tranche_flags(tranche.flags);
        resource.tranche_done();
    }
    resource.done();
    *last = Some(feedback.clone());
}

/// dev_t of the DRM render node of the renderer's GPU, if the machine has one.
/// Matched by PCI bus id where wgpu knows it; otherwise the first render node.
pub fn render_node(pci_bus_id: &str) -> Option<(u64, String)> {
    let by_path = format!("/dev/dri/by-path/pci-{pci_bus_id}-render");
    let mut candidates = Vec::new();
    if !pci_bus_id.is_empty() {
        candidates.push(std::path::PathBuf::from(by_path));
    }
    if let Ok(dir) = std::fs::read_dir("/dev/dri") {
        let mut nodes: Vec<_> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("renderD")))
            .collect();
        nodes.sort();
        candidates.extend(nodes);
    }
    candidates.into_iter().find_map(|path| {
        let stat = rustix::fs::stat(&path).ok()?;
        Some((stat.st_rdev, path.display().to_string()))
    })
}
