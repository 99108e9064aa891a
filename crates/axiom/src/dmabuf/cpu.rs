//! The CPU step of the import ladder: read a plane's rows from the client's fd.
//!
//! Real dma-bufs and memfds sealed against shrinking are mapped read-only and
//! read between `DMA_BUF_IOCTL_SYNC` start/end (ENOTTY from non-dma-buf fds is
//! expected and ignored); only the pages a plane spans are mapped, however large
//! its file. A memfd that its client could still shrink is read with `pread`
//! instead, a bounded chunk of rows at a time: touching a mapping past a shrunk
//! file's end raises SIGBUS, while `pread` just comes back short, which we report.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::{Arc, Mutex};

use smithay::reexports::wayland_server::backend::ObjectId;

use rustix::fs::{FileType, SealFlags};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

#[derive(Debug)]
pub enum ReadError {
    /// The file is shorter than the rows (the client truncated it).
    Truncated,
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Truncated => {
                f.write_str("the buffer's file is shorter than its planes (truncated by the client?)")
            }
            ReadError::Io(err) => write!(f, "{err}"),
        }
    }
}

/// Rows `first..first + count` of a plane: `row_bytes` used bytes every `stride` bytes from `offset`.
#[derive(Debug, Clone, Copy)]
pub struct RowSpan {
    pub offset: u64,
    pub stride: u64,
    pub row_bytes: u64,
    pub first: u64,
    pub count: u64,
}

impl RowSpan {
    fn start(&self) -> Option<u64> {
        self.stride.checked_mul(self.first)?.checked_add(self.offset)
    }

    /// Bytes from the first row's start to the last row's end.
    fn len(&self) -> Option<u64> {
        self.stride.checked_mul(self.count.checked_sub(1)?)?.checked_add(self.row_bytes)
    }

    /// As `len`, 0 where it would overflow (validated spans never do).
    pub fn len_bytes(&self) -> u64 {
        self.len().unwrap_or(0)
    }
}

/// Whether `fd` can be mapped without risk of SIGBUS.
pub fn can_map_safely(fd: BorrowedFd<'_>) -> bool {
    let Ok(stat) = rustix::fs::fstat(fd) else { return false };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => rustix::fs::fcntl_get_seals(fd).is_ok_and(|s| s.contains(SealFlags::SHRINK)),
        _ => true,
    }
}

/// A read-only mapping of the pages one plane of a buffer that cannot shrink
/// spans, kept for as long as its wl_buffer lives so that each frame's read is a
/// plain memory read instead of a fresh mapping that faults in every page again.
pub struct Mapping {
    ptr: *mut std::ffi::c_void,
    len: usize,
    /// The file offset of the mapping's first byte (a page boundary).
    origin: u64,
}

// SAFETY: a read-only shared mapping; it is only read, between DMA_BUF_IOCTL_SYNC calls.
unsafe impl Send for Mapping {}
// SAFETY: as above: nothing writes through it.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the file bytes `start..end` of `fd` (from the page holding `start`); None
    /// unless that range lies in the file and it is safe to keep mapped (see
    /// `can_map_safely`).
    pub fn new(fd: BorrowedFd<'_>, (start, end): (u64, u64)) -> Option<Self> {
        if !can_map_safely(fd) || start >= end || super::fd_size(fd)? < end {
            return None;
        }
        let origin = page_start(start);
        let len = usize::try_from(end - origin).ok()?;
        // SAFETY: a fresh read-only shared mapping of a file that cannot shrink, inside
        // the file; unmapped in Drop.
        let ptr = unsafe { mmap(std::ptr::null_mut(), len, ProtFlags::READ, MapFlags::SHARED, fd, origin) }.ok()?;
        Some(Self { ptr, len, origin })
    }

    /// Bytes mapped: what the buffer's client is charged for it.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file bytes `start..end`, if this mapping holds them.
    fn slice(&self, start: u64, end: u64) -> Option<&[u8]> {
        let from = usize::try_from(start.checked_sub(self.origin)?).ok()?;
        let to = usize::try_from(end.checked_sub(self.origin)?).ok()?;
        // SAFETY: the mapping is `len` bytes and lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }.get(from..to)
    }
}

/// The start of the page holding file offset `offset`.
pub fn page_start(offset: u64) -> u64 {
    let page = rustix::param::page_size() as u64;
    offset / page * page
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are the mapping made in `new`.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

/// Mappings of imported buffers' planes, by wl_buffer.
#[derive(Default)]
pub struct MappingCache {
    mappings: Mutex<HashMap<(ObjectId, usize), Arc<Mapping>>>,
}

impl MappingCache {
    /// The mapping of plane `plane` of buffer `id` (file bytes `range`), made on first
    /// use; None if the fd must not stay mapped. It is kept only for a live buffer: a
    /// destroyed one (committed, then destroyed before the repaint read it) has had its
    /// `forget` already, and would leak the mapping.
    pub fn get_or_map(
        &self,
        id: &ObjectId,
        alive: bool,
        plane: usize,
        fd: BorrowedFd<'_>,
        range: (u64, u64),
    ) -> Option<Arc<Mapping>> {
        let mut mappings = self.mappings.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mapping) = mappings.get(&(id.clone(), plane)) {
            return Some(mapping.clone());
        }
        let mapping = Arc::new(Mapping::new(fd, range)?);
        if alive {
            mappings.insert((id.clone(), plane), mapping.clone());
        }
        Some(mapping)
    }

    /// Unmaps a destroyed wl_buffer's planes.
    pub fn forget(&self, id: &ObjectId) {
        self.mappings.lock().unwrap_or_else(|e| e.into_inner()).retain(|(buffer, _), _| buffer != id);
    }

    /// How many plane mappings are kept, for the counters.
    pub fn len(&self) -> usize {
        self.mappings.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The most bytes one `pread` chunk holds: a frame of a large buffer is read (and
/// uploaded) in pieces rather than into one allocation of its whole span.
const PREAD_CHUNK: u64 = 1 << 20;

/// Calls `f` with rows of `span`: each call gets a span of rows and their bytes,
/// which start at its first row, `stride` apart. From `mapping` where the buffer
/// has one, or a fresh mapping, `f` is called once with `span`; through `pread`,
/// once per chunk of at most `PREAD_CHUNK` bytes, the chunk's rows packed
/// (stride = row bytes). Stops at the first call that returns false (Ok(false)).
pub fn read_rows(
    fd: BorrowedFd<'_>,
    mapping: Option<&Mapping>,
    span: RowSpan,
    mut f: impl FnMut(RowSpan, &[u8]) -> bool,
) -> Result<bool, ReadError> {
    let overflow = || ReadError::Io(std::io::Error::other("plane range overflows"));
    let start = span.start().ok_or_else(overflow)?;
    let len = span.len().ok_or_else(overflow)?;
    let end = start.checked_add(len).ok_or_else(overflow)?;
    if let Some(mapping) = mapping {
        let bytes = mapping.slice(start, end).ok_or(ReadError::Truncated)?;
        dma_buf_sync(fd, DMA_BUF_SYNC_START);
        let result = f(span, bytes);
        dma_buf_sync(fd, DMA_BUF_SYNC_END);
        return Ok(result);
    }
    if can_map_safely(fd) {
        if super::fd_size(fd).is_some_and(|size| end > size) {
            return Err(ReadError::Truncated);
        }
        return read_mapped(fd, start, len, |bytes| f(span, bytes));
    }
    let rows_per_chunk = (PREAD_CHUNK / span.row_bytes.max(1)).max(1);
    let mut bytes = Vec::new();
    let mut first = 0;
    while first < span.count {
        let count = rows_per_chunk.min(span.count - first);
        let chunk = RowSpan { offset: 0, stride: span.row_bytes, first: span.first + first, count, ..span };
        bytes.clear();
        bytes.resize(usize::try_from(count * span.row_bytes).map_err(|_| overflow())?, 0);
        for (row, out) in bytes.chunks_mut(span.row_bytes as usize).enumerate() {
            let at = span.stride.checked_mul(chunk.first + row as u64).and_then(|o| o.checked_add(span.offset));
            pread_exact(fd, out, at.ok_or_else(overflow)?)?;
        }
        if !f(chunk, &bytes) {
            return Ok(false);
        }
        first += count;
    }
    Ok(true)
}

/// Fills `out` from file offset `at`; a file that ends first is `Truncated`.
fn pread_exact(fd: BorrowedFd<'_>, out: &mut [u8], at: u64) -> Result<(), ReadError> {
    let mut done = 0;
    while done < out.len() {
        match rustix::io::pread(fd, &mut out[done..], at + done as u64) {
            Ok(0) => return Err(ReadError::Truncated),
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(ReadError::Io(err.into())),
        }
    }
    Ok(())
}

fn read_mapped<T>(fd: BorrowedFd<'_>, start: u64, len: u64, f: impl FnOnce(&[u8]) -> T) -> Result<T, ReadError> {
    let page = rustix::param::page_size() as u64;
    let map_start = start / page * page;
    let lead = (start - map_start) as usize;
    let map_len = usize::try_from(len).map_err(|e| ReadError::Io(std::io::Error::other(e)))? + lead;
    // SAFETY: a fresh read-only shared mapping of a file that cannot shrink (checked by
    // the caller), unmapped below before returning.
    let ptr = unsafe { mmap(std::ptr::null_mut(), map_len, ProtFlags::READ, MapFlags::SHARED, fd, map_start) }
        .map_err(|e| ReadError::Io(e.into()))?;
    dma_buf_sync(fd, DMA_BUF_SYNC_START);
    // SAFETY: the mapping is map_len bytes long; [lead, map_len) is the requested range.
    let result = f(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>().add(lead), map_len - lead) });
    dma_buf_sync(fd, DMA_BUF_SYNC_END);
    // SAFETY: ptr/map_len are the mapping made above.
    let _ = unsafe { munmap(ptr, map_len) };
    Ok(result)
}

const DMA_BUF_SYNC_READ: u64 = 1;
const DMA_BUF_SYNC_START: u64 = 0;
const DMA_BUF_SYNC_END: u64 = 4;
/// _IOW('b', 0, struct dma_buf_sync)
const DMA_BUF_IOCTL_SYNC: libc::c_ulong = 0x4008_6200;

/// Brackets CPU reads of a real dma-buf. Other fds answer ENOTTY, which is fine.
fn dma_buf_sync(fd: BorrowedFd<'_>, when: u64) {
    let sync: u64 = DMA_BUF_SYNC_READ | when;
    loop {
        // SAFETY: DMA_BUF_IOCTL_SYNC reads one u64 from the pointer we pass.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), DMA_BUF_IOCTL_SYNC, &sync) };
        if rc == 0 {
            return;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
            Some(libc::ENOTTY) | Some(libc::EINVAL) => return,
            _ => {
                tracing::debug!("DMA_BUF_IOCTL_SYNC: {err}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn memfd(bytes: &[u8], seal: bool) -> std::os::fd::OwnedFd {
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::io::write(&fd, bytes).unwrap();
        if seal {
            rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK).unwrap();
        }
        fd
    }

    /// The rows `read_rows` hands out, each cut to its used bytes, and the calls' sizes.
    fn rows_read(fd: BorrowedFd<'_>, mapping: Option<&Mapping>, span: RowSpan) -> (Vec<Vec<u8>>, Vec<usize>) {
        let (mut rows, mut calls) = (Vec::new(), Vec::new());
        read_rows(fd, mapping, span, |chunk, bytes| {
            calls.push(bytes.len());
            for row in 0..chunk.count as usize {
                let at = row * chunk.stride as usize;
                rows.push(bytes[at..at + chunk.row_bytes as usize].to_vec());
            }
            true
        })
        .unwrap();
        (rows, calls)
    }

    #[test]
    fn every_path_reads_the_same_rows_and_truncation_is_reported() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let span = RowSpan { offset: 100, stride: 50, row_bytes: 20, first: 2, count: 3 };
        let expected: Vec<Vec<u8>> = (0..3).map(|r| bytes[200 + r * 50..220 + r * 50].to_vec()).collect();
        for seal in [false, true] {
            let fd = memfd(&bytes, seal);
            assert_eq!(can_map_safely(fd.as_fd()), seal);
            assert_eq!(rows_read(fd.as_fd(), None, span).0, expected);
            if let Some(mapping) = Mapping::new(fd.as_fd(), (100, 100 + 50 * 5)) {
                assert_eq!(rows_read(fd.as_fd(), Some(&mapping), span).0, expected);
            }
        }
        let fd = memfd(&bytes, false);
        rustix::fs::ftruncate(&fd, 210).unwrap();
        assert!(matches!(read_rows(fd.as_fd(), None, span, |_, _| true), Err(ReadError::Truncated)));
        assert!(Mapping::new(fd.as_fd(), (0, 210)).is_none(), "an unsealed memfd is never kept mapped");
    }

    #[test]
    fn pread_reads_in_bounded_chunks() {
        // 300 rows of 8 KiB, 16 KiB apart: 4.7 MiB from first to last row.
        let (stride, row_bytes, count) = (16_384u64, 8192u64, 300u64);
        let bytes: Vec<u8> = (0..(stride * count) as usize).map(|i| (i / 7) as u8).collect();
        let fd = memfd(&bytes, false);
        let span = RowSpan { offset: 0, stride, row_bytes, first: 0, count };
        let (rows, calls) = rows_read(fd.as_fd(), None, span);
        assert_eq!(rows.len(), count as usize);
        assert_eq!(rows[299], bytes[(299 * stride) as usize..(299 * stride + row_bytes) as usize].to_vec());
        assert!(calls.len() > 1 && calls.iter().all(|&n| n as u64 <= PREAD_CHUNK), "{calls:?}");
    }

    #[test]
    fn a_plane_far_into_a_huge_sparse_file_maps_only_its_pages() {
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
        let huge = 1u64 << 40;
        rustix::fs::ftruncate(&fd, huge).unwrap();
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK).unwrap();
        let offset = huge - 4096 + 100;
        let mapping = Mapping::new(fd.as_fd(), (offset, offset + 4)).expect("maps");
        assert_eq!(mapping.len(), 104, "from the plane's page to its end");
        let span = RowSpan { offset, stride: 4, row_bytes: 4, first: 0, count: 1 };
        assert_eq!(rows_read(fd.as_fd(), Some(&mapping), span).0, vec![vec![0u8; 4]]);
        assert!(Mapping::new(fd.as_fd(), (huge, huge + 4)).is_none(), "past the file's end");
    }

    #[test]
    fn pipes_are_not_buffers() {
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert_eq!(crate::dmabuf::fd_size(r.as_fd()), None);
    }
}
