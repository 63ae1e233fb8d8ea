//! A process-shared mutex in shared memory that survives the death of its
//! holder.
//!
//! The notes share memory between a parent and its children; [`ProcessMutex`]
//! lets them take turns changing a value in it. It behaves like a POSIX
//! *robust* mutex (`PTHREAD_PROCESS_SHARED` + `PTHREAD_MUTEX_ROBUST`): when the
//! process holding it dies (say of `SIGKILL`, in the middle of an update),
//! the next locker is not left waiting forever but gets the lock with
//! [`LockError::OwnerDied`], which hands it the data to repair. It then calls
//! [`MutexGuard::mark_consistent`]; if it unlocks without doing so, the mutex
//! is *not recoverable* and every later lock fails with
//! [`LockError::NotRecoverable`] (`ENOTRECOVERABLE`).
//!
//! ```no_run
//! use rawipc::mutex::{LockError, ProcessMutex};
//! use rawipc::shm::Shared;
//!
//! # fn main() -> Result<(), rawipc::Errno> {
//! // Made before fork, so that the children share it.
//! let balance = Shared::new(ProcessMutex::new([0u64; 2]))?;
//! let mut guard = match balance.lock() {
//!     Ok(guard) => guard,
//!     Err(LockError::OwnerDied(mut guard)) => {
//!         // Whoever held it died, maybe half-way through an update: repair.
//!         guard[1] = guard[0];
//!         guard.mark_consistent();
//!         guard
//!     }
//!     Err(e) => return Err(e.errno()),
//! };
//! guard[0] += 1;
//! guard[1] += 1;
//! drop(guard);
//!
//! // The same, where `?` is wanted: the repair is a closure.
//! let mut guard = balance.lock_and_repair(|b| b[1] = b[0])?;
//! guard[0] += 1;
//! guard[1] += 1;
//! # Ok(())
//! # }
//! ```
//!
//! A [`LockError`] does not convert into [`Errno`] or `Box<dyn Error>` by
//! itself: `?` would drop the guard of [`LockError::OwnerDied`] unrepaired,
//! which makes the mutex not recoverable for good. So this does not compile:
//!
//! ```compile_fail
//! fn bump(m: &rawipc::mutex::ProcessMutex<u64>) -> rawipc::Result<()> {
//!     *m.lock()? += 1;
//!     Ok(())
//! }
//! ```
//!
//! # How it works, and its limits
//! The mutex is one 32-bit futex word: 0 when free, else the holder (its
//! *process* id and a tag its process draws) plus two flags (waiters may
//! sleep; the previous holder died). Locking and unlocking a free mutex is
//! one compare-exchange each, and an increment of the count of mutexes this
//! process holds, in its own memory, with no system call. A locker that
//! finds it taken spins briefly, then sleeps on the futex, checking that the
//! holder's process still runs at once and then every 20 ms by the clock,
//! whatever signals interrupt the sleep (`pidfd_open` + `poll`, which also
//! sees a zombie that nobody has reaped yet as dead; with no fd to spare,
//! `waitid(WNOWAIT)` and `process_vm_readv`, which see a zombie as dead too).
//! If it is gone, the locker takes the lock over.
//!
//! A process that finds its own id in the word while it holds no mutex at
//! all, or its pid under another tag, knows that a dead process had its pid
//! before it (ids are reused), and takes the lock over instead of waiting
//! for itself.
//!
//! It does not use the kernel's robust futex list (`set_robust_list`): there
//! is one list per thread, and libc already owns it for its own robust
//! `pthread` mutexes, which another registration would break. So:
//! - "Owner" means a process. A thread that dies holding the mutex while its
//!   process lives on is not detected, and any thread of the holding process
//!   may unlock it. Locking it twice in one thread deadlocks.
//! - A process that calls `exec` while it holds the mutex counts, once it
//!   runs the new program, as a holder that died: the next locker gets
//!   [`LockError::OwnerDied`].
//! - Process ids are compared, so every user must be in the same pid
//!   namespace (children made by `fork` are).
//! - If the holder dies and the kernel gives its process id to a new,
//!   unrelated process before anyone checked, the mutex looks held until that
//!   process ends too (if that process is the locker itself, it takes the
//!   mutex over, unless it holds another mutex and drew the dead holder's
//!   tag, one chance in 255: then it waits until it holds no mutex). Linux hands out ids in increasing order, wrapping at
//!   `/proc/sys/kernel/pid_max`, so this needs that many new processes in
//!   the meantime; a waiter that is already sleeping checks every 20 ms.
//! - A waiter notices a dead holder within about 20 ms, not at once.
//! - A panic that unwinds through a guard unlocks normally (a `no_std`
//!   library cannot tell a panic from a return). With `panic = "abort"` a
//!   panic ends the process, and the next locker gets `OwnerDied`.
//!
//! Whatever another process writes into the word (a bug, or a hostile peer),
//! no call misbehaves beyond losing mutual exclusion: a value whose process
//! id is not a running process counts as a dead holder.
//!
//! # References
//! - [pthread_mutexattr_setrobust(3)](https://man7.org/linux/man-pages/man3/pthread_mutexattr_setrobust.3.html)
//! - [pthread_mutex_consistent(3)](https://man7.org/linux/man-pages/man3/pthread_mutex_consistent.3.html)
//! - [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)
//! - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)

use core::cell::UnsafeCell;
use core::fmt;
use core::hint::spin_loop;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr;
use core::sync::atomic::{self, AtomicPtr, AtomicU32, Ordering};

use core::time::Duration;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::mm::{Advice, MapFlags, ProtFlags, madvise, mmap_anonymous, munmap};
use rustix::process::{
    Pid, PidfdFlags, WaitId, WaitIdOptions, getpid, pidfd_open, test_kill_process, waitid,
};

use rustix::thread::futex;

use crate::chan::wait::sleep_until;
use crate::deadline::Patience;
use crate::sys::monotonic_ns;

use crate::shm::ShmSafe;
use crate::{Errno, Result, retry};

/// Set while a locker may be sleeping on the futex: unlock must wake one.
const WAITERS: u32 = 1 << 31;
/// Set when the holder took the lock over from a dead process and has not
/// marked the data consistent yet.
const OWNER_DIED: u32 = 1 << 30;
/// The holder: its process id (thread-group id) and its process's tag.
const PID_MASK: u32 = OWNER_DIED - 1;
/// Unlocked without being marked consistent: no one may lock it any more.
/// No holder is this (no tag is 255).
const NOT_RECOVERABLE: u32 = PID_MASK;
/// The kernel's `PID_MAX_LIMIT`: every process id is below it.
const PID_MAX_LIMIT: u32 = 1 << 22;
/// The process id in a holder: the bits below [`PID_MAX_LIMIT`].
const PID_BITS: u32 = PID_MAX_LIMIT - 1;
/// Where a holder's tag starts: 8 bits that tell apart two processes that
/// had the same id one after the other.
const TAG_SHIFT: u32 = 22;
/// How many times a locker looks again before it sleeps: a few µs, about
/// what a short critical section takes, and far less than a wake-up (~25 µs).
const SPINS: u32 = 100;
/// How often a waiting locker checks whether the holder still lives, in ns.
const NAP_NS: u64 = 20_000_000;

/// How a lock was acquired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Acquired {
    /// The mutex was free, or its holder unlocked it.
    Normal,
    /// The holder's process died holding it (`EOWNERDEAD`): the caller holds
    /// the lock now, and must repair the data it protects and call
    /// [`RawMutex::mark_consistent`], or unlock it into the not-recoverable
    /// state.
    OwnerDied,
}

/// The mutex itself, without data: a 32-bit futex word, zero when unlocked.
///
/// This is the C library's `rawipc_mutex`. In Rust, [`ProcessMutex`] pairs it
/// with the value it protects and unlocks it when its guard goes away.
///
/// The word is 0 when unlocked; else the holder's process id in bits 0-21
/// and its process's tag in bits 22-29, bit 30 set from [`Acquired::OwnerDied`] until
/// [`RawMutex::mark_consistent`], bit 31 set while waiters may sleep; its
/// low 30 bits all set when not recoverable.
///
/// Every bit pattern is a valid `RawMutex` (all zeros is an unlocked one), so
/// it can sit in any zero-filled shared memory and nothing another process
/// writes into it makes a call misbehave.
#[repr(C)]
#[derive(Default)]
pub struct RawMutex {
    word: AtomicU32,
}

// SAFETY: a single atomic, correct between processes (its futex is not
// PRIVATE), with no pointer and no destructor.
unsafe impl ShmSafe for RawMutex {}

impl RawMutex {
    /// An unlocked mutex.
    pub const fn new() -> Self {
        Self {
            word: AtomicU32::new(0),
        }
    }

    /// Locks the mutex, waiting as long as a live process holds it.
    ///
    /// Returns [`Acquired::OwnerDied`] (with the lock held) if the previous
    /// holder's process died holding it. Retries `EINTR`.
    ///
    /// Errors: `ENOTRECOVERABLE` if the mutex was unlocked after an owner died
    /// without being marked consistent.
    ///
    /// # References
    /// - [pthread_mutex_lock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_lock.3p.html)
    #[inline]
    pub fn lock(&self) -> Result<Acquired> {
        self.acquire(true)
    }

    /// Locks the mutex if no live process holds it, without waiting.
    ///
    /// Returns [`Acquired::OwnerDied`] (with the lock held) if the holder's
    /// process is dead. Finding that out costs a few system calls each time
    /// another process holds the mutex; a free mutex costs none.
    ///
    /// Errors: `EBUSY` if a live process (this one included) holds it,
    /// `ENOTRECOVERABLE` as [`RawMutex::lock`].
    ///
    /// # References
    /// - [pthread_mutex_trylock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_trylock.3p.html)
    #[inline]
    pub fn try_lock(&self) -> Result<Acquired> {
        self.acquire(false)
    }

    /// As [`RawMutex::lock`], but waits at most `timeout`, then fails with
    /// `ETIMEDOUT` without the lock (a zero `timeout` does not wait), as
    /// `pthread_mutex_timedlock` does. A holder found dead, before or at
    /// the deadline, still gives [`Acquired::OwnerDied`] with the lock held.
    ///
    /// Errors: `ETIMEDOUT`; `ENOTRECOVERABLE` as [`RawMutex::lock`].
    ///
    /// # References
    /// - [pthread_mutex_timedlock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_timedlock.3p.html)
    #[doc(alias = "timedlock")]
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Acquired> {
        let patience = Patience::after(timeout);
        let me = this_process();
        if self.take(me, 0, me.id) {
            return Ok(Acquired::Normal);
        }
        self.acquire_slow(me, patience)
    }

    /// Unlocks the mutex and wakes a waiter, if there is one.
    ///
    /// If this process took the lock from a dead owner and did not call
    /// [`RawMutex::mark_consistent`], the mutex becomes not recoverable, and
    /// every waiter wakes to `ENOTRECOVERABLE`.
    ///
    /// Errors: `EPERM` if this process does not hold the mutex.
    ///
    /// # References
    /// - [pthread_mutex_unlock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_unlock.3p.html)
    #[inline]
    pub fn unlock(&self) -> Result<()> {
        let me = this_process();
        match self
            .word
            .compare_exchange(me.id, 0, Ordering::Release, Ordering::Relaxed)
        {
            Ok(_) => {
                me.released();
                Ok(())
            }
            Err(_) => self.unlock_slow(me),
        }
    }

    /// Marks a mutex taken over from a dead owner consistent again, so that
    /// unlocking it makes it an ordinary mutex.
    ///
    /// Errors: `EINVAL` if this process does not hold the mutex, or holds it
    /// but did not get it with [`Acquired::OwnerDied`] (or marked it already).
    ///
    /// # References
    /// - [pthread_mutex_consistent(3)](https://man7.org/linux/man-pages/man3/pthread_mutex_consistent.3.html)
    pub fn mark_consistent(&self) -> Result<()> {
        let word = self.word.load(Ordering::Relaxed);
        if word & PID_MASK != this_process().id || word & OWNER_DIED == 0 {
            return Err(Errno::INVAL);
        }
        // Others may set WAITERS meanwhile; only the holder clears OWNER_DIED.
        self.word.fetch_and(!OWNER_DIED, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the holder got the mutex from a dead owner and has not marked
    /// it consistent yet.
    fn owner_died(&self) -> bool {
        let word = self.word.load(Ordering::Relaxed);
        word & OWNER_DIED != 0 && word & PID_MASK != NOT_RECOVERABLE
    }

    #[inline]
    fn acquire(&self, wait: bool) -> Result<Acquired> {
        let patience = match wait {
            true => Patience::Forever,
            false => Patience::None,
        };
        let me = this_process();
        if self.take(me, 0, me.id) {
            return Ok(Acquired::Normal);
        }
        self.acquire_slow(me, patience)
    }

    /// The mutex was taken: spin, then sleep, checking that the holder lives.
    ///
    /// The holder is checked at once, then whenever the absolute time set
    /// for the next check has passed, whatever ended the sleep (a wake, a
    /// signal, a spurious return): a storm of signals cannot put it off.
    #[cold]
    fn acquire_slow(&self, me: Me, patience: Patience) -> Result<Acquired> {
        let mut spins = match patience {
            Patience::None => 0,
            _ => SPINS,
        };
        // When the holder is checked next (monotonic ns): at once.
        let mut next_check = 0;
        // After a sleep other lockers may sleep too, so keep WAITERS set.
        let mut waiters = 0;
        loop {
            let word = self.word.load(Ordering::Acquire);
            let owner = word & PID_MASK;
            if word == 0 {
                if self.take(me, 0, me.id | waiters) {
                    return Ok(Acquired::Normal);
                }
                continue;
            }
            if owner == NOT_RECOVERABLE {
                return Err(Errno::NOTRECOVERABLE);
            }
            // Garbage, or another process that had our id: it is gone.
            let gone = !could_hold(owner) || (owner != me.id && owner & PID_BITS == me.pid());
            if !gone && spins > 0 {
                spins -= 1;
                spin_loop();
                continue;
            }
            let now = monotonic_ns();
            let check = now >= next_check;
            if check {
                next_check = now + NAP_NS;
            }
            if check && owner == me.id {
                // Our id: a dead process's, reused for us, if we hold no
                // mutex at all.
                if let Some(acquired) = self.take_from_former_self(me, waiters) {
                    return Ok(acquired);
                }
            }
            let dead = gone || (check && owner != me.id && !process_alive(owner & PID_BITS));
            if dead {
                // From the exact word seen: of several waiters that found
                // the holder dead, one takes it over.
                if self.take(me, word, me.id | OWNER_DIED | waiters | (word & WAITERS)) {
                    return Ok(Acquired::OwnerDied);
                }
                continue;
            }
            let wake_at = match patience {
                Patience::None => return Err(Errno::BUSY),
                Patience::Forever => next_check,
                // At the deadline, look at the holder once more: one found
                // dead is taken over, not timed out on.
                Patience::Until(d) if now >= d && !check => {
                    next_check = 0;
                    continue;
                }
                Patience::Until(d) if now >= d => return Err(Errno::TIMEDOUT),
                Patience::Until(d) => d.min(next_check),
            };
            if word & WAITERS == 0
                && self
                    .word
                    .compare_exchange(word, word | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            waiters = WAITERS;
            // Woken, interrupted, timed out or the word changed: look again.
            // (The holder may die, which wakes no one: hence the checks.)
            if sleep_until(&self.word, word | WAITERS, wake_at).is_err() {
                next_check = 0;
            }
        }
    }

    /// Takes the lock if the word is still `seen`, counting it among the
    /// mutexes this process holds first (so that another thread of ours
    /// that sees our id in the word also sees the count).
    ///
    /// A dead holder's writes all reached memory before the kernel reported
    /// its death (its exit went through the kernel), and this CAS acquires.
    #[inline]
    fn take(&self, me: Me, seen: u32, new: u32) -> bool {
        if !me.will_hold() {
            return false;
        }
        let taken = self
            .word
            .compare_exchange(seen, new, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if !taken {
            me.released();
        }
        taken
    }

    /// The word names this process: takes the mutex over if this process
    /// holds no mutex at all, in which case a dead process that had our
    /// pid (and drew our tag) wrote it. While it looks, the count is
    /// claimed ([`Me::claim`]), so that no thread of ours takes or gives
    /// back a mutex meanwhile: the word it then reads cannot be ours.
    #[cold]
    fn take_from_former_self(&self, me: Me, waiters: u32) -> Option<Acquired> {
        let held = me.claim()?;
        let word = self.word.load(Ordering::Acquire);
        let taken = word & PID_MASK == me.id
            && self
                .word
                .compare_exchange(
                    word,
                    me.id | OWNER_DIED | waiters | (word & WAITERS),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok();
        // The claim ends; a mutex taken counts as one held.
        held.fetch_sub(CLAIMED - u32::from(taken), Ordering::Release);
        taken.then_some(Acquired::OwnerDied)
    }

    #[cold]
    fn unlock_slow(&self, me: Me) -> Result<()> {
        let mut word = self.word.load(Ordering::Relaxed);
        let next = loop {
            if word & PID_MASK != me.id {
                return Err(Errno::PERM);
            }
            let next = if word & OWNER_DIED != 0 {
                NOT_RECOVERABLE
            } else {
                0
            };
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break next,
                Err(now) => word = now,
            }
        };
        me.released();
        if next == NOT_RECOVERABLE {
            let _ = futex::wake(&self.word, futex::Flags::empty(), i32::MAX as u32);
        } else if word & WAITERS != 0 {
            let _ = futex::wake(&self.word, futex::Flags::empty(), 1);
        }
        Ok(())
    }
}

impl fmt::Debug for RawMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.word.load(Ordering::Relaxed);
        let mut d = f.debug_struct("RawMutex");
        match word & PID_MASK {
            0 if word == 0 => d.field("locked", &false),
            NOT_RECOVERABLE => d.field("not_recoverable", &true),
            holder => d
                .field("holder_pid", &(holder & PID_BITS))
                .field("owner_died", &(word & OWNER_DIED != 0)),
        };
        d.finish()
    }
}

/// Whether `holder` can be a holder at all: a process id below
/// [`PID_MAX_LIMIT`], and a tag that [`this_process`] makes.
fn could_hold(holder: u32) -> bool {
    holder & PID_BITS != 0 && holder >> TAG_SHIFT != 0xff
}

/// Whether process `pid` still runs: `pidfd_open(pid)`, then `poll` with no
/// timeout. A pidfd is readable once the whole process has exited, zombie or
/// not; `kill(pid, 0)` would call a zombie alive, and a waiting parent that
/// has not reaped its dead child would wait forever.
///
/// Without a pidfd (out of fds, or a kernel before 5.3) it asks with no fd:
/// `waitid(WNOHANG | WNOWAIT)` finds our own children that are zombies,
/// `process_vm_readv` any process that has no memory left (a zombie, one
/// that is exiting); only if neither can tell, `kill(pid, 0)`: `ESRCH`
/// means gone.
///
/// # References
/// - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
/// - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
/// - [process_vm_readv(2)](https://man7.org/linux/man-pages/man2/process_vm_readv.2.html)
fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    match retry(|| pidfd_open(pid, PidfdFlags::empty())) {
        Ok(pidfd) => {
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
            match retry(|| poll(&mut fds, Some(&zero))) {
                Ok(_) => fds[0].revents().is_empty(),
                // Cannot tell: assume it lives, and ask again after a nap.
                Err(_) => true,
            }
        }
        // No such process, or not a process (a thread's id is not a holder).
        Err(Errno::SRCH) | Err(Errno::INVAL) => false,
        Err(_) => alive_without_fd(pid),
    }
}

/// [`process_alive`] for a process without a file descriptor to spare.
fn alive_without_fd(pid: Pid) -> bool {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    if let Ok(Some(_)) = retry(|| waitid(WaitId::Pid(pid), options)) {
        // Our child, exited and not reaped: left waitable for its parent.
        return false;
    }
    match crate::sys::has_memory(pid.as_raw_nonzero().get()) {
        Some(alive) => alive,
        None => !matches!(test_kill_process(pid), Err(Errno::SRCH)),
    }
}

/// This process as a mutex holder: its id in the word, and the count of
/// mutexes it holds (`None` where that cannot be kept).
#[derive(Clone, Copy)]
struct Me {
    /// The process id, and in bits 22-29 a tag drawn when the process first
    /// locks: a process that got the id of a dead holder (ids are reused)
    /// tells itself from that holder by the tag, and by the count.
    id: u32,
    held: Option<&'static AtomicU32>,
}

impl Me {
    fn pid(&self) -> u32 {
        self.id & PID_BITS
    }

    /// Counts a mutex this process is about to take (before the CAS); false
    /// (and not counted) while another thread of ours claims the count.
    #[inline]
    fn will_hold(&self) -> bool {
        match self.held {
            Some(held) if held.fetch_add(1, Ordering::AcqRel) & CLAIMED != 0 => {
                held.fetch_sub(1, Ordering::Relaxed);
                false
            }
            _ => true,
        }
    }

    /// Claims the count if it is 0 (this process holds no mutex, and no
    /// thread of ours is taking one); `None` if it is not, or not kept.
    fn claim(&self) -> Option<&'static AtomicU32> {
        let held = self.held?;
        held.compare_exchange(0, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| held)
    }

    /// Uncounts a mutex released, or not taken after all; never below 0
    /// (another process may have written our id into a word, which we then
    /// unlock without having counted it).
    #[inline]
    fn released(&self) {
        if let Some(held) = self.held {
            if held.fetch_sub(1, Ordering::Release) & !CLAIMED == 0 {
                // It was 0: undo (nothing was counted).
                held.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// [`ProcessPage::held`] while a thread of this process checks that the
/// process holds no mutex: other threads wait before they take one.
const CLAIMED: u32 = 1 << 31;

/// The page that tells what this process is, kept apart from its children:
/// marked `MADV_WIPEONFORK`, so that the kernel gives a child a zeroed copy,
/// whatever made the fork.
#[repr(C)]
struct ProcessPage {
    /// [`Me::id`]; 0 until this process first needs it.
    id: AtomicU32,
    /// How many mutexes this process holds (or is taking, for an instant).
    held: AtomicU32,
}

/// This process as a holder, without a system call once known.
///
/// `getpid` is a system call (~130 ns here), too slow for every lock and
/// unlock, and an id cached in a plain static would be the parent's in a
/// forked child (glibc dropped its own getpid cache for that reason). So the
/// cache lives in a [`ProcessPage`]. Where that cannot be had, every call
/// asks the kernel, the tag is 0 and the count is not kept.
#[inline]
fn this_process() -> Me {
    let page = PID_CACHE.load(Ordering::Acquire);
    // SAFETY: a non-null cache is a page mapped below and never unmapped.
    match unsafe { page.as_ref() } {
        Some(page) => Me {
            id: match page.id.load(Ordering::Relaxed) {
                0 => known_id(page),
                id => id,
            },
            held: Some(&page.held),
        },
        None => cache_pid(),
    }
}

/// Draws this process's id (its pid and a tag) into a fresh page; of two
/// threads drawing at once, the first one's is the process's.
#[cold]
fn known_id(page: &ProcessPage) -> u32 {
    let ns = monotonic_ns();
    // Any value but 0xff (which only NOT_RECOVERABLE has).
    let tag = ((ns ^ (ns >> 11) ^ (ns >> 23)) % 0xff) as u32;
    let id = getpid_u32() | (tag << TAG_SHIFT);
    match page
        .id
        .compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed)
    {
        Ok(_) => id,
        Err(first) => first,
    }
}

/// No page could be had: the process goes without one from now on (its
/// holders all untagged and uncounted), unless another thread got one first.
#[cold]
fn without_page(uncached: Me) -> Me {
    NO_PID_CACHE.store(true, Ordering::Relaxed);
    match PID_CACHE.load(Ordering::Acquire).is_null() {
        true => uncached,
        false => this_process(),
    }
}

static PID_CACHE: AtomicPtr<ProcessPage> = AtomicPtr::new(ptr::null_mut());
static NO_PID_CACHE: atomic::AtomicBool = atomic::AtomicBool::new(false);

fn getpid_u32() -> u32 {
    getpid().as_raw_nonzero().get().unsigned_abs()
}

/// Maps the wipe-on-fork [`ProcessPage`] of [`this_process`] (once per
/// process; the mapping is inherited, zeroed, by children).
#[cold]
fn cache_pid() -> Me {
    let uncached = Me {
        id: getpid_u32(),
        held: None,
    };
    if NO_PID_CACHE.load(Ordering::Relaxed) {
        return uncached;
    }
    const PAGE: usize = 4096;
    const _: () = assert!(size_of::<ProcessPage>() <= PAGE);
    // SAFETY: a fresh private anonymous page aliases nothing.
    let Ok(page) = (unsafe {
        mmap_anonymous(
            ptr::null_mut(),
            PAGE,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }) else {
        return without_page(uncached);
    };
    // SAFETY: the page is ours; the advice only changes what fork does.
    if unsafe { madvise(page, PAGE, Advice::LinuxWipeOnFork) }.is_err() {
        // SAFETY: nothing refers to the page.
        let _ = unsafe { munmap(page, PAGE) };
        return without_page(uncached);
    }
    if PID_CACHE
        .compare_exchange(
            ptr::null_mut(),
            page.cast(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_err()
    {
        // Another thread mapped one first.
        // SAFETY: the page was never published.
        let _ = unsafe { munmap(page, PAGE) };
    }
    this_process()
}

/// Types whose every bit pattern is a valid value, so that a value a killed
/// process left half-written is still one (only wrong, not undefined).
///
/// [`ProcessMutex`] hands such a value to the next locker
/// ([`LockError::OwnerDied`]), so it only protects these types. Integers,
/// floats, integer atomics, `()`, [`RawMutex`] and arrays of these are;
/// `bool`, `char`, references, enums and `NonZero` types are not:
///
/// ```compile_fail
/// // A char torn between two values can be a surrogate, which is no char.
/// let letter = rawipc::mutex::ProcessMutex::new('a');
/// ```
///
/// # Safety
/// Implement it only for a [`ShmSafe`] type in which any bytes at all (any
/// mix of the bytes of two values, each written in any order) form a valid
/// value: a `#[repr(C)]` struct whose fields are all `TearSafe` is one.
pub unsafe trait TearSafe: ShmSafe {}

macro_rules! tear_safe {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: every bit pattern is a valid value.
        unsafe impl TearSafe for $t {}
    )* };
}

tear_safe!(
    (),
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
    RawMutex,
);

// SAFETY: an array of such elements is one.
unsafe impl<T: TearSafe, const N: usize> TearSafe for [T; N] {}
// SAFETY: PhantomData has no bytes.
unsafe impl<T: ?Sized> TearSafe for PhantomData<T> where PhantomData<T>: Sync {}

/// A value and the process-shared mutex that protects it, meant to live in
/// shared memory: `Shared::new(ProcessMutex::new(value))?` before `fork`.
///
/// [`ProcessMutex::lock`] waits for the mutex and returns a guard that
/// dereferences to the value and unlocks when dropped. See the
/// [module documentation](self) for what happens when a holder dies.
#[repr(C)]
pub struct ProcessMutex<T: TearSafe> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, which exists only while
// the lock is held (mutual exclusion across threads and processes).
unsafe impl<T: TearSafe + Send> Sync for ProcessMutex<T> {}
// SAFETY: the mutex is an atomic usable between processes, and T is sound in
// shared memory; neither has a destructor.
unsafe impl<T: TearSafe + Send> ShmSafe for ProcessMutex<T> {}
// SAFETY: a repr(C) pair of TearSafe parts (the raw mutex's word, any T).
unsafe impl<T: TearSafe + Send> TearSafe for ProcessMutex<T> {}

impl<T: TearSafe> ProcessMutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Self {
        Self {
            raw: RawMutex::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Locks the mutex, waiting as long as a live process holds it, and
    /// returns a guard that unlocks it when dropped. Retries `EINTR`.
    ///
    /// Errors:
    /// - [`LockError::OwnerDied`] (`EOWNERDEAD`): the holder's process died
    ///   holding it; the error carries the guard. Repair the value, call
    ///   [`MutexGuard::mark_consistent`], and use the guard as usual.
    ///   Dropping it unmarked makes the mutex not recoverable; so that `?`
    ///   cannot do that unseen, [`LockError`] has no `From` into [`Errno`]
    ///   (see [`ProcessMutex::lock_and_repair`] for a lock that goes with `?`).
    /// - [`LockError::NotRecoverable`] (`ENOTRECOVERABLE`): a locker whose
    ///   owner died unlocked without marking it consistent.
    pub fn lock(&self) -> core::result::Result<MutexGuard<'_, T>, LockError<'_, T>> {
        self.guard(self.raw.lock())
    }

    /// Locks the mutex as [`ProcessMutex::lock`] does, and if the holder died,
    /// calls `repair` on the value and marks it consistent before returning
    /// the guard: a lock that composes with `?`.
    ///
    /// Errors: `ENOTRECOVERABLE` (see [`LockError::NotRecoverable`]).
    pub fn lock_and_repair(&self, repair: impl FnOnce(&mut T)) -> Result<MutexGuard<'_, T>> {
        match self.lock() {
            Ok(guard) => Ok(guard),
            Err(LockError::OwnerDied(mut guard)) => {
                repair(&mut guard);
                guard.mark_consistent();
                Ok(guard)
            }
            Err(e) => Err(e.errno()),
        }
    }

    /// Locks the mutex if no live process holds it, without waiting.
    ///
    /// Errors: [`LockError::WouldBlock`] (`EBUSY`) if a live process (this
    /// one included) holds it; otherwise as [`ProcessMutex::lock`].
    pub fn try_lock(&self) -> core::result::Result<MutexGuard<'_, T>, LockError<'_, T>> {
        self.guard(self.raw.try_lock())
    }

    /// Locks the mutex as [`ProcessMutex::lock`] does, waiting at most
    /// `timeout` (see [`RawMutex::lock_timeout`]).
    ///
    /// Errors: [`LockError::TimedOut`] (`ETIMEDOUT`) when the time is up
    /// and a live process still holds it; otherwise as
    /// [`ProcessMutex::lock`] ([`LockError::OwnerDied`] included).
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> core::result::Result<MutexGuard<'_, T>, LockError<'_, T>> {
        self.guard(self.raw.lock_timeout(timeout))
    }

    /// The value, through an exclusive borrow: no lock needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn guard(
        &self,
        acquired: Result<Acquired>,
    ) -> core::result::Result<MutexGuard<'_, T>, LockError<'_, T>> {
        match acquired {
            Ok(Acquired::Normal) => Ok(MutexGuard { mutex: self }),
            Ok(Acquired::OwnerDied) => Err(LockError::OwnerDied(MutexGuard { mutex: self })),
            Err(Errno::BUSY) => Err(LockError::WouldBlock),
            Err(Errno::TIMEDOUT) => Err(LockError::TimedOut),
            Err(_) => Err(LockError::NotRecoverable),
        }
    }
}

impl<T: TearSafe> fmt::Debug for ProcessMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessMutex")
            .field("raw", &self.raw)
            .finish_non_exhaustive()
    }
}

/// The lock of a [`ProcessMutex`], held: dereferences to the value, and
/// unlocks when dropped.
///
/// A guard alive across [`fork`](crate::process::fork) must not be used in
/// the child, nor in the parent while the child could (see fork's safety
/// contract): the child does not hold the lock, but its copy of the guard
/// would still reach the shared value.
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: TearSafe> {
    mutex: &'a ProcessMutex<T>,
}

impl<T: TearSafe> MutexGuard<'_, T> {
    /// Declares the value repaired after [`LockError::OwnerDied`], so that
    /// unlocking leaves an ordinary mutex. Does nothing on a guard that was
    /// got normally.
    pub fn mark_consistent(&mut self) {
        let _ = self.mutex.raw.mark_consistent();
    }

    /// False from [`LockError::OwnerDied`] until
    /// [`MutexGuard::mark_consistent`].
    pub fn is_consistent(&self) -> bool {
        !self.mutex.raw.owner_died()
    }
}

impl<T: TearSafe> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held, so no one else touches the value; any bits
        // a dead holder left in it form a valid T (TearSafe).
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: TearSafe> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref, and this guard is borrowed exclusively.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: TearSafe> Drop for MutexGuard<'_, T> {
    /// Unlocks; into the not-recoverable state if the owner died and the
    /// value was not marked consistent.
    fn drop(&mut self) {
        // EPERM only if another process overwrote the word; nothing to undo.
        let _ = self.mutex.raw.unlock();
    }
}

impl<T: TearSafe + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MutexGuard").field(&**self).finish()
    }
}

/// Why [`ProcessMutex::lock`] or [`ProcessMutex::try_lock`] did not simply
/// return a guard. Match it (or call [`LockError::errno`]): it has no `From`
/// into [`Errno`], because dropping an [`LockError::OwnerDied`] unrepaired
/// makes the mutex not recoverable.
pub enum LockError<'a, T: TearSafe> {
    /// `EOWNERDEAD`: the holder's process died holding the mutex. This guard
    /// holds it now; the value may be half-updated.
    OwnerDied(MutexGuard<'a, T>),
    /// `ENOTRECOVERABLE`: unlocked after an owner died without being marked
    /// consistent; no lock will ever succeed.
    NotRecoverable,
    /// `EBUSY`: a live process holds it ([`ProcessMutex::try_lock`] only).
    WouldBlock,
    /// `ETIMEDOUT`: a live process held it until the deadline
    /// ([`ProcessMutex::lock_timeout`] only).
    TimedOut,
}

impl<T: TearSafe> LockError<'_, T> {
    /// The error number C would see.
    pub fn errno(&self) -> Errno {
        match self {
            LockError::OwnerDied(_) => Errno::OWNERDEAD,
            LockError::NotRecoverable => Errno::NOTRECOVERABLE,
            LockError::WouldBlock => Errno::BUSY,
            LockError::TimedOut => Errno::TIMEDOUT,
        }
    }
}

impl<T: TearSafe> fmt::Debug for LockError<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockError::OwnerDied(_) => "OwnerDied(..)",
            LockError::NotRecoverable => "NotRecoverable",
            LockError::WouldBlock => "WouldBlock",
            LockError::TimedOut => "TimedOut",
        })
    }
}

impl<T: TearSafe> fmt::Display for LockError<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockError::OwnerDied(_) => "the mutex's holder died; the data may need repair",
            LockError::NotRecoverable => "the mutex is not recoverable",
            LockError::WouldBlock => "the mutex is held",
            LockError::TimedOut => "the mutex was still held at the deadline",
        })
    }
}

// No `From<LockError> for Errno` and no `Error` impl, on purpose: `?` would
// drop an `OwnerDied` guard unmarked, which makes the mutex not recoverable.
