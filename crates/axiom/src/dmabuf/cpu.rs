//! The CPU step of the import ladder: read a plane's rows from the client's fd.
//!
//! Real dma-bufs and memfds sealed against shrinking are mapped read-only and
//! read between `DMA_BUF_IOCTL_SYNC` start/end (ENOTTY from non-dma-buf fds is
//! expected and ignored). A memfd that its client could still shrink is read
//! with `pread` instead: touching a mapping past a shrunk file's end raises
//! SIGBUS, while `pread` just comes back short, which we report.

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

/// A read-only mapping of a whole buffer that cannot shrink, kept for as long
/// as its wl_buffer lives so that each frame's read is a plain memory read
/// instead of a fresh mapping that faults in every page again.
pub struct Mapping {
    ptr: *mut std::ffi::c_void,
    len: usize,
}

// SAFETY: a read-only shared mapping; it is only read, between DMA_BUF_IOCTL_SYNC calls.
unsafe impl Send for Mapping {}
// SAFETY: as above: nothing writes through it.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `fd` whole; None unless it is safe to keep mapped (see `can_map_safely`).
    pub fn new(fd: BorrowedFd<'_>) -> Option<Self> {
        if !can_map_safely(fd) {
            return None;
        }
        let len = usize::try_from(super::fd_size(fd)?).ok().filter(|&l| l > 0)?;
        // SAFETY: a fresh read-only shared mapping of a file that cannot shrink; unmapped in Drop.
        let ptr = unsafe { mmap(std::ptr::null_mut(), len, ProtFlags::READ, MapFlags::SHARED, fd, 0) }.ok()?;
        Some(Self { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes and lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
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
    /// The mapping of plane `plane` of buffer `id`, made on first use; None if the fd
    /// must not stay mapped.
    pub fn get_or_map(&self, id: &ObjectId, plane: usize, fd: BorrowedFd<'_>) -> Option<Arc<Mapping>> {
        let mut mappings = self.mappings.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mapping) = mappings.get(&(id.clone(), plane)) {
            return Some(mapping.clone());
        }
        let mapping = Arc::new(Mapping::new(fd)?);
        mappings.insert((id.clone(), plane), mapping.clone());
        Some(mapping)
    }

    /// Unmaps a destroyed wl_buffer's planes.
    pub fn forget(&self, id: &ObjectId) {
        self.mappings.lock().unwrap_or_else(|e| e.into_inner()).retain(|(buffer, _), _| buffer != id);
    }
}

/// Calls `f` with the rows' bytes (rows `span.stride` apart), from `mapping` where
/// the buffer has one.
pub fn read_rows<T>(
    fd: BorrowedFd<'_>,
    mapping: Option<&Mapping>,
    span: RowSpan,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<T, ReadError> {
    let overflow = || ReadError::Io(std::io::Error::other("plane range overflows"));
    let start = span.start().ok_or_else(overflow)?;
    let len = span.len().ok_or_else(overflow)?;
    let end = start.checked_add(len).ok_or_else(overflow)?;
    if let Some(mapping) = mapping {
        let range = usize::try_from(start).ok().zip(usize::try_from(end).ok());
        let bytes = range.and_then(|(start, end)| mapping.bytes().get(start..end)).ok_or(ReadError::Truncated)?;
        dma_buf_sync(fd, DMA_BUF_SYNC_START);
        let result = f(bytes);
        dma_buf_sync(fd, DMA_BUF_SYNC_END);
        return Ok(result);
    }
    if can_map_safely(fd) {
        if super::fd_size(fd).is_some_and(|size| end > size) {
            return Err(ReadError::Truncated);
        }
        read_mapped(fd, start, len, f)
    } else {
        let mut bytes = vec![0u8; usize::try_from(len).map_err(|_| overflow())?];
        let mut done = 0;
        while done < bytes.len() {
            match rustix::io::pread(fd, &mut bytes[done..], start + done as u64) {
                Ok(0) => return Err(ReadError::Truncated),
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => return Err(ReadError::Io(err.into())),
            }
        }
        Ok(f(&bytes))
    }
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

    #[test]
    fn both_paths_read_the_same_rows_and_truncation_is_reported() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let span = RowSpan { offset: 100, stride: 50, row_bytes: 20, first: 2, count: 3 };
        for seal in [false, true] {
            let fd = memfd(&bytes, seal);
            assert_eq!(can_map_safely(fd.as_fd()), seal);
            let got = read_rows(fd.as_fd(), None, span, |b| b.to_vec()).unwrap();
            if let Some(mapping) = Mapping::new(fd.as_fd()) {
                assert_eq!(read_rows(fd.as_fd(), Some(&mapping), span, |b| b.to_vec()).unwrap(), got);
            }
            assert_eq!(got, bytes[200..200 + 120].to_vec());
        }
        let fd = memfd(&bytes, false);
        rustix::fs::ftruncate(&fd, 210).unwrap();
        assert!(matches!(read_rows(fd.as_fd(), None, span, |_| ()), Err(ReadError::Truncated)));
        assert!(Mapping::new(fd.as_fd()).is_none(), "an unsealed memfd is never kept mapped");
    }

    #[test]
    fn pipes_are_not_buffers() {
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert_eq!(crate::dmabuf::fd_size(r.as_fd()), None);
    }
}
