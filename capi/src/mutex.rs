//! The process-shared mutex, for C: `rawipc_mutex_*`.
//!
//! POSIX robust, process-shared mutexes (`pthread_mutex_*`) return an error
//! number; these follow rawipc's convention instead and return -1 with
//! `errno` set, so `EOWNERDEAD` comes as -1 with `errno == EOWNERDEAD`.

use core::ffi::c_int;
use core::mem::{align_of, size_of};

use rawipc_core::Errno;
use rawipc_core::mutex::{Acquired, RawMutex};

use crate::{fail, timeout};

/// A mutex that processes sharing memory can lock, and that survives the
/// death of its holder. Put it in memory from rawipc_shared_alloc (which
/// is zero-filled, and a zero-filled rawipc_mutex is unlocked) before fork,
/// or from rawipc_shared_create (zero-filled too) to share it with a
/// process that did not fork from this one, or initialize it with
/// rawipc_mutex_init. `word` is rawipc's alone: read
/// or write it only through the rawipc_mutex_* functions.
///
/// When the process holding it dies, the next locker gets the lock with
/// -1 and errno EOWNERDEAD; it repairs the data, calls
/// rawipc_mutex_consistent and goes on. If it unlocks without doing so, every
/// later lock fails with ENOTRECOVERABLE. The holder is a process: a thread
/// that dies holding it, while its process lives on, is not detected.
#[repr(C)]
pub struct rawipc_mutex {
    /// 0 when unlocked; else the holder's process id in bits 0-21 and its
    /// process's tag (which tells it from an earlier process of the same id)
    /// in bits 22-29, bit 30 set after EOWNERDEAD until
    /// rawipc_mutex_consistent, bit 31 set while waiters may sleep;
    /// 0x3fffffff (any bits 30-31) when not recoverable.
    pub word: u32,
}

// The C type is the core's RawMutex (an AtomicU32, laid out as a u32).
const _: () = assert!(
    size_of::<rawipc_mutex>() == size_of::<RawMutex>()
        && align_of::<rawipc_mutex>() == align_of::<RawMutex>()
);

/// The caller's mutex: EINVAL for NULL or a pointer not aligned for one.
///
/// # Safety
/// A non-NULL, aligned `m` must point to a rawipc_mutex that stays valid for
/// the call.
unsafe fn mutex<'a>(m: *mut rawipc_mutex) -> Result<&'a RawMutex, Errno> {
    if m.is_null() || !m.is_aligned() {
        return Err(Errno::INVAL);
    }
    // SAFETY: the caller's promise; same size and alignment (checked above),
    // and RawMutex is repr(C) around an AtomicU32, which has u32's layout.
    Ok(unsafe { &*m.cast::<RawMutex>() })
}

/// The C return value of a lock.
fn acquired(result: Result<Acquired, Errno>) -> c_int {
    match result {
        Ok(Acquired::Normal) => 0,
        Ok(Acquired::OwnerDied) => fail(Errno::OWNERDEAD),
        Err(e) => fail(e),
    }
}

/// Makes `*m` an unlocked mutex, whatever it held (like
/// pthread_mutex_init; do not use it on a mutex other processes may be using).
///
/// Returns 0, or -1 with errno EINVAL if `m` is NULL or misaligned.
///
/// # Safety
/// A non-NULL `m` must point to a writable rawipc_mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_mutex_init(m: *mut rawipc_mutex) -> c_int {
    if m.is_null() || !m.is_aligned() {
        return fail(Errno::INVAL);
    }
    // SAFETY: the caller's promise; aligned and not NULL.
    unsafe { m.write(rawipc_mutex { word: 0 }) };
    0
}

/// Locks `*m`, waiting as long as a live process holds it, and retrying if a
/// signal interrupts.
///
/// Returns 0 with the lock held. Returns -1 with errno set:
/// - EOWNERDEAD: the holder's process died holding it. The caller holds the
///   lock now; the data may be half-updated. Repair it, then call
///   rawipc_mutex_consistent; unlocking without that makes the mutex
///   not recoverable.
/// - ENOTRECOVERABLE: the mutex was unlocked after EOWNERDEAD without
///   rawipc_mutex_consistent; it can no longer be locked (not held).
/// - EINVAL: `m` is NULL or misaligned (not held).
///
/// Unlike pthread_mutex_lock, which returns the error number, this returns -1
/// and sets errno, like every rawipc function.
///
/// # Safety
/// A non-NULL `m` must point to a rawipc_mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_mutex_lock(m: *mut rawipc_mutex) -> c_int {
    // SAFETY: the caller's promise is passed on.
    acquired(unsafe { mutex(m) }.and_then(RawMutex::lock))
}

/// Locks `*m` if no live process holds it, without waiting.
///
/// Returns 0 with the lock held, or -1 with errno set: EBUSY if a live
/// process (this one included) holds it; EOWNERDEAD (lock held),
/// ENOTRECOVERABLE and EINVAL as rawipc_mutex_lock.
///
/// # Safety
/// A non-NULL `m` must point to a rawipc_mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_mutex_trylock(m: *mut rawipc_mutex) -> c_int {
    // SAFETY: the caller's promise is passed on.
    acquired(unsafe { mutex(m) }.and_then(RawMutex::try_lock))
}

/// Locks `*m` as rawipc_mutex_lock does, waiting at most `timeout_ms`
/// milliseconds (-1: no bound; 0: no wait), like pthread_mutex_timedlock
/// (which takes an absolute time; this takes a poll(2)-style timeout and
/// keeps it as a deadline on CLOCK_MONOTONIC, which signals do not move).
///
/// Returns 0 with the lock held, or -1 with errno set: ETIMEDOUT (a live
/// process still held it at the deadline; not held); EOWNERDEAD (the holder
/// died, before or at the deadline: the lock is held, repair as after
/// rawipc_mutex_lock); ENOTRECOVERABLE as rawipc_mutex_lock; EINVAL (`m`
/// NULL or misaligned, `timeout_ms` below -1).
///
/// # Safety
/// A non-NULL `m` must point to a rawipc_mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_mutex_timedlock(m: *mut rawipc_mutex, timeout_ms: c_int) -> c_int {
    // SAFETY: the caller's promise is passed on.
    let m = unsafe { mutex(m) };
    acquired(timeout(timeout_ms).and_then(|t| match t {
        None => m?.lock(),
        Some(t) => m?.lock_timeout(t),
    }))
}

/// Unlocks `*m` and wakes a waiter. After EOWNERDEAD without
/// rawipc_mutex_consistent, this leaves the mutex not recoverable.
///
/// Returns 0, or -1 with errno set: EPERM if this process does not hold it,
/// EINVAL if `m` is NULL or misaligned.
///
/// # Safety
/// A non-NULL `m` must point to a rawipc_mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_mutex_unlock(m: *mut rawipc_mutex) -> c_int {
    // SAFETY: the caller's promise is passed on.
    match unsafe { mutex(m) }.and_then(RawMutex::unlock) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// Marks `*m`, got with EOWNERDEAD and repaired, consistent again, so that
/// unlocking it leaves an ordinary mutex (like pthread_mutex_consistent).
///
/// Returns 0, or -1 with errno EINVAL if `m` is NULL or misaligned, or if
/// this process does not hold it after EOWNERDEAD.
///
/// # Safety
/// A non-NULL `m` must point to a rawipc_mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rawipc_mutex_consistent(m: *mut rawipc_mutex) -> c_int {
    // SAFETY: the caller's promise is passed on.
    match unsafe { mutex(m) }.and_then(RawMutex::mark_consistent) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}
