//! Shared memory for processes that did not fork from each other: a sealed
//! `memfd`, passed as an fd ([`crate::msg::send_fds`]) instead of inherited.
//!
//! `shm_open` names memory in `/dev/shm`, where a crashed program leaves it
//! behind, and lets any process with the fd shrink it, which makes every
//! other process that touches the lost pages die of `SIGBUS`. A
//! [`SealedRegion`] has neither problem: its memory has no name (it is freed
//! when the last fd and mapping go), and it is sealed against shrinking and
//! growing before anyone else sees it. [`SealedRegion::open`] maps only
//! memory that can never shrink, so what a peer sends cannot crash this
//! process.

use core::ptr::{self, NonNull};

use rustix::fs::{FileType, MemfdFlags, SealFlags, fcntl_add_seals, fcntl_get_seals, fstat};
use rustix::fs::{ftruncate, memfd_create};
use rustix::mm::{MapFlags, ProtFlags, mmap};

use super::SharedRegion;
use crate::mutex::TearSafe;
use crate::{AsFd, BorrowedFd, Errno, OwnedFd, Result};

/// The seals every [`SealedRegion::create`] sets: its size is fixed, and so
/// are its seals.
pub const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// Zero-filled shared memory in a sealed `memfd`, mapped in this process,
/// with the fd that gives it to another process. Unmapped and closed on drop
/// (the memory lives on while another process maps it or holds its fd).
#[derive(Debug)]
pub struct SealedRegion {
    region: SharedRegion,
    fd: OwnedFd,
}

impl SealedRegion {
    /// `memfd_create("rawipc", MFD_ALLOW_SEALING | MFD_CLOEXEC)`, `ftruncate`
    /// to `len`, seals [`SEALS`] (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`),
    /// `mmap(MAP_SHARED)`: `len` bytes of zero-filled memory to share by fd.
    ///
    /// Errors: `EINVAL` if `len` is 0; `ENOMEM` (also for `len` above
    /// `isize::MAX`); `EMFILE`/`ENFILE`.
    ///
    /// # References
    /// - [memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html)
    /// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (file seals)
    #[doc(alias = "memfd_create")]
    pub fn create(len: usize) -> Result<Self> {
        let fd = sealed_memfd(len)?;
        let region = map_checked(fd.as_fd(), len)?;
        Ok(Self { region, fd })
    }

    /// Maps memory received from another process, after checking that it
    /// can never make this process die of `SIGBUS`: it must be a memfd
    /// (or another sealable shared-memory file) sealed with `F_SEAL_SHRINK`.
    /// Its size is read after the seals are checked. Takes the fd; on error
    /// it is closed.
    ///
    /// Errors: `EINVAL` if `fd` is not a sealable memory file (a pipe, a
    /// socket, a file on disk) or is empty; `EPERM` if it could still be
    /// shrunk (no `F_SEAL_SHRINK`); `EACCES` if it is not open for reading
    /// and writing, or `EPERM` if sealed against writing; `ENOMEM`.
    pub fn open(fd: OwnedFd) -> Result<Self> {
        let region = map_sealed(&fd)?;
        Ok(Self { region, fd })
    }

    /// The first byte (page-aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.region.as_ptr()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Always false: a region has at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The memfd, to send to another process ([`crate::msg::send_fds`]).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The mapping and the fd, each owned on its own (drop the fd once it is
    /// sent: the mapping keeps the memory).
    pub fn into_parts(self) -> (SharedRegion, OwnedFd) {
        (self.region, self.fd)
    }

    /// A reference to a `T` at byte `offset` of the region.
    ///
    /// `T` is [`TearSafe`]: any bytes are a valid `T`, since the other
    /// process may write anything there. A mutex and the data it guards
    /// (a [`crate::mutex::RawMutex`], a `ProcessMutex` of such data) is
    /// the usual `T`.
    ///
    /// Errors: `EINVAL` if the `T` would not lie inside the region or
    /// `offset` is not aligned for it.
    pub fn get<T: TearSafe>(&self, offset: usize) -> Result<&T> {
        let end = offset.checked_add(size_of::<T>()).ok_or(Errno::INVAL)?;
        if end > self.len() || offset % align_of::<T>() != 0 {
            return Err(Errno::INVAL);
        }
        // SAFETY: inside the mapping (checked), aligned (page-aligned base,
        // aligned offset), any bytes are a valid T, and T changes only
        // through `&T` (ShmSafe); the reference lives no longer than self.
        Ok(unsafe { &*self.as_ptr().add(offset).cast::<T>() })
    }
}

impl AsFd for SealedRegion {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A memfd of `len` zero bytes sealed with [`SEALS`].
pub(crate) fn sealed_memfd(len: usize) -> Result<OwnedFd> {
    if len == 0 {
        return Err(Errno::INVAL);
    }
    if len > isize::MAX as usize {
        return Err(Errno::NOMEM);
    }
    let fd = memfd_create("rawipc", MemfdFlags::ALLOW_SEALING | MemfdFlags::CLOEXEC)?;
    ftruncate(&fd, len as u64).map_err(|e| match e {
        // tmpfs says EFBIG/EINVAL for sizes it cannot have.
        Errno::FBIG | Errno::INVAL => Errno::NOMEM,
        e => e,
    })?;
    fcntl_add_seals(&fd, SEALS)?;
    Ok(fd)
}

/// The size of a memory file that can never shrink: `F_GET_SEALS` must
/// show `F_SEAL_SHRINK` before `fstat` is asked (a size read before the
/// check could shrink in between).
///
/// Errors: as [`SealedRegion::open`].
pub(crate) fn sealed_size(fd: BorrowedFd<'_>) -> Result<usize> {
    // Files that know nothing of seals (pipes, sockets, disk files) answer
    // EINVAL; a closed fd EBADF.
    let seals = fcntl_get_seals(fd)?;
    if !seals.contains(SealFlags::SHRINK) {
        return Err(Errno::PERM);
    }
    let stat = fstat(fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile || stat.st_size <= 0 {
        return Err(Errno::INVAL);
    }
    usize::try_from(stat.st_size).map_err(|_| Errno::NOMEM)
}

/// Maps the whole of a sealed memory file received from another process
/// (see [`SealedRegion::open`]), borrowing its fd.
pub fn map_sealed(fd: impl AsFd) -> Result<SharedRegion> {
    let fd = fd.as_fd();
    let len = sealed_size(fd)?;
    if len > isize::MAX as usize {
        return Err(Errno::NOMEM);
    }
    map_checked(fd, len)
}

/// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)` of a memory
/// file known to hold at least `len` bytes for as long as it is mapped.
pub(crate) fn map_checked(fd: BorrowedFd<'_>, len: usize) -> Result<SharedRegion> {
    // SAFETY: a fresh mapping at an address the kernel chooses aliases no
    // Rust object; the file cannot shrink below `len` (sealed), so no page
    // of the mapping can fault with SIGBUS.
    let ptr = unsafe {
        mmap(
            ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            fd,
            0,
        )?
    };
    let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(Errno::NOMEM)?;
    Ok(SharedRegion { ptr, len })
}
