//! Per-client resource caps: live surfaces, live buffers, bytes of buffer
//! memory and file descriptors. A client that goes over one is disconnected
//! with `wl_display.error(no_memory)` and a log line naming it, so that one
//! misbehaving application cannot take the compositor's memory or fds.
//!
//! Bytes are charged for what the compositor maps or pins: an shm pool its
//! size (it is mapped whole, and stays mapped, with its fd open, while the pool
//! or any buffer made from it lives), and each shm buffer the bytes it spans
//! (what its texture holds once shown); a dma-buf the sum over planes of what
//! the CPU path would map of them. Params objects not yet used count against the
//! buffer cap, as the buffers they may become. Every fd the compositor holds
//! for a client is charged to it: one per plane of a params object not yet
//! turned into a buffer and of each dma-buf, one per shm pool mapping, and one
//! per live dma-buf feedback object (its format table's fd may be waiting in
//! the client's unread events).

use std::sync::{Arc, Mutex};

use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1;
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1;
use smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1;
use smithay::reexports::wayland_server::backend::{ClientId, ObjectId};
use smithay::reexports::wayland_server::protocol::{wl_buffer::WlBuffer, wl_surface::WlSurface};
use smithay::reexports::wayland_server::{Client, DisplayHandle, Resource, Weak};

use crate::state::ClientState;

/// The caps, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub surfaces: u32,
    pub buffers: u32,
    pub buffer_bytes: u64,
    pub fds: u32,
}

impl Default for Limits {
    fn default() -> Self {
        // Generous for real applications (a browser has a few hundred buffers
        // and surfaces; thirty 4K buffers are 1 GiB), small next to a machine.
        // Fds: a video player's decoder pool of 16 three-plane frames holds 48, a
        // game's deep swapchain (8 images of up to 4 planes) 32, a browser a few
        // hundred; 1024 is twenty times the first two, and 500 clients at the cap
        // still fit in an fd table of 512Ki (systemd's default hard limit).
        Self { surfaces: 1000, buffers: 1000, buffer_bytes: 2 << 30, fds: 1024 }
    }
}

/// What one client holds now.
#[derive(Debug, Default)]
pub struct ClientUsage {
    inner: Arc<Mutex<Usage>>,
}

/// Surfaces and dma-bufs are kept as weak handles (a strong one would keep a
/// buffer's fds open) and pruned when dead; shm pools and their buffers are
/// recorded on creation and forgotten in their destructors (smithay creates
/// them, so we never hold their handles).
#[derive(Debug, Default)]
struct Usage {
    surfaces: Vec<Weak<WlSurface>>,
    dmabufs: Vec<DmabufUsage>,
    shm: ShmMappings<ObjectId>,
    params: Vec<Weak<ZwpLinuxBufferParamsV1>>,
    /// Fds held by params objects not yet turned into buffers (see `FdCharge`).
    pending_fds: usize,
    feedbacks: Vec<Weak<ZwpLinuxDmabufFeedbackV1>>,
    /// Explicit-sync timelines: each holds the syncobj's fd.
    timelines: Vec<Weak<WpLinuxDrmSyncobjTimelineV1>>,
}

#[derive(Debug)]
struct DmabufUsage {
    buffer: Weak<WlBuffer>,
    bytes: u64,
    fds: usize,
}

impl Usage {
    fn prune(&mut self) {
        self.surfaces.retain(|s| s.is_alive());
        self.dmabufs.retain(|d| d.buffer.is_alive());
        self.feedbacks.retain(|f| f.is_alive());
        self.timelines.retain(|t| t.is_alive());
        self.params.retain(|p| p.is_alive());
    }

    fn buffers(&self) -> usize {
        self.dmabufs.len() + self.shm.buffers() + self.params.len()
    }

    fn bytes(&self) -> u64 {
        self.dmabufs.iter().fold(self.shm.bytes(), |total, d| total.saturating_add(d.bytes))
    }

    fn fds(&self) -> usize {
        let dmabuf_fds: usize = self.dmabufs.iter().map(|d| d.fds).sum();
        dmabuf_fds + self.shm.mappings() + self.pending_fds + self.feedbacks.len() + self.timelines.len()
    }

    fn check_bytes(&self, limits: &Limits, more: u64) -> Result<(), Exceeded> {
        let held = self.bytes();
        if held.saturating_add(more) > limits.buffer_bytes {
            return Err(Exceeded(format!(
                "more than {} bytes of buffers ({held} held, {more} more asked)",
                limits.buffer_bytes
            )));
        }
        Ok(())
    }

    /// May the client hold `more` fds on top of what it holds?
    fn check_fds(&self, limits: &Limits, more: usize) -> Result<(), Exceeded> {
        let held = self.fds();
        if held + more > limits.fds as usize {
            return Err(Exceeded(format!("more than {} file descriptors ({held} held)", limits.fds)));
        }
        Ok(())
    }
}

/// A client's shm pool mappings. smithay maps a pool whole and unmaps it (and
/// closes its fd) only when the pool object and every buffer made from it are
/// gone, so each mapping is charged until then, at its latest size.
#[derive(Debug)]
struct ShmMappings<K> {
    mappings: Vec<ShmMapping<K>>,
}

#[derive(Debug)]
struct ShmMapping<K> {
    /// The pool object, None once destroyed.
    pool: Option<K>,
    /// Each buffer made from the pool, with the bytes it spans.
    buffers: Vec<(K, u64)>,
    bytes: u64,
}

impl<K> Default for ShmMappings<K> {
    fn default() -> Self {
        Self { mappings: Vec::new() }
    }
}

impl<K: PartialEq> ShmMappings<K> {
    fn mappings(&self) -> usize {
        self.mappings.len()
    }

    fn buffers(&self) -> usize {
        self.mappings.iter().map(|m| m.buffers.len()).sum()
    }

    /// Pool sizes and buffer spans.
    fn bytes(&self) -> u64 {
        let buffers = |m: &ShmMapping<K>| m.buffers.iter().fold(0u64, |total, (_, bytes)| total.saturating_add(*bytes));
        self.mappings.iter().fold(0, |total, m| total.saturating_add(m.bytes).saturating_add(buffers(m)))
    }

    fn of_pool(&mut self, pool: &K) -> Option<&mut ShmMapping<K>> {
        self.mappings.iter_mut().find(|m| m.pool.as_ref() == Some(pool))
    }

    fn size_of(&self, pool: &K) -> u64 {
        self.mappings.iter().find(|m| m.pool.as_ref() == Some(pool)).map_or(0, |m| m.bytes)
    }

    fn add_pool(&mut self, pool: K, bytes: u64) {
        self.mappings.push(ShmMapping { pool: Some(pool), buffers: Vec::new(), bytes });
    }

    fn resize(&mut self, pool: &K, bytes: u64) {
        if let Some(mapping) = self.of_pool(pool) {
            mapping.bytes = mapping.bytes.max(bytes);
        }
    }

    fn add_buffer(&mut self, pool: &K, buffer: K, bytes: u64) {
        if let Some(mapping) = self.of_pool(pool) {
            mapping.buffers.push((buffer, bytes));
        }
    }

    fn remove_buffer(&mut self, buffer: &K) {
        for mapping in &mut self.mappings {
            mapping.buffers.retain(|(b, _)| b != buffer);
        }
        self.unmapped();
    }

    fn remove_pool(&mut self, pool: &K) {
        if let Some(mapping) = self.of_pool(pool) {
            mapping.pool = None;
        }
        self.unmapped();
    }

    fn unmapped(&mut self) {
        self.mappings.retain(|m| m.pool.is_some() || !m.buffers.is_empty());
    }
}

/// Fds a params object holds for its client, until it is used or destroyed (or the
/// client goes): charged when taken, given back when dropped.
#[derive(Debug)]
pub struct FdCharge {
    usage: Arc<Mutex<Usage>>,
    fds: usize,
}

impl Drop for FdCharge {
    fn drop(&mut self) {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        usage.pending_fds = usage.pending_fds.saturating_sub(self.fds);
    }
}

/// A cap a client went over, with what it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded(String);

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ClientUsage {
    fn lock(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new surface, or says which cap it breaks.
    pub fn add_surface(&self, limits: &Limits, surface: &WlSurface) -> Result<(), Exceeded> {
        let mut usage = self.lock();
        usage.prune();
        if usage.surfaces.len() >= limits.surfaces as usize {
            return Err(Exceeded(format!("more than {} surfaces", limits.surfaces)));
        }
        usage.surfaces.push(surface.downgrade());
        Ok(())
    }

    /// May the client create one more buffer spanning `bytes`?
    pub fn check_buffer(&self, limits: &Limits, bytes: u64) -> Result<(), Exceeded> {
        let mut usage = self.lock();
        usage.prune();
        if usage.buffers() >= limits.buffers as usize {
            return Err(Exceeded(format!("more than {} buffers", limits.buffers)));
        }
        usage.check_bytes(limits, bytes)
    }

    /// Counts a new params object (a buffer to be), or says which cap it breaks.
    pub fn add_params(&self, limits: &Limits, params: &ZwpLinuxBufferParamsV1) -> Result<(), Exceeded> {
        let mut usage = self.lock();
        usage.prune();
        if usage.buffers() >= limits.buffers as usize {
            return Err(Exceeded(format!("more than {} buffers (params objects included)", limits.buffers)));
        }
        usage.params.push(params.downgrade());
        Ok(())
    }

    /// Counts a new dma-buf of `bytes`, holding `fds` plane fds.
    pub fn add_dmabuf(&self, buffer: &WlBuffer, bytes: u64, fds: usize) {
        self.lock().dmabufs.push(DmabufUsage { buffer: buffer.downgrade(), bytes, fds });
    }

    /// Charges one fd a params object takes, or says which cap it breaks.
    pub fn charge_fd(&self, limits: &Limits) -> Result<FdCharge, Exceeded> {
        let mut usage = self.lock();
        usage.prune();
        usage.check_fds(limits, 1)?;
        usage.pending_fds += 1;
        Ok(FdCharge { usage: self.inner.clone(), fds: 1 })
    }

    /// A params object was used: the buffer it made is counted instead.
    pub fn params_used(&self, params: &ZwpLinuxBufferParamsV1) {
        self.lock().params.retain(|p| p.upgrade().ok().as_ref() != Some(params));
    }

    /// Counts a new dma-buf feedback object (it may hold the format table's fd).
    pub fn add_feedback(&self, limits: &Limits, feedback: &ZwpLinuxDmabufFeedbackV1) -> Result<(), Exceeded> {
        let mut usage = self.lock();
        usage.prune();
        usage.check_fds(limits, 1)?;
        usage.feedbacks.push(feedback.downgrade());
        Ok(())
    }

    /// Counts a new explicit-sync timeline (its syncobj's fd) against the client's fds.
    pub fn add_timeline(&self, limits: &Limits, timeline: &WpLinuxDrmSyncobjTimelineV1) -> Result<(), Exceeded> {
        let mut usage = self.lock();
        usage.prune();
        usage.check_fds(limits, 1)?;
        usage.timelines.push(timeline.downgrade());
        Ok(())
    }

    /// May the client map one more shm pool of `size` bytes? Each is a mapping
    /// with an fd open for as long as the pool or a buffer of it lives.
    pub fn check_shm_pool(&self, limits: &Limits, size: u64) -> Result<(), Exceeded> {
        let mut usage = self.lock();
        usage.prune();
        if usage.shm.mappings() >= limits.buffers as usize {
            return Err(Exceeded(format!("more than {} shm pools", limits.buffers)));
        }
        usage.check_fds(limits, 1)?;
        usage.check_bytes(limits, size)
    }

    /// Records a pool `check_shm_pool` allowed, once smithay has made it.
    pub fn add_shm_pool(&self, pool: ObjectId, size: u64) {
        self.lock().shm.add_pool(pool, size);
    }

    /// May `pool` grow to `size` bytes?
    pub fn resize_shm_pool(&self, limits: &Limits, pool: &ObjectId, size: u64) -> Result<(), Exceeded> {
        let mut usage = self.lock();
        usage.prune();
        let growth = size.saturating_sub(usage.shm.size_of(pool));
        usage.check_bytes(limits, growth)?;
        usage.shm.resize(pool, size);
        Ok(())
    }

    /// Records a buffer spanning `bytes` made from `pool` (it keeps the pool's mapping alive).
    pub fn add_shm_buffer(&self, pool: &ObjectId, buffer: ObjectId, bytes: u64) {
        self.lock().shm.add_buffer(pool, buffer, bytes);
    }

    pub fn remove_shm_buffer(&self, buffer: &ObjectId) {
        self.lock().shm.remove_buffer(buffer);
    }

    pub fn remove_shm_pool(&self, pool: &ObjectId) {
        self.lock().shm.remove_pool(pool);
    }

    /// (live surfaces, live buffers, bytes of buffers), for logs and tests.
    pub fn totals(&self) -> (usize, usize, u64) {
        let mut usage = self.lock();
        usage.prune();
        (usage.surfaces.len(), usage.buffers(), usage.bytes())
    }

    /// The fds held for this client now.
    pub fn fds(&self) -> usize {
        let mut usage = self.lock();
        usage.prune();
        usage.fds()
    }
}

/// The usage record of `client`; every client we accept has one.
pub fn usage(client: &Client) -> Option<&ClientUsage> {
    client.get_data::<ClientState>().map(|data| &data.usage)
}

/// Runs `f` on the usage record of the client with `id`, if it is still connected
/// (destructors run with a client id only).
pub fn with_usage_of(dh: &DisplayHandle, id: ClientId, f: impl FnOnce(&ClientUsage)) {
    let Ok(data) = dh.backend_handle().get_client_data(id) else { return };
    if let Some(state) = data.downcast_ref::<ClientState>() {
        f(&state.usage);
    }
}

/// `wl_display.error` code for "the server is out of memory".
const WL_DISPLAY_NO_MEMORY: u32 = 2;

/// Disconnects `client` with `wl_display.error(no_memory)` and logs who it was.
pub fn disconnect(dh: &DisplayHandle, client: &Client, exceeded: &Exceeded) {
    let who = describe(dh, client);
    tracing::warn!("client {who} exceeded its resource limit ({exceeded}): disconnected");
    crate::handlers::display_error(dh, client, WL_DISPLAY_NO_MEMORY, format!("per-client limit exceeded: {exceeded}"));
}

/// "pid 1234 (/usr/bin/foot)" from the socket's credentials and /proc.
pub fn describe(dh: &DisplayHandle, client: &Client) -> String {
    let Ok(credentials) = client.get_credentials(dh) else { return "(unknown pid)".into() };
    let pid = credentials.pid;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "unknown executable".into());
    format!("pid {pid} ({exe})")
}

/// Raises the soft limit on open fds to the hard limit: every client buffer
/// holds one to four fds, and the default soft limit (1024) would let a few
/// clients within their caps exhaust the table for everyone.
pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    limit.current = limit.maximum;
    if let Err(err) = setrlimit(Resource::Nofile, limit) {
        tracing::warn!("cannot raise the open file limit: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_mapping_is_charged_until_its_pool_and_every_buffer_of_it_are_gone() {
        let mut shm = ShmMappings::default();
        shm.add_pool(1, 4096);
        shm.add_buffer(&1, 10, 1);
        shm.add_buffer(&1, 11, 2);
        shm.resize(&1, 8192);
        shm.resize(&1, 100);
        assert_eq!((shm.mappings(), shm.buffers(), shm.bytes()), (1, 2, 8195), "a pool only grows");
        shm.remove_pool(&1);
        shm.add_buffer(&1, 12, 4);
        assert_eq!((shm.mappings(), shm.buffers(), shm.bytes()), (1, 2, 8195), "buffers hold the mapping");
        // A new pool may reuse the dead pool's protocol id; it is a mapping of its own.
        shm.add_pool(1, 100);
        shm.remove_buffer(&10);
        shm.remove_buffer(&11);
        assert_eq!((shm.mappings(), shm.buffers(), shm.bytes()), (1, 0, 100));
        shm.remove_pool(&1);
        assert_eq!((shm.mappings(), shm.bytes()), (0, 0));
    }

    #[test]
    fn buffer_and_byte_caps_hold() {
        let limits = Limits { surfaces: 1, buffers: 2, buffer_bytes: 100, fds: 1000 };
        let usage = ClientUsage::default();
        assert!(usage.check_buffer(&limits, 100).is_ok());
        assert!(usage.check_buffer(&limits, 101).is_err());
        assert!(usage.check_buffer(&limits, u64::MAX).is_err(), "no overflow");
        assert!(usage.check_shm_pool(&limits, 101).is_err(), "byte cap");
        usage.add_shm_pool(ObjectId::null(), 60);
        assert!(usage.check_shm_pool(&limits, 41).is_err(), "byte cap, with a pool mapped");
        assert!(usage.check_buffer(&limits, 40).is_ok());
        usage.add_shm_pool(ObjectId::null(), 0);
        assert!(usage.check_shm_pool(&limits, 0).is_err(), "pools share the buffer cap");
        assert_eq!(usage.totals(), (0, 0, 60));
    }

    #[test]
    fn fds_held_by_params_are_given_back_when_dropped_and_pools_count() {
        let limits = Limits { surfaces: 1, buffers: 10, buffer_bytes: 100, fds: 3 };
        let usage = ClientUsage::default();
        let first = usage.charge_fd(&limits).unwrap();
        let second = usage.charge_fd(&limits).unwrap();
        assert!(usage.check_shm_pool(&limits, 1).is_ok());
        usage.add_shm_pool(ObjectId::null(), 1);
        assert_eq!(usage.fds(), 3);
        assert!(usage.charge_fd(&limits).is_err(), "fd cap");
        assert!(usage.check_shm_pool(&limits, 1).is_err(), "a pool holds an fd too");
        drop((first, second));
        assert_eq!(usage.fds(), 1);
        assert!(usage.charge_fd(&limits).is_ok());
    }
}
