//! The few calls that rustix does not expose, or that must be libc's in a
//! process that has one: `fork`, `_exit`, the thread's signal mask (to keep
//! a write to a closed pipe from raising `SIGPIPE`), the monotonic clock and
//! `process_vm_readv`.
//!
//! In a process that has libc (every C program, every std Rust program) they go
//! through libc's own functions: libc's `fork` runs the `pthread_atfork`
//! handlers and refreshes libc's cached thread id in the child, which a raw
//! kernel fork does not. With the `freestanding` feature, for programs with no
//! libc at all, they are raw system calls (x86_64 and aarch64).

use rustix::io::Errno;

/// `SIGPIPE` as a bit of a kernel signal set (`1 << (signo - 1)`).
const SIGPIPE_BIT: u64 = 1 << (13 - 1);
const SIG_BLOCK: i32 = 0;
const SIG_UNBLOCK: i32 = 1;

#[cfg(not(feature = "freestanding"))]
mod imp {
    use super::{Errno, SIG_BLOCK, SIG_UNBLOCK, SIGPIPE_BIT};
    use core::ffi::c_int;
    use core::ptr;

    /// libc's `sigset_t`: 1024 bits on glibc and musl, the kernel's 64 first.
    #[repr(C)]
    struct SigSet([u64; 16]);

    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    unsafe extern "C" {
        fn fork() -> c_int;
        fn clock_gettime(clock: c_int, tp: *mut Timespec) -> c_int;
        fn process_vm_readv(
            pid: c_int,
            local: *const IoVec,
            local_count: usize,
            remote: *const IoVec,
            remote_count: usize,
            flags: usize,
        ) -> isize;
        fn _exit(status: c_int) -> !;
        fn __errno_location() -> *mut c_int;
        fn pthread_sigmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
        fn sigtimedwait(set: *const SigSet, info: *mut u8, timeout: *const Timespec) -> c_int;
        fn sigpending(set: *mut SigSet) -> c_int;
    }

    #[repr(C)]
    struct IoVec {
        base: *mut u8,
        len: usize,
    }

    /// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds, through libc: libc
    /// finds the vDSO from the auxiliary vector the process really got,
    /// which rustix's own lookup does not under valgrind.
    pub(crate) fn monotonic_ns() -> u64 {
        const CLOCK_MONOTONIC: c_int = 1;
        let mut t = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid timespec to fill; the monotonic clock always exists.
        unsafe { clock_gettime(CLOCK_MONOTONIC, &mut t) };
        t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
    }

    /// `process_vm_readv(pid, one byte here, one byte at address 0 there)`:
    /// the error tells whether `pid` still has its memory (see
    /// [`super::has_memory`]).
    pub(crate) fn probe_memory(pid: i32) -> Result<(), Errno> {
        let mut byte = 0u8;
        let local = IoVec {
            base: &mut byte,
            len: 1,
        };
        let remote = IoVec {
            base: ptr::null_mut(),
            len: 1,
        };
        // SAFETY: one valid local byte; the remote address is only read by
        // the kernel, which reports EFAULT for it.
        match unsafe { process_vm_readv(pid, &local, 1, &remote, 1, 0) } {
            -1 => Err(last_errno()),
            _ => Ok(()),
        }
    }

    fn last_errno() -> Errno {
        // SAFETY: libc's errno location is valid for the calling thread.
        Errno::from_raw_os_error(unsafe { *__errno_location() })
    }

    fn sigpipe_set() -> SigSet {
        let mut set = SigSet([0; 16]);
        set.0[0] = SIGPIPE_BIT;
        set
    }

    /// # Safety
    /// As [`crate::process::fork`].
    pub(crate) unsafe fn raw_fork() -> Result<i32, Errno> {
        // SAFETY: the caller upholds fork's contract; libc's fork has no other.
        match unsafe { fork() } {
            -1 => Err(last_errno()),
            pid => Ok(pid),
        }
    }

    pub(crate) fn exit(status: i32) -> ! {
        // SAFETY: `_exit` takes any status and never returns.
        unsafe { _exit(status) }
    }

    /// Blocks SIGPIPE for this thread; returns whether it was blocked already.
    pub(crate) fn block_sigpipe() -> bool {
        let mut old = SigSet([0; 16]);
        // SAFETY: both sets are valid `sigset_t`s; SIG_BLOCK cannot fail.
        unsafe { pthread_sigmask(SIG_BLOCK, &sigpipe_set(), &mut old) };
        old.0[0] & SIGPIPE_BIT != 0
    }

    /// Unblocks SIGPIPE for this thread (it was unblocked before).
    pub(crate) fn unblock_sigpipe() {
        // SAFETY: a valid set; the old mask is not wanted.
        unsafe { pthread_sigmask(SIG_UNBLOCK, &sigpipe_set(), ptr::null_mut()) };
    }

    /// Whether a SIGPIPE is pending (for this thread or the process).
    pub(crate) fn sigpipe_pending() -> bool {
        let mut set = SigSet([0; 16]);
        // SAFETY: a valid `sigset_t` to fill; sigpending cannot fail then.
        unsafe { sigpending(&mut set) };
        set.0[0] & SIGPIPE_BIT != 0
    }

    /// Takes a SIGPIPE pending for this thread, if there is one, without waiting.
    pub(crate) fn take_pending_sigpipe() {
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid set and timeout; the siginfo is not wanted.
        unsafe { sigtimedwait(&sigpipe_set(), ptr::null_mut(), &zero) };
    }
}

#[cfg(feature = "freestanding")]
mod imp {
    use super::{Errno, SIG_BLOCK, SIG_UNBLOCK, SIGPIPE_BIT};
    use core::ptr;

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    compile_error!(
        "rawipc's `freestanding` feature has raw system calls for x86_64 and aarch64 only; \
         on other architectures build rawipc without it, in a program that has a libc"
    );

    #[cfg(target_arch = "x86_64")]
    mod nr {
        pub(super) const CLONE: usize = 56;
        pub(super) const EXIT_GROUP: usize = 231;
        pub(super) const RT_SIGPROCMASK: usize = 14;
        pub(super) const RT_SIGTIMEDWAIT: usize = 128;
        pub(super) const RT_SIGPENDING: usize = 127;
        pub(super) const PROCESS_VM_READV: usize = 310;
    }
    #[cfg(target_arch = "aarch64")]
    mod nr {
        pub(super) const CLONE: usize = 220;
        pub(super) const EXIT_GROUP: usize = 94;
        pub(super) const RT_SIGPROCMASK: usize = 135;
        pub(super) const RT_SIGTIMEDWAIT: usize = 137;
        pub(super) const RT_SIGPENDING: usize = 136;
        pub(super) const PROCESS_VM_READV: usize = 270;
    }

    /// A Linux system call with up to four arguments; returns the kernel's
    /// result (`-errno` on failure).
    ///
    /// # Safety
    /// The call's arguments must be valid for the call `n`.
    #[inline]
    unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
        // SAFETY: the caller's promise is passed on.
        unsafe { syscall6(n, a, b, c, d, 0, 0) }
    }

    /// As [`syscall4`], with six arguments.
    ///
    /// # Safety
    /// The call's arguments must be valid for the call `n`.
    #[inline]
    unsafe fn syscall6(
        n: usize,
        a: usize,
        b: usize,
        c: usize,
        d: usize,
        e: usize,
        f: usize,
    ) -> isize {
        let ret: isize;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the x86_64 syscall convention; rcx and r11 are clobbered.
        unsafe {
            core::arch::asm!("syscall", inlateout("rax") n as isize => ret,
                in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d, in("r8") e, in("r9") f,
                lateout("rcx") _, lateout("r11") _, options(nostack));
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the aarch64 syscall convention (number in x8, `svc 0`).
        unsafe {
            core::arch::asm!("svc 0", in("x8") n, inlateout("x0") a as isize => ret,
                in("x1") b, in("x2") c, in("x3") d, in("x4") e, in("x5") f, options(nostack));
        }
        ret
    }

    /// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds (rustix's, through
    /// the vDSO: a program with no libc is not run under valgrind).
    pub(crate) fn monotonic_ns() -> u64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
    }

    /// As the libc version: `process_vm_readv` of one byte at address 0.
    pub(crate) fn probe_memory(pid: i32) -> Result<(), Errno> {
        let mut byte = 0u8;
        let local: [usize; 2] = [ptr::from_mut(&mut byte) as usize, 1];
        let remote: [usize; 2] = [0, 1];
        // SAFETY: two valid iovecs (base, len); the remote address is only
        // read by the kernel, which reports EFAULT for it.
        let ret = unsafe {
            syscall6(
                nr::PROCESS_VM_READV,
                pid as usize,
                ptr::from_ref(&local) as usize,
                1,
                ptr::from_ref(&remote) as usize,
                1,
                0,
            )
        };
        result(ret).map(drop)
    }

    fn result(ret: isize) -> Result<usize, Errno> {
        if (-4095..0).contains(&ret) {
            Err(Errno::from_raw_os_error(-ret as i32))
        } else {
            Ok(ret as usize)
        }
    }

    /// `clone(SIGCHLD, 0, ...)`: fork for a process that has no libc.
    ///
    /// # Safety
    /// As [`crate::process::fork`], and the process must have no libc.
    pub(crate) unsafe fn raw_fork() -> Result<i32, Errno> {
        const SIGCHLD: usize = 17;
        // SAFETY: with a null stack the child continues on a copy of ours,
        // exactly like fork(2); no pointer argument is passed.
        result(unsafe { syscall4(nr::CLONE, SIGCHLD, 0, 0, 0) }).map(|pid| pid as i32)
    }

    pub(crate) fn exit(status: i32) -> ! {
        loop {
            // SAFETY: exit_group takes any status and does not return.
            unsafe { syscall4(nr::EXIT_GROUP, status as usize, 0, 0, 0) };
        }
    }

    fn sigprocmask(how: i32, set: u64) -> u64 {
        let mut old: u64 = 0;
        // SAFETY: valid 8-byte kernel signal sets; the size argument is 8.
        unsafe {
            syscall4(
                nr::RT_SIGPROCMASK,
                how as usize,
                ptr::from_ref(&set) as usize,
                ptr::from_mut(&mut old) as usize,
                8,
            )
        };
        old
    }

    pub(crate) fn block_sigpipe() -> bool {
        sigprocmask(SIG_BLOCK, SIGPIPE_BIT) & SIGPIPE_BIT != 0
    }

    pub(crate) fn unblock_sigpipe() {
        sigprocmask(SIG_UNBLOCK, SIGPIPE_BIT);
    }

    pub(crate) fn sigpipe_pending() -> bool {
        let mut set: u64 = 0;
        // SAFETY: a valid 8-byte kernel signal set to fill; the size is 8.
        unsafe { syscall4(nr::RT_SIGPENDING, ptr::from_mut(&mut set) as usize, 8, 0, 0) };
        set & SIGPIPE_BIT != 0
    }

    pub(crate) fn take_pending_sigpipe() {
        let set: u64 = SIGPIPE_BIT;
        let zero: [i64; 2] = [0, 0];
        // SAFETY: a valid set and timeout; the siginfo pointer is null.
        unsafe {
            syscall4(
                nr::RT_SIGTIMEDWAIT,
                ptr::from_ref(&set) as usize,
                0,
                ptr::from_ref(&zero) as usize,
                8,
            )
        };
    }
}

pub(crate) use imp::{exit, monotonic_ns, raw_fork};

/// Whether process `pid` still has its memory, asked without a file
/// descriptor: `process_vm_readv` finds a process with no memory (a zombie,
/// one that is exiting, a kernel thread) or no process at all `ESRCH`; a
/// live one gives `EFAULT` for the address read, or `EPERM` if this process
/// may not look into it. `None` if the call cannot tell (refused by a
/// sandbox, or another error).
///
/// # References
/// - [process_vm_readv(2)](https://man7.org/linux/man-pages/man2/process_vm_readv.2.html)
pub(crate) fn has_memory(pid: i32) -> Option<bool> {
    match imp::probe_memory(pid) {
        Err(Errno::SRCH) => Some(false),
        Ok(()) | Err(Errno::FAULT) | Err(Errno::PERM) => Some(true),
        Err(_) => None,
    }
}

/// Runs `op` (a write) with SIGPIPE blocked for this thread, so that a write
/// whose readers are all gone fails with `EPIPE` instead of killing the process.
///
/// The process's SIGPIPE disposition is never touched. If this write raised a
/// SIGPIPE it is taken back before the mask is restored, also when the caller
/// had SIGPIPE blocked already (left pending, it would kill the caller once it
/// unblocks it); a SIGPIPE that was pending before the write stays pending.
pub(crate) fn without_sigpipe<T>(op: impl FnOnce() -> Result<T, Errno>) -> Result<T, Errno> {
    let was_blocked = imp::block_sigpipe();
    // An unblocked SIGPIPE cannot have been pending: it would have been delivered.
    let was_pending = was_blocked && imp::sigpipe_pending();
    let result = op();
    if result.as_ref().err() == Some(&Errno::PIPE) && !was_pending {
        imp::take_pending_sigpipe();
    }
    if !was_blocked {
        imp::unblock_sigpipe();
    }
    result
}
