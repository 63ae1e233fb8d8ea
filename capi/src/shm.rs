//! Shared memory: `mmap(MAP_SHARED | MAP_ANONYMOUS)`, as the notes make it,
//! and sealed memfds for processes that did not fork from each other.

use core::ffi::{c_int, c_void};

use rawipc_core::shm::{SealedRegion, map_sealed};
use rawipc_core::{Errno, IntoRawFd};

use crate::{borrow_fd, fail};

/// Maps `size` bytes of zero-filled memory shared with every child forked
/// afterwards: `mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED |
/// MAP_ANONYMOUS, -1, 0)`.
///
/// Returns the memory's address (page-aligned), or NULL with errno set:
/// EINVAL if `size` is 0 or above SSIZE_MAX, ENOMEM if that much memory
/// cannot be had. Free it with rawipc_shared_free(addr, size), in each
/// process that has it.
#[unsafe(no_mangle)]
pub extern "C" fn rawipc_shared_alloc(size: usize) -> *mut c_void {
    if size > isize::MAX as usize {
        return fail(Errno::INVAL);
    }
    match rawipc_core::shm::SharedRegion::new(size) {
        Ok(region) => region.into_raw().0.cast(),
        Err(e) => fail(e),
    }
}

/// Unmaps shared memory from rawipc_shared_alloc: `munmap(addr, size)`, with
/// the same `size` as the allocation. Other processes keep their mapping.
///
/// Returns 0, or -1 with errno set: EINVAL if `addr` is NULL or not
/// page-aligned, or if `size` is 0.
///
/// # Safety
/// Nothing in this process may use the memory afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_shared_free(addr: *mut c_void, size: usize) -> c_int {
    if addr.is_null() || size == 0 {
        return fail(Errno::INVAL);
    }
    // SAFETY: the caller gives the mapping up; munmap checks alignment.
    match unsafe { rustix::mm::munmap(addr, size) } {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// Makes `size` bytes of zero-filled memory to share with a process that did
/// not fork from this one: a memfd (memfd_create with MFD_ALLOW_SEALING |
/// MFD_CLOEXEC, no name on any file system) sized to `size` and sealed with
/// F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, so that nobody can ever shrink
/// it and make a process using it die of SIGBUS. Maps it and stores its fd
/// in `*fd` (close-on-exec, the caller's): send that fd with
/// rawipc_msg_send_fds, the receiver maps it with rawipc_shared_open. The
/// memory lives as long as some process maps it or holds an fd for it.
///
/// Returns the memory's address (page-aligned), or NULL with errno set:
/// EFAULT if `fd` is NULL, EINVAL if `size` is 0, ENOMEM, EMFILE/ENFILE.
/// Free it with rawipc_shared_free(addr, size) and close the fd.
///
/// # Safety
/// A non-NULL `fd` must point to a writable int.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_shared_create(size: usize, fd: *mut c_int) -> *mut c_void {
    if fd.is_null() {
        return fail(Errno::FAULT);
    }
    match SealedRegion::create(size) {
        Ok(region) => {
            let (region, memfd) = region.into_parts();
            // SAFETY: the caller's promise above; the fd is now the caller's.
            unsafe { fd.write(memfd.into_raw_fd()) };
            region.into_raw().0.cast()
        }
        Err(e) => fail(e),
    }
}

/// Maps the whole of a shared memory region received from another process
/// (an fd from rawipc_shared_create, passed with rawipc_msg_send_fds), after
/// checking that it cannot make this process die of SIGBUS: it must be a
/// memfd sealed against shrinking. Its size is read after that check and
/// stored in `*size`. `fd` stays the caller's (it may be closed at once: the
/// mapping keeps the memory).
///
/// Returns the memory's address (page-aligned), or NULL with errno set:
/// EPERM if the memory could still be shrunk (no F_SEAL_SHRINK: refuse such
/// a peer), or is sealed against writing; EINVAL if `fd` is not a memfd (a
/// pipe, a socket, a file on disk) or is empty; EACCES if it is not open for
/// reading and writing; EFAULT if `size` is NULL; EBADF; ENOMEM.
/// Free it with rawipc_shared_free(addr, *size).
///
/// # Safety
/// A non-NULL `size` must point to a writable size_t.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_shared_open(fd: c_int, size: *mut usize) -> *mut c_void {
    if size.is_null() {
        return fail(Errno::FAULT);
    }
    match borrow_fd(fd).and_then(map_sealed) {
        Ok(region) => {
            let (addr, len) = region.into_raw();
            // SAFETY: the caller's promise above.
            unsafe { size.write(len) };
            addr.cast()
        }
        Err(e) => fail(e),
    }
}
