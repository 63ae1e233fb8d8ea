//! Shared memory: `mmap(MAP_SHARED | MAP_ANONYMOUS)`, as the notes make it.

use core::ffi::{c_int, c_void};

use rawipc_core::Errno;

use crate::fail;

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
