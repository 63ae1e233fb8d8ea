//! Shared memory: an anonymous `MAP_SHARED` mapping, made before `fork`, that
//! parent and child both see.
//!
//! The notes: "the OS has no control over this memory ... It has no checking
//! for type, data, or anything". [`SharedRegion`] is that raw memory;
//! [`Shared<T>`] adds the checking: it holds one value of a type that is
//! [`ShmSafe`], and hands out only `&T`, so every change goes through atomics
//! or another interior mutability that works between processes.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, needs_drop, size_of};
use core::ops::Deref;
use core::ptr::{self, NonNull};
use core::sync::atomic;

use rustix::mm::{MapFlags, ProtFlags, mmap_anonymous, munmap};

use crate::{Errno, Result};

mod memfd;
pub use memfd::{SEALS, SealedRegion, map_sealed};
pub(crate) use memfd::{map_checked, sealed_memfd, sealed_size};

/// An anonymous shared mapping: readable, writable, zero-filled, inherited by
/// every child forked after it was made, and unmapped (in this process) on drop.
pub struct SharedRegion {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain memory; it hands out only raw pointers, whose
// use is the caller's unsafe business.
unsafe impl Send for SharedRegion {}
// SAFETY: as above; `&SharedRegion` gives no access to the bytes by itself.
unsafe impl Sync for SharedRegion {}

impl SharedRegion {
    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)`:
    /// maps `len` bytes of zero-filled shared memory.
    ///
    /// Errors: `EINVAL` if `len` is 0, `ENOMEM` if the memory cannot be had
    /// (including any `len` above `isize::MAX`).
    ///
    /// # References
    /// - [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html)
    #[doc(alias = "mmap")]
    pub fn new(len: usize) -> Result<Self> {
        if len == 0 {
            return Err(Errno::INVAL);
        }
        if len > isize::MAX as usize {
            return Err(Errno::NOMEM);
        }
        // SAFETY: a fresh anonymous mapping at an address the kernel chooses
        // cannot alias any existing Rust object.
        let ptr = unsafe {
            mmap_anonymous(
                ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(Errno::NOMEM)?;
        Ok(Self { ptr, len })
    }

    /// The first byte of the region (page-aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The length asked of [`SharedRegion::new`] (the kernel maps whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a region has at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `mremap(addr, 0, len, MREMAP_MAYMOVE)`: a second mapping of the same
    /// shared pages at another address, owned on its own (what one writes,
    /// the other sees).
    ///
    /// Errors: `ENOMEM`.
    ///
    /// # References
    /// - [mremap(2)](https://man7.org/linux/man-pages/man2/mremap.2.html)
    #[doc(alias = "mremap")]
    pub fn map_again(&self) -> Result<Self> {
        // SAFETY: with an old size of 0 on a shared mapping, mremap leaves
        // the old mapping alone and makes a new one, which aliases no Rust
        // object (the region only hands out raw pointers).
        let ptr = unsafe {
            rustix::mm::mremap(
                self.as_ptr().cast(),
                0,
                self.len,
                rustix::mm::MremapFlags::MAYMOVE,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(Errno::NOMEM)?;
        Ok(Self { ptr, len: self.len })
    }

    /// Gives up ownership without unmapping; see [`SharedRegion::from_raw`].
    pub fn into_raw(self) -> (*mut u8, usize) {
        let parts = (self.ptr.as_ptr(), self.len);
        core::mem::forget(self);
        parts
    }

    /// Takes ownership of a mapping made by [`SharedRegion::new`] and given up
    /// by [`SharedRegion::into_raw`].
    ///
    /// # Safety
    /// `ptr` and `len` must come from `into_raw`, and nothing else may own or
    /// unmap that mapping in this process.
    pub unsafe fn from_raw(ptr: *mut u8, len: usize) -> Self {
        // SAFETY: the caller passes a non-null pointer from `into_raw`.
        let ptr = unsafe { NonNull::new_unchecked(ptr) };
        Self { ptr, len }
    }
}

impl Drop for SharedRegion {
    /// `munmap`: the mapping goes away in this process only; other processes
    /// keep theirs.
    fn drop(&mut self) {
        // SAFETY: we own the mapping, and no reference into it outlives self.
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

impl fmt::Debug for SharedRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRegion")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

/// Types that are sound to keep in memory shared between processes.
///
/// Processes that share a mapping share its bytes and nothing else: a pointer
/// into one process's heap or stack means nothing to another, a lock built on
/// a process-private futex never wakes another process, and two processes
/// writing the same plain bytes at once is a data race.
///
/// # Safety
/// Implement this only for a type that
/// - holds no pointers or references (nor anything that owns them: `Box`,
///   `&T`, file descriptors as handles, `std::sync::Mutex`);
/// - is mutated, through `&self`, only by atomics or another interior
///   mutability that is correct between processes;
/// - has no destructor (checked by [`Shared::new`]): a value that lives in two
///   processes at once has no single owner to drop it.
pub unsafe trait ShmSafe: Sync {}

macro_rules! shm_safe {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: plain bytes or an atomic: no pointer, no destructor.
        unsafe impl ShmSafe for $t {}
    )* };
}

shm_safe!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    atomic::AtomicBool,
    atomic::AtomicU8,
    atomic::AtomicU16,
    atomic::AtomicU32,
    atomic::AtomicU64,
    atomic::AtomicUsize,
    atomic::AtomicI8,
    atomic::AtomicI16,
    atomic::AtomicI32,
    atomic::AtomicI64,
    atomic::AtomicIsize,
);

// SAFETY: an array of sound elements is sound.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}
// SAFETY: PhantomData has no bytes.
unsafe impl<T: ?Sized> ShmSafe for PhantomData<T> where PhantomData<T>: Sync {}

/// One value of type `T` in shared memory: the typed, checked version of the
/// notes' `glob_var`.
///
/// Made before `fork`, it is the same value in the parent and in the child.
/// It dereferences to `&T`; the value's destructor never runs (`T` has none).
///
/// What would point into one process's memory does not compile:
///
/// ```compile_fail,E0277
/// rawipc::shm::Shared::new(vec![1u8, 2, 3]); // Vec<u8> is not ShmSafe
/// ```
/// ```compile_fail,E0277
/// rawipc::shm::Shared::new(Box::new(5u32)); // nor is Box<u32>
/// ```
/// ```compile_fail,E0277
/// rawipc::shm::Shared::new(String::from("no")); // nor String
/// ```
/// ```compile_fail,E0277
/// rawipc::shm::Shared::new(&5u32); // nor a reference
/// ```
///
/// Nor does a type with a destructor, even one wrongly declared `ShmSafe`
/// (the check runs when `Shared::new` is instantiated for it, so `cargo
/// check` alone may not report it; `cargo build` does):
///
/// ```compile_fail,E0080
/// struct Noisy(u8);
/// impl Drop for Noisy {
///     fn drop(&mut self) {}
/// }
/// // SAFETY: not sound (Noisy has a destructor); Shared::new refuses it.
/// unsafe impl rawipc::shm::ShmSafe for Noisy {}
/// let _ = rawipc::shm::Shared::new(Noisy(1));
/// ```
pub struct Shared<T: ShmSafe> {
    region: SharedRegion,
    _value: PhantomData<T>,
}

impl<T: ShmSafe> Shared<T> {
    /// Maps shared memory for one `T` and moves `value` into it.
    ///
    /// Errors: as [`SharedRegion::new`]; `EINVAL` if `T` needs an alignment
    /// larger than a page. A `T` with a destructor does not compile.
    pub fn new(value: T) -> Result<Self> {
        const {
            assert!(
                !needs_drop::<T>(),
                "a Shared<T> value is never dropped: T must not need drop"
            )
        };
        if align_of::<T>() > 4096 {
            return Err(Errno::INVAL);
        }
        let region = SharedRegion::new(size_of::<T>().max(1))?;
        // SAFETY: the mapping is page-aligned (so aligned for T), large enough
        // for a T, and not yet shared with anyone.
        unsafe { region.as_ptr().cast::<T>().write(value) };
        Ok(Self {
            region,
            _value: PhantomData,
        })
    }

    /// The value's address (the same in every process forked after `new`).
    pub fn as_ptr(&self) -> *const T {
        self.region.as_ptr().cast::<T>().cast_const()
    }
}

impl<T: ShmSafe> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `new` wrote a valid T; it is only ever changed through `&T`
        // (ShmSafe's contract), and the mapping lives as long as self.
        unsafe { &*self.as_ptr() }
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Shared").field(&**self).finish()
    }
}
