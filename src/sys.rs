//! The few calls that rustix does not expose: `fork`, `_exit`, the thread's
//! signal mask (to keep a write to a closed pipe from raising `SIGPIPE`), and
//! `SO_PEERCRED` read into plain integers (rustix's `UCred` cannot hold the
//! pid 0 the kernel reports for a peer in another pid namespace).
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

#[cfg(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
pub(crate) const SOL_SOCKET: i32 = 0xffff;
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
pub(crate) const SOL_SOCKET: i32 = 1;
#[cfg(any(target_arch = "powerpc", target_arch = "powerpc64"))]
const SO_PEERCRED: i32 = 21;
#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
const SO_PEERCRED: i32 = 18;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_PEERCRED: i32 = 0x40;
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
const SO_PEERCRED: i32 = 17;

/// `getsockopt(fd, SOL_SOCKET, SO_PEERCRED)`: the peer's `struct ucred`
/// (pid, uid, gid) as plain integers, so that pid 0 is a value like any.
pub(crate) use imp::peer_cred;

#[cfg(not(feature = "freestanding"))]
mod imp {
    use super::{Errno, SIG_BLOCK, SIG_UNBLOCK, SIGPIPE_BIT, SO_PEERCRED, SOL_SOCKET};
    use core::ffi::c_int;
    use core::ptr;
    use rustix::fd::{AsRawFd, BorrowedFd};

    /// libc's `sigset_t`: 1024 bits on glibc and musl, the kernel's 64 first.
    #[repr(C)]
    struct SigSet([u64; 16]);

    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    unsafe extern "C" {
        fn getsockopt(
            fd: c_int,
            level: c_int,
            name: c_int,
            value: *mut core::ffi::c_void,
            len: *mut u32,
        ) -> c_int;
        fn fork() -> c_int;
        fn _exit(status: c_int) -> !;
        fn __errno_location() -> *mut c_int;
        fn pthread_sigmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
        fn sigtimedwait(set: *const SigSet, info: *mut u8, timeout: *const Timespec) -> c_int;
        fn sigpending(set: *mut SigSet) -> c_int;
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

    pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> Result<[u32; 3], Errno> {
        let mut cred = [0u32; 3];
        let mut len = size_of_val(&cred) as u32;
        // SAFETY: a writable buffer of `len` bytes, and `len` itself.
        let ret = unsafe {
            getsockopt(
                fd.as_raw_fd(),
                SOL_SOCKET,
                SO_PEERCRED,
                cred.as_mut_ptr().cast(),
                &mut len,
            )
        };
        match ret {
            0 => Ok(cred),
            _ => Err(last_errno()),
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
    use super::{Errno, SIG_BLOCK, SIG_UNBLOCK, SIGPIPE_BIT, SO_PEERCRED, SOL_SOCKET};
    use core::ptr;
    use rustix::fd::{AsRawFd, BorrowedFd};

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    compile_error!(
        "rawipc's `freestanding` feature has raw system calls for x86_64 and aarch64 only; \
         on other architectures build rawipc without it, in a program that has a libc"
    );

    #[cfg(target_arch = "x86_64")]
    mod nr {
        pub(super) const CLONE: usize = 56;
        pub(super) const GETSOCKOPT: usize = 55;
        pub(super) const EXIT_GROUP: usize = 231;
        pub(super) const RT_SIGPROCMASK: usize = 14;
        pub(super) const RT_SIGTIMEDWAIT: usize = 128;
        pub(super) const RT_SIGPENDING: usize = 127;
    }
    #[cfg(target_arch = "aarch64")]
    mod nr {
        pub(super) const CLONE: usize = 220;
        pub(super) const GETSOCKOPT: usize = 209;
        pub(super) const EXIT_GROUP: usize = 94;
        pub(super) const RT_SIGPROCMASK: usize = 135;
        pub(super) const RT_SIGTIMEDWAIT: usize = 137;
        pub(super) const RT_SIGPENDING: usize = 136;
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

    pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> Result<[u32; 3], Errno> {
        let mut cred = [0u32; 3];
        let mut len = size_of_val(&cred) as u32;
        // SAFETY: a writable buffer of `len` bytes, and `len` itself.
        let ret = unsafe {
            syscall6(
                nr::GETSOCKOPT,
                fd.as_raw_fd() as usize,
                SOL_SOCKET as usize,
                SO_PEERCRED as usize,
                cred.as_mut_ptr() as usize,
                ptr::from_mut(&mut len) as usize,
                0,
            )
        };
        result(ret).map(|_| cred)
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

pub(crate) use imp::{exit, raw_fork};

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

#[cfg(test)]
mod tests {
    use rustix::fd::AsFd;
    use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};

    #[test]
    fn peer_cred_of_a_socket_pair_is_this_process() {
        let (a, _b) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let [pid, uid, gid] = super::peer_cred(a.as_fd()).unwrap();
        assert_eq!(pid, rustix::process::getpid().as_raw_nonzero().get() as u32);
        assert_eq!(uid, rustix::process::geteuid().as_raw());
        assert_eq!(gid, rustix::process::getegid().as_raw());
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert_eq!(super::peer_cred(r.as_fd()), Err(rustix::io::Errno::NOTSOCK));
    }
}
