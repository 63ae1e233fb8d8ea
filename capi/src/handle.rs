//! Handles: the opaque structs (`rawipc_chan`, `rawipc_call`,
//! `rawipc_splice_writer`) that a C caller allocates, in its own memory, for
//! rawipc to keep one object's state in.
//!
//! A handle is a [`Handle`]: a magic number, one of its own per kind of
//! handle, then the state. The magic is written with the state when a
//! handle is made and cleared when it is closed, so that what a C caller
//! passes can be told apart before anything in it is trusted: NULL, a
//! misaligned pointer, memory never made into a handle, a handle already
//! closed, and a handle of another kind are EINVAL, never undefined
//! behaviour (where the memory is at least readable: an unmapped pointer
//! cannot be told from C).
//!
//! Each family says what its handle holds by implementing [`Kind`] on its
//! C struct; one made before `fork` with both sides in it, and turned into
//! one side in each process, implements [`Sided`] too.

use core::ffi::c_int;
use core::mem::{align_of, size_of};
use core::ptr;

use rawipc_core::Errno;

use crate::fail;

/// What a handle holds, behind the magic that says it was made.
#[repr(C)]
pub(crate) struct Handle<S> {
    magic: u64,
    state: S,
}

/// A C handle type and the state it holds.
///
/// # Safety
/// `Self` must be a `#[repr(C)]` struct of private plain bytes that only
/// this module reads or writes, and `MAGIC` must be nonzero and differ from
/// every other `Kind`'s (it is what tells a handle of another kind).
pub(crate) unsafe trait Kind: Sized {
    /// What the handle holds once made.
    type State;
    /// Tells a handle of this kind, made and not closed.
    const MAGIC: u64;
}

/// A kind of handle made with both sides in it, which each process then
/// turns into one side ([`take_side`]).
pub(crate) trait Sided: Kind {
    /// The state with both sides, not yet given one.
    type Both;
    /// The both-sides value in `state`, or `state` back if it has a side.
    fn both(state: Self::State) -> Result<Self::Both, Self::State>;
}

/// EINVAL unless `p` could hold a handle of kind `T`: not NULL, and aligned
/// as `T`. (A `Handle` fits in a `T`: checked when this is compiled.)
fn place<T: Kind>(p: *const T) -> Result<*mut Handle<T::State>, Errno> {
    const {
        assert!(size_of::<Handle<T::State>>() <= size_of::<T>());
        assert!(align_of::<Handle<T::State>>() <= align_of::<T>());
    }
    if p.is_null() || !p.is_aligned() {
        return Err(Errno::INVAL);
    }
    Ok(p.cast::<Handle<T::State>>().cast_mut())
}

/// The made handle at `p`: EINVAL for NULL, a misaligned pointer, or memory
/// without `T`'s magic (never made, closed, or of another kind).
///
/// # Safety
/// A non-NULL `p` must point to readable memory for a `T`.
unsafe fn made<T: Kind>(p: *const T) -> Result<*mut Handle<T::State>, Errno> {
    let h = place(p)?;
    // SAFETY: aligned, in memory for a `T` (the caller's promise), which a
    // Handle fits in; the magic is read as a plain integer before the rest
    // is trusted.
    if unsafe { ptr::addr_of!((*h).magic).read() } != T::MAGIC {
        return Err(Errno::INVAL);
    }
    Ok(h)
}

/// The state of the handle at `p`, to change: EINVAL as [`made`].
///
/// # Safety
/// A non-NULL `p` must point to a `T` the caller lets us use, for `'a`.
pub(crate) unsafe fn state_mut<'a, T: Kind>(p: *mut T) -> Result<&'a mut T::State, Errno> {
    // SAFETY: the caller's promise is passed on.
    let h = unsafe { made(p) }?;
    // SAFETY: the magic says a Handle was written here and not closed.
    Ok(unsafe { &mut (*h).state })
}

/// As [`state_mut`], for a handle that is only read.
///
/// # Safety
/// A non-NULL `p` must point to a `T` the caller lets us read, for `'a`.
pub(crate) unsafe fn state<'a, T: Kind>(p: *const T) -> Result<&'a T::State, Errno> {
    // SAFETY: the caller's promise is passed on.
    let h = unsafe { made(p) }?;
    // SAFETY: the magic says a Handle was written here and not closed.
    Ok(unsafe { &(*h).state })
}

/// Makes a handle at `p`: checks `p` (EINVAL for NULL or misaligned) before
/// calling `make`, then stores what it made. Returns 0, or -1 with errno
/// set (EINVAL, or `make`'s error), `*p` untouched.
///
/// # Safety
/// A non-NULL `p` must point to writable memory for a `T`, which must not
/// hold a handle still open (it would be leaked).
pub(crate) unsafe fn put<T: Kind>(
    p: *mut T,
    make: impl FnOnce() -> Result<T::State, Errno>,
) -> c_int {
    let at = match place(p) {
        Ok(at) => at,
        Err(e) => return fail(e),
    };
    match make() {
        Ok(state) => {
            let h = Handle {
                magic: T::MAGIC,
                state,
            };
            // SAFETY: the caller's promise; aligned, and a Handle fits in a T.
            unsafe { at.write(h) };
            0
        }
        Err(e) => fail(e),
    }
}

/// Turns the made handle at `p` from both sides into the side `side` makes
/// of them: EINVAL as [`made`], or if it already has a side (then it is
/// left as it is).
///
/// # Safety
/// A non-NULL `p` must point to a `T` the caller lets us use.
pub(crate) unsafe fn take_side<T: Sided>(
    p: *mut T,
    side: impl FnOnce(T::Both) -> T::State,
) -> Result<(), Errno> {
    // SAFETY: the caller's promise is passed on.
    let h = unsafe { made(p) }?;
    // SAFETY: a made handle (the magic said so), which the caller lets us use.
    let h = unsafe { &mut *h };
    // Move the state out, leaving no handle behind until one is back in.
    h.magic = 0;
    // SAFETY: the state is valid; it is read once, and a state is written
    // back in its place right below on every path, without dropping this.
    let old = unsafe { ptr::read(&h.state) };
    let (new, r) = match T::both(old) {
        Ok(both) => (side(both), Ok(())),
        Err(unchanged) => (unchanged, Err(Errno::INVAL)),
    };
    // SAFETY: overwrites the moved-out state without dropping it.
    unsafe { ptr::write(&mut h.state, new) };
    h.magic = T::MAGIC;
    r
}

/// Closes the made handle at `p`: clears its magic (a closed handle is
/// EINVAL from then on) and drops its state, which unmaps and closes what
/// it holds. Returns 0, or -1 with errno EINVAL as [`made`].
///
/// # Safety
/// A non-NULL `p` must point to a `T` the caller lets us use.
pub(crate) unsafe fn close<T: Kind>(p: *mut T) -> c_int {
    // SAFETY: the caller's promise is passed on.
    match unsafe { made(p) } {
        Ok(h) => {
            // SAFETY: a made handle (the magic said so), which the caller
            // lets us use.
            let h = unsafe { &mut *h };
            h.magic = 0;
            // SAFETY: the state is valid (the magic said so) and, the magic
            // cleared, is dropped once.
            unsafe { ptr::drop_in_place(&mut h.state) };
            0
        }
        Err(e) => fail(e),
    }
}
