//! The few calls that rustix does not expose, or that must be libc's in a
//! process that has one: `fork`, `_exit`, a write that never raises
//! `SIGPIPE`, the monotonic clock, `process_vm_readv`, `SO_PEERCRED` read
//! into plain integers (rustix's `UCred` cannot hold the pid 0 the kernel
//! reports for a peer in another pid namespace), and `recvmsg` and
//! `SO_PASSCRED` without rustix's parsing and checks (each of which could
//! panic, which rawipc never does).
//!
//! In a process that has libc (every C program, every std Rust program)
//! `fork` and `_exit` go through libc's own functions: libc's `fork` runs the
//! `pthread_atfork` handlers and refreshes libc's cached thread id in the
//! child, which a raw kernel fork does not. With the `freestanding` feature,
//! for programs with no libc at all, they are raw system calls (x86_64 and
//! aarch64).
//!
//! A write without `SIGPIPE` is `pwritev2(fd, iov, 1, -1, RWF_NOSIGNAL)`
//! (Linux 6.18): the kernel then answers `EPIPE` and raises nothing, and
//! neither the thread's signal mask nor anything pending is touched. On an
//! older kernel (or for a file whose driver takes no flags) it falls back to
//! a `write` with SIGPIPE blocked for the calling thread; see
//! [`masked_write`] for how that fallback leaves the pending signals exactly
//! as they were.

use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

/// `SIGPIPE`'s number, and its bit in a kernel signal set.
const SIGPIPE: i32 = 13;
const SIGPIPE_BIT: u64 = 1 << (SIGPIPE - 1);
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
#[cfg(any(target_arch = "powerpc", target_arch = "powerpc64"))]
const SO_PASSCRED: i32 = 20;
#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
const SO_PASSCRED: i32 = 17;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_PASSCRED: i32 = 0x0002;
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
const SO_PASSCRED: i32 = 16;

/// `getsockopt(fd, SOL_SOCKET, SO_PEERCRED)`: the peer's `struct ucred`
/// (pid, uid, gid) as plain integers, so that pid 0 is a value like any.
pub(crate) use imp::peer_cred;

/// `getsockopt(fd, SOL_SOCKET, SO_PASSCRED)`: whether the socket asks for
/// its peers' credentials with every message.
pub(crate) fn passcred(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    imp::int_option(fd, SO_PASSCRED).map(|on| on != 0)
}

#[cfg(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
const SO_TYPE: i32 = 0x1008;
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
const SO_TYPE: i32 = 3;

/// `getsockopt(fd, SOL_SOCKET, SO_TYPE)`: the socket's type (`SOCK_STREAM`
/// 1, `SOCK_DGRAM` 2, `SOCK_SEQPACKET` 5), read without rustix's size
/// assertion (a panic path).
pub(crate) fn socket_type(fd: BorrowedFd<'_>) -> Result<i32, Errno> {
    imp::int_option(fd, SO_TYPE)
}

/// `struct msghdr` with no address, in the kernel's layout, which is glibc's
/// and (for lengths that fit an `int`) musl's.
#[repr(C)]
struct MsgHdr {
    name: *mut core::ffi::c_void,
    namelen: u32,
    /// One `struct iovec`: base and length.
    iov: *mut [usize; 2],
    iovlen: usize,
    control: *mut u8,
    controllen: usize,
    flags: i32,
}

/// `recvmsg(fd, {data, control}, flags)` with one data buffer and control
/// room that nothing parses here: the message's length (its whole length
/// with `MSG_TRUNC`) and the flags the kernel returned (`MSG_CTRUNC`...).
/// The control messages the kernel wrote are at the start of `control`.
///
/// # References
/// - [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html)
pub(crate) fn recvmsg(
    fd: BorrowedFd<'_>,
    data: &mut [u8],
    control: &mut [u8],
    flags: rustix::net::RecvFlags,
) -> Result<(usize, rustix::net::ReturnFlags), Errno> {
    let mut iov = [data.as_mut_ptr() as usize, data.len()];
    let mut msg = MsgHdr {
        name: core::ptr::null_mut(),
        namelen: 0,
        iov: &mut iov,
        iovlen: 1,
        control: control.as_mut_ptr(),
        controllen: control.len(),
        flags: 0,
    };
    // SAFETY: `msg` names one writable buffer of `data.len()` bytes and
    // `control.len()` writable bytes of control room, no address.
    let got = unsafe { recvmsg_raw(fd.as_raw_fd(), &mut msg, flags.bits() as i32) }?;
    Ok((
        got,
        rustix::net::ReturnFlags::from_bits_retain(msg.flags as u32),
    ))
}

/// The kernel's `siginfo_t` (128 bytes) for the signals this module queues
/// and takes: `si_signo`, `si_errno`, `si_code`, then (from offset 16 on
/// 64-bit targets) `si_pid`, `si_uid` and `si_value`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct SigInfo([u8; 128]);

impl SigInfo {
    const fn zeroed() -> Self {
        SigInfo([0; 128])
    }
}

/// Raw Linux system calls, for x86_64 and aarch64: the freestanding build's
/// fork and exit, and in every build the two calls libc has no portable
/// wrapper for (`pwritev2` with a raw pointer, `rt_tgsigqueueinfo`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod raw {
    use super::Errno;

    #[cfg(target_arch = "x86_64")]
    pub(super) mod nr {
        #![allow(dead_code)]
        pub(crate) const WRITE: usize = 1;
        pub(crate) const CLONE: usize = 56;
        pub(crate) const EXIT_GROUP: usize = 231;
        pub(crate) const RT_SIGPROCMASK: usize = 14;
        pub(crate) const RT_SIGTIMEDWAIT: usize = 128;
        pub(crate) const RT_SIGPENDING: usize = 127;
        pub(crate) const RT_TGSIGQUEUEINFO: usize = 297;
        pub(crate) const PWRITEV2: usize = 328;
        pub(crate) const GETSOCKOPT: usize = 55;
        pub(crate) const PROCESS_VM_READV: usize = 310;
        pub(crate) const RECVMSG: usize = 47;
        pub(crate) const MEMFD_CREATE: usize = 319;
        pub(crate) const SENDMSG: usize = 46;
    }
    #[cfg(target_arch = "aarch64")]
    pub(super) mod nr {
        #![allow(dead_code)]
        pub(crate) const WRITE: usize = 64;
        pub(crate) const CLONE: usize = 220;
        pub(crate) const EXIT_GROUP: usize = 94;
        pub(crate) const RT_SIGPROCMASK: usize = 135;
        pub(crate) const RT_SIGTIMEDWAIT: usize = 137;
        pub(crate) const RT_SIGPENDING: usize = 136;
        pub(crate) const RT_TGSIGQUEUEINFO: usize = 240;
        pub(crate) const PWRITEV2: usize = 287;
        pub(crate) const GETSOCKOPT: usize = 209;
        pub(crate) const PROCESS_VM_READV: usize = 270;
        pub(crate) const RECVMSG: usize = 212;
        pub(crate) const MEMFD_CREATE: usize = 279;
        pub(crate) const SENDMSG: usize = 211;
    }

    /// A Linux system call with up to six arguments; returns the kernel's
    /// result (`-errno` on failure).
    ///
    /// # Safety
    /// The call's arguments must be valid for the call `n`.
    #[inline]
    pub(super) unsafe fn syscall6(n: usize, args: [usize; 6]) -> isize {
        let ret: isize;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the x86_64 syscall convention; rcx and r11 are clobbered.
        unsafe {
            core::arch::asm!("syscall", inlateout("rax") n as isize => ret,
                in("rdi") args[0], in("rsi") args[1], in("rdx") args[2],
                in("r10") args[3], in("r8") args[4], in("r9") args[5],
                lateout("rcx") _, lateout("r11") _, options(nostack));
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the aarch64 syscall convention (number in x8, `svc 0`).
        unsafe {
            core::arch::asm!("svc 0", in("x8") n, inlateout("x0") args[0] as isize => ret,
                in("x1") args[1], in("x2") args[2], in("x3") args[3],
                in("x4") args[4], in("x5") args[5], options(nostack));
        }
        ret
    }

    /// The kernel's answer as a result.
    pub(super) fn result(ret: isize) -> Result<usize, Errno> {
        if (-4095..0).contains(&ret) {
            Err(Errno::from_raw_os_error(-ret as i32))
        } else {
            Ok(ret as usize)
        }
    }
}

#[cfg(not(feature = "freestanding"))]
mod imp {
    use super::{Errno, SO_PEERCRED, SOL_SOCKET, SigInfo};
    use core::ffi::c_int;
    use rustix::fd::{AsRawFd, BorrowedFd};

    /// libc's `sigset_t`: 1024 bits on glibc and musl, the kernel's 64 first.
    #[repr(C)]
    pub(super) struct SigSet([u64; 16]);

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
        fn sigtimedwait(set: *const SigSet, info: *mut SigInfo, timeout: *const Timespec) -> c_int;
        fn sigpending(set: *mut SigSet) -> c_int;
        fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        fn recvmsg(fd: c_int, msg: *mut super::MsgHdr, flags: c_int) -> isize;
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
            base: core::ptr::null_mut(),
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

    fn set_of(bits: u64) -> SigSet {
        let mut set = SigSet([0; 16]);
        set.0[0] = bits;
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

    pub(crate) fn int_option(fd: BorrowedFd<'_>, name: i32) -> Result<i32, Errno> {
        let mut value: c_int = 0;
        let mut len = size_of_val(&value) as u32;
        // SAFETY: a writable buffer of `len` bytes, and `len` itself.
        let ret = unsafe {
            getsockopt(
                fd.as_raw_fd(),
                SOL_SOCKET,
                name,
                core::ptr::from_mut(&mut value).cast(),
                &mut len,
            )
        };
        match ret {
            0 => Ok(value),
            _ => Err(last_errno()),
        }
    }

    pub(crate) fn exit(status: i32) -> ! {
        // SAFETY: `_exit` takes any status and never returns.
        unsafe { _exit(status) }
    }

    /// Changes this thread's signal mask by `bits`; returns the old mask's
    /// first 64 bits.
    pub(super) fn sigprocmask(how: i32, bits: u64) -> u64 {
        let mut old = SigSet([0; 16]);
        // SAFETY: both sets are valid `sigset_t`s; SIG_BLOCK/SIG_UNBLOCK with
        // a valid set cannot fail.
        unsafe { pthread_sigmask(how, &set_of(bits), &mut old) };
        old.0[0]
    }

    /// The signals pending for this thread or its process (first 64 bits).
    pub(super) fn pending() -> u64 {
        let mut set = SigSet([0; 16]);
        // SAFETY: a valid `sigset_t` to fill; sigpending cannot fail then.
        unsafe { sigpending(&mut set) };
        set.0[0]
    }

    /// Takes one pending signal of `bits` (blocked) without waiting, into
    /// `info`; returns whether there was one.
    pub(super) fn take(bits: u64, info: &mut SigInfo) -> bool {
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid set, siginfo buffer (128 bytes) and timeout.
        unsafe { sigtimedwait(&set_of(bits), info, &zero) > 0 }
    }

    /// `write(2)` with a raw pointer.
    ///
    /// # Safety
    /// The kernel reads `len` bytes at `buf` (or answers EFAULT).
    pub(super) unsafe fn write_raw(fd: c_int, buf: *const u8, len: usize) -> Result<usize, Errno> {
        // SAFETY: the caller's promise; libc's write only passes it on.
        match unsafe { write(fd, buf, len) } {
            -1 => Err(last_errno()),
            n => Ok(n as usize),
        }
    }

    /// # Safety
    /// `msg`'s buffers are writable for their lengths.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub(super) unsafe fn recvmsg_raw(
        fd: c_int,
        msg: *mut super::MsgHdr,
        flags: c_int,
    ) -> Result<usize, Errno> {
        // SAFETY: the caller's promise; libc's recvmsg only passes it on.
        match unsafe { recvmsg(fd, msg, flags) } {
            -1 => Err(last_errno()),
            n => Ok(n as usize),
        }
    }
}

#[cfg(feature = "freestanding")]
mod imp {
    use super::raw::{nr, result, syscall6};
    use super::{Errno, SO_PEERCRED, SOL_SOCKET, SigInfo};
    use core::ffi::c_int;
    use core::ptr;
    use rustix::fd::{AsRawFd, BorrowedFd};

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    compile_error!(
        "rawipc's `freestanding` feature has raw system calls for x86_64 and aarch64 only; \
         on other architectures build rawipc without it, in a program that has a libc"
    );

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
        let args = [
            pid as usize,
            ptr::from_ref(&local) as usize,
            1,
            ptr::from_ref(&remote) as usize,
            1,
            0,
        ];
        // SAFETY: two valid iovecs (base, len); the remote address is only
        // read by the kernel, which reports EFAULT for it.
        result(unsafe { syscall6(nr::PROCESS_VM_READV, args) }).map(drop)
    }

    /// `clone(SIGCHLD, 0, ...)`: fork for a process that has no libc.
    ///
    /// # Safety
    /// As [`crate::process::fork`], and the process must have no libc.
    pub(crate) unsafe fn raw_fork() -> Result<i32, Errno> {
        const SIGCHLD: usize = 17;
        // SAFETY: with a null stack the child continues on a copy of ours,
        // exactly like fork(2); no pointer argument is passed.
        result(unsafe { syscall6(nr::CLONE, [SIGCHLD, 0, 0, 0, 0, 0]) }).map(|pid| pid as i32)
    }

    pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> Result<[u32; 3], Errno> {
        let mut cred = [0u32; 3];
        let mut len = size_of_val(&cred) as u32;
        let args = [
            fd.as_raw_fd() as usize,
            SOL_SOCKET as usize,
            SO_PEERCRED as usize,
            cred.as_mut_ptr() as usize,
            ptr::from_mut(&mut len) as usize,
            0,
        ];
        // SAFETY: a writable buffer of `len` bytes, and `len` itself.
        result(unsafe { syscall6(nr::GETSOCKOPT, args) }).map(|_| cred)
    }

    pub(crate) fn int_option(fd: BorrowedFd<'_>, name: i32) -> Result<i32, Errno> {
        let mut value: c_int = 0;
        let mut len = size_of_val(&value) as u32;
        let args = [
            fd.as_raw_fd() as usize,
            SOL_SOCKET as usize,
            name as usize,
            ptr::from_mut(&mut value) as usize,
            ptr::from_mut(&mut len) as usize,
            0,
        ];
        // SAFETY: a writable buffer of `len` bytes, and `len` itself.
        result(unsafe { syscall6(nr::GETSOCKOPT, args) }).map(|_| value)
    }

    pub(crate) fn exit(status: i32) -> ! {
        loop {
            // SAFETY: exit_group takes any status and does not return.
            unsafe { syscall6(nr::EXIT_GROUP, [status as usize, 0, 0, 0, 0, 0]) };
        }
    }

    pub(super) fn sigprocmask(how: i32, bits: u64) -> u64 {
        let mut old: u64 = 0;
        // SAFETY: valid 8-byte kernel signal sets; the size argument is 8.
        unsafe {
            syscall6(
                nr::RT_SIGPROCMASK,
                [
                    how as usize,
                    ptr::from_ref(&bits) as usize,
                    ptr::from_mut(&mut old) as usize,
                    8,
                    0,
                    0,
                ],
            )
        };
        old
    }

    pub(super) fn pending() -> u64 {
        let mut set: u64 = 0;
        // SAFETY: a valid 8-byte kernel signal set to fill; the size is 8.
        unsafe {
            syscall6(
                nr::RT_SIGPENDING,
                [ptr::from_mut(&mut set) as usize, 8, 0, 0, 0, 0],
            )
        };
        set
    }

    pub(super) fn take(bits: u64, info: &mut SigInfo) -> bool {
        let zero: [i64; 2] = [0, 0];
        // SAFETY: a valid set, siginfo buffer (128 bytes) and timeout.
        let ret = unsafe {
            syscall6(
                nr::RT_SIGTIMEDWAIT,
                [
                    ptr::from_ref(&bits) as usize,
                    ptr::from_mut(info) as usize,
                    ptr::from_ref(&zero) as usize,
                    8,
                    0,
                    0,
                ],
            )
        };
        ret > 0
    }

    /// # Safety
    /// The kernel reads `len` bytes at `buf` (or answers EFAULT).
    pub(super) unsafe fn write_raw(fd: c_int, buf: *const u8, len: usize) -> Result<usize, Errno> {
        // SAFETY: the caller's promise; the kernel checks the pointer.
        result(unsafe { syscall6(nr::WRITE, [fd as usize, buf as usize, len, 0, 0, 0]) })
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

/// The `recvmsg` system call itself, as rustix makes it (never one of
/// libc's cancellation points), where rawipc has raw system calls.
///
/// # Safety
/// `msg`'s buffers are writable for their lengths.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe fn recvmsg_raw(fd: i32, msg: *mut MsgHdr, flags: i32) -> Result<usize, Errno> {
    let args = [fd as usize, msg as usize, flags as u32 as usize, 0, 0, 0];
    // SAFETY: the caller's promise; the kernel checks the pointers.
    raw::result(unsafe { raw::syscall6(raw::nr::RECVMSG, args) })
}
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
use imp::recvmsg_raw;

/// `memfd_create(name, flags)`, made here where rawipc has raw system calls:
/// rustix's makes its `OwnedFd` through a check that the number is not -1,
/// a panic path the freestanding program must not link.
///
/// # References
/// - [memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html)
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn memfd_create(
    name: &core::ffi::CStr,
    flags: rustix::fs::MemfdFlags,
) -> Result<rustix::fd::OwnedFd, Errno> {
    use rustix::fd::FromRawFd;
    let args = [name.as_ptr() as usize, flags.bits() as usize, 0, 0, 0, 0];
    // SAFETY: a NUL-terminated name and flags; the kernel makes a new fd.
    let fd = raw::result(unsafe { raw::syscall6(raw::nr::MEMFD_CREATE, args) })?;
    let fd = i32::try_from(fd).map_err(|_| Errno::BADF)?;
    // SAFETY: a number that came from a `usize` is not negative.
    unsafe { core::hint::assert_unchecked(fd >= 0) };
    // SAFETY: the fd the kernel has just made for this call, ours alone.
    Ok(unsafe { rustix::fd::OwnedFd::from_raw_fd(fd) })
}
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) use rustix::fs::memfd_create;

/// `sendmsg(sock, {data, SCM_RIGHTS: fd}, MSG_NOSIGNAL)` (and `MSG_DONTWAIT`
/// if `nowait`): one message with one fd, its control message laid out here (rustix's builder indexes
/// slices, a panic path the freestanding program must not link).
///
/// # References
/// - [sendmsg(2)](https://man7.org/linux/man-pages/man2/sendmsg.2.html)
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn send_one_fd(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fd: BorrowedFd<'_>,
    nowait: bool,
) -> Result<usize, Errno> {
    /// `struct cmsghdr` and one fd, padded to `CMSG_SPACE(sizeof(int))`.
    #[repr(C)]
    struct Rights {
        len: usize,
        level: i32,
        kind: i32,
        fd: i32,
        pad: i32,
    }
    const SCM_RIGHTS: i32 = 1;
    const MSG_NOSIGNAL: usize = 0x4000;
    const MSG_DONTWAIT: usize = 0x40;
    let mut rights = Rights {
        len: size_of::<usize>() + 12,
        level: SOL_SOCKET,
        kind: SCM_RIGHTS,
        fd: fd.as_raw_fd(),
        pad: 0,
    };
    let mut iov = [data.as_ptr() as usize, data.len()];
    let msg = MsgHdr {
        name: core::ptr::null_mut(),
        namelen: 0,
        iov: &mut iov,
        iovlen: 1,
        control: (&raw mut rights).cast(),
        controllen: size_of::<Rights>(),
        flags: 0,
    };
    let args = [
        sock.as_raw_fd() as usize,
        (&raw const msg) as usize,
        MSG_NOSIGNAL | if nowait { MSG_DONTWAIT } else { 0 },
        0,
        0,
        0,
    ];
    // SAFETY: `msg` names `data` (only read) and one control message in
    // the kernel's layout, both alive for the call.
    raw::result(unsafe { raw::syscall6(raw::nr::SENDMSG, args) })
}

/// As above, through rustix.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) fn send_one_fd(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fd: BorrowedFd<'_>,
    nowait: bool,
) -> Result<usize, Errno> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [core::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Errno::INVAL);
    }
    rustix::net::sendmsg(
        sock,
        &[rustix::io::IoSlice::new(data)],
        &mut control,
        match nowait {
            true => SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            false => SendFlags::NOSIGNAL,
        },
    )
}

/// `fd.as_fd()` with nothing to check: rustix's `OwnedFd` for programs
/// without std checks that it is not -1 each time it is borrowed (a panic
/// path in every call), though no `OwnedFd` can be -1.
#[inline]
pub(crate) fn borrow(fd: &rustix::fd::OwnedFd) -> BorrowedFd<'_> {
    use rustix::fd::AsFd;
    // SAFETY: an `OwnedFd` is never -1: std's type cannot hold it, and
    // rustix's own `OwnedFd` refuses it when it is made (`from_raw_fd`).
    unsafe { core::hint::assert_unchecked(fd.as_raw_fd() != -1) };
    fd.as_fd()
}

/// `RWF_NOSIGNAL`: pwritev2's "no SIGPIPE" flag (Linux 6.18).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const RWF_NOSIGNAL: usize = 0x100;

/// One `write(fd, buf, len)` that never raises SIGPIPE: `EPIPE` instead.
/// `EINTR` and short counts are returned as the kernel gives them.
///
/// The thread's signal mask, the process's SIGPIPE disposition and the
/// signals pending for the thread and the process are left as they were.
///
/// # Safety
/// The kernel reads `len` bytes at `buf`: any address may be passed (an
/// unmapped one gives `EFAULT`), but the bytes there go into the file.
pub(crate) unsafe fn write_no_sigpipe(
    fd: BorrowedFd<'_>,
    buf: *const u8,
    len: usize,
) -> Result<usize, Errno> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let iov = [buf as usize, len];
        // SAFETY: one iovec of the caller's pointer and length; offset -1
        // (both halves) is the file's own position, as write(2) uses.
        let ret = unsafe {
            raw::syscall6(
                raw::nr::PWRITEV2,
                [
                    fd.as_raw_fd() as usize,
                    iov.as_ptr() as usize,
                    1,
                    usize::MAX,
                    usize::MAX,
                    RWF_NOSIGNAL,
                ],
            )
        };
        match raw::result(ret) {
            // A kernel before 6.18 (or a driver that takes no flags, or a
            // pwritev2 that does not exist): nothing was written.
            Err(Errno::OPNOTSUPP | Errno::NOSYS) => {}
            other => return other,
        }
    }
    // SAFETY: the caller's promise is passed on.
    unsafe { masked_write(fd, buf, len) }
}

/// `write(2)` with SIGPIPE blocked for the calling thread, for kernels
/// without `RWF_NOSIGNAL`.
///
/// A write to a pipe without readers adds a SIGPIPE to the *thread's*
/// pending set unless one is pending there already (a standard signal is
/// never queued twice); one pending for the *process* does not stop it.
/// `sigpending` shows the two sets as one, so when a SIGPIPE is pending
/// before the write, rawipc first queues a SIGPIPE of its own to the thread
/// (dropped if the thread has one already), which makes the write's own one
/// be dropped; afterwards it takes the first thread-pending SIGPIPE back and,
/// if that was not its own but the caller's, queues the caller's again with
/// the same siginfo. With nothing pending before, the write's SIGPIPE (if
/// any) is the only one, and is taken. The mask is then restored.
///
/// # Safety
/// As [`write_no_sigpipe`].
unsafe fn masked_write(fd: BorrowedFd<'_>, buf: *const u8, len: usize) -> Result<usize, Errno> {
    // SAFETY: the caller's promise is passed on.
    without_sigpipe(|| unsafe { imp::write_raw(fd.as_raw_fd(), buf, len) })
}

/// Runs `op` (writes to pipes or sockets, such as [`masked_write`]'s or a
/// `vmsplice`) with SIGPIPE blocked for the calling thread, and takes back
/// the SIGPIPE that an `EPIPE` from `op` raised, leaving the signals pending
/// before exactly as they were: see [`masked_write`].
pub(crate) fn without_sigpipe<T>(op: impl FnOnce() -> Result<T, Errno>) -> Result<T, Errno> {
    let was_blocked = imp::sigprocmask(SIG_BLOCK, SIGPIPE_BIT) & SIGPIPE_BIT != 0;
    let pending_before = imp::pending() & SIGPIPE_BIT != 0;
    let marked = pending_before && marker::queue();
    let result = op();
    let mut info = SigInfo::zeroed();
    if marked {
        // The thread's pending SIGPIPE is rawipc's or the caller's.
        if imp::take(SIGPIPE_BIT, &mut info) && !marker::is(&info) {
            marker::requeue(&info);
        }
    } else if !pending_before && matches!(result, Err(Errno::PIPE)) {
        // The thread's queue is taken before the process's.
        imp::take(SIGPIPE_BIT, &mut info);
    }
    if !was_blocked {
        imp::sigprocmask(SIG_UNBLOCK, SIGPIPE_BIT);
    }
    result
}

/// rawipc's own thread-directed SIGPIPE, told apart from any other by its
/// siginfo: `SI_QUEUE` from this process with the address of [`MARK`].
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod marker {
    use super::{SIGPIPE, SigInfo, raw};
    use core::ptr;

    const SI_QUEUE: i32 = -1;
    static MARK: u8 = 0;

    fn field(info: &SigInfo, offset: usize) -> [u8; 4] {
        let mut b = [0; 4];
        b.copy_from_slice(&info.0[offset..offset + 4]);
        b
    }

    /// The siginfo rawipc queues: signo, code, pid, uid and the mark.
    fn ours() -> SigInfo {
        let mut info = SigInfo::zeroed();
        info.0[0..4].copy_from_slice(&SIGPIPE.to_ne_bytes());
        info.0[8..12].copy_from_slice(&SI_QUEUE.to_ne_bytes());
        let pid = rustix::process::getpid().as_raw_nonzero().get();
        info.0[16..20].copy_from_slice(&pid.to_ne_bytes());
        let uid = rustix::process::getuid().as_raw();
        info.0[20..24].copy_from_slice(&uid.to_ne_bytes());
        info.0[24..32].copy_from_slice(&(ptr::from_ref(&MARK) as usize).to_ne_bytes());
        info
    }

    /// `rt_tgsigqueueinfo(getpid(), gettid(), SIGPIPE, info)`.
    fn send(info: &SigInfo) -> bool {
        let pid = rustix::process::getpid().as_raw_nonzero().get();
        let tid = rustix::thread::gettid().as_raw_nonzero().get();
        // SAFETY: a valid 128-byte siginfo; the kernel copies it.
        let ret = unsafe {
            raw::syscall6(
                raw::nr::RT_TGSIGQUEUEINFO,
                [
                    pid as usize,
                    tid as usize,
                    SIGPIPE as usize,
                    ptr::from_ref(info) as usize,
                    0,
                    0,
                ],
            )
        };
        raw::result(ret).is_ok()
    }

    /// Queues rawipc's SIGPIPE to this thread (dropped by the kernel if the
    /// thread has one pending); false if it could not be sent.
    pub(super) fn queue() -> bool {
        send(&ours())
    }

    /// Whether `info` is rawipc's SIGPIPE.
    pub(super) fn is(info: &SigInfo) -> bool {
        let want = ours();
        field(info, 0) == field(&want, 0)
            && field(info, 8) == field(&want, 8)
            && field(info, 16) == field(&want, 16)
            && info.0[24..32] == want.0[24..32]
    }

    /// Queues the caller's SIGPIPE to this thread again, siginfo and all.
    pub(super) fn requeue(info: &SigInfo) {
        send(info);
    }
}

/// Without raw system calls there is no way to queue a marked signal: a
/// SIGPIPE pending before the write is left alone, and one the write may
/// have added beside a process-directed one stays pending too.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod marker {
    use super::SigInfo;
    pub(super) fn queue() -> bool {
        false
    }
    pub(super) fn is(_: &SigInfo) -> bool {
        true
    }
    pub(super) fn requeue(_: &SigInfo) {}
}

/// Every SIGPIPE state a caller can be in, for both ways of writing without
/// SIGPIPE (the `RWF_NOSIGNAL` write and the masked fallback that older
/// kernels get). Each case runs in a forked child (the test binary has
/// threads, and signal dispositions and process-pending signals are the
/// process's), which makes only async-signal-safe calls and reports the line
/// of its first failed check as its exit status. (Not with `freestanding`:
/// the test binary has a libc, so fork must be libc's.)
#[cfg(all(test, not(feature = "freestanding")))]
mod tests {
    use super::{Errno, SIGPIPE, SigInfo, masked_write, write_no_sigpipe};
    use core::sync::atomic::{AtomicU32, Ordering};
    use rustix::fd::{AsFd, BorrowedFd};

    static HANDLED: AtomicU32 = AtomicU32::new(0);

    extern "C" fn count(_: libc::c_int) {
        HANDLED.fetch_add(1, Ordering::SeqCst);
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Disposition {
        Default,
        Ignored,
        Handled,
    }

    #[derive(Clone, Copy)]
    struct Case {
        disposition: Disposition,
        blocked: bool,
        thread_pending: bool,
        process_pending: bool,
    }

    type Write = unsafe fn(BorrowedFd<'_>, *const u8, usize) -> Result<usize, Errno>;

    macro_rules! check {
        ($cond:expr) => {
            if !$cond {
                return line!() as i32 % 250 + 1;
            }
        };
    }

    fn set_disposition(d: Disposition) -> bool {
        // SAFETY: a zeroed sigaction with a valid handler.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = match d {
                Disposition::Default => libc::SIG_DFL,
                Disposition::Ignored => libc::SIG_IGN,
                Disposition::Handled => count as extern "C" fn(libc::c_int) as libc::sighandler_t,
            };
            libc::sigaction(SIGPIPE, &sa, core::ptr::null_mut()) == 0
        }
    }

    fn disposition() -> libc::sighandler_t {
        // SAFETY: a null new action only queries.
        unsafe {
            let mut old: libc::sigaction = core::mem::zeroed();
            libc::sigaction(SIGPIPE, core::ptr::null(), &mut old);
            old.sa_sigaction
        }
    }

    fn mask(how: libc::c_int) -> libc::sigset_t {
        // SAFETY: valid sets.
        unsafe {
            let mut set: libc::sigset_t = core::mem::zeroed();
            let mut old: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, SIGPIPE);
            libc::pthread_sigmask(how, &set, &mut old);
            old
        }
    }

    fn pending_count() -> u32 {
        let mut n = 0;
        let mut info = SigInfo::zeroed();
        while super::imp::take(super::SIGPIPE_BIT, &mut info) {
            n += 1;
        }
        n
    }

    /// A thread-directed SIGPIPE whose siginfo carries `value`.
    fn queue_to_thread(value: usize) -> bool {
        // SAFETY: a zeroed siginfo with signo, code SI_QUEUE and a value.
        unsafe {
            let mut info: libc::siginfo_t = core::mem::zeroed();
            let raw = core::ptr::from_mut(&mut info).cast::<u8>();
            raw.cast::<i32>().write(SIGPIPE);
            raw.add(8).cast::<i32>().write(libc::SI_QUEUE);
            raw.add(16).cast::<i32>().write(libc::getpid());
            raw.add(24).cast::<usize>().write(value);
            libc::syscall(
                libc::SYS_rt_tgsigqueueinfo,
                libc::getpid(),
                libc::gettid(),
                SIGPIPE,
                &info,
            ) == 0
        }
    }

    fn run_case(write: Write, case: Case) -> i32 {
        const VALUE: usize = 0x5eed;
        check!(set_disposition(case.disposition));
        let before = mask(if case.blocked {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        });
        let _ = before;
        let (r, w) = rustix::pipe::pipe().unwrap_or_else(|_| super::exit(200));
        drop(r);
        if case.thread_pending {
            check!(queue_to_thread(VALUE));
        }
        if case.process_pending {
            let me = rustix::process::getpid();
            check!(rustix::process::kill_process(me, rustix::process::Signal::PIPE).is_ok());
        }
        let handled_before = HANDLED.load(Ordering::SeqCst);
        let buf = [7u8; 100];
        // SAFETY: a valid buffer.
        let got = unsafe { write(w.as_fd(), buf.as_ptr(), buf.len()) };
        check!(got == Err(Errno::PIPE));
        // No handler ran, the mask and the disposition are as they were.
        check!(HANDLED.load(Ordering::SeqCst) == handled_before);
        let now = mask(libc::SIG_BLOCK);
        // SAFETY: a valid set.
        check!(unsafe { libc::sigismember(&now, SIGPIPE) } == case.blocked as i32);
        let want = match case.disposition {
            Disposition::Default => libc::SIG_DFL,
            Disposition::Ignored => libc::SIG_IGN,
            Disposition::Handled => count as extern "C" fn(libc::c_int) as libc::sighandler_t,
        };
        check!(disposition() == want);
        if !case.blocked {
            let _ = mask(libc::SIG_UNBLOCK);
            return 0;
        }
        // Exactly the SIGPIPEs pending before are pending now.
        if case.thread_pending {
            // The thread's comes first, with its own siginfo.
            let mut info = SigInfo::zeroed();
            check!(super::imp::take(super::SIGPIPE_BIT, &mut info));
            let mut value = [0u8; 8];
            value.copy_from_slice(&info.0[24..32]);
            check!(usize::from_ne_bytes(value) == VALUE);
        }
        let expected = u32::from(case.process_pending);
        check!(pending_count() == expected);
        0
    }

    fn in_child(write: Write, case: Case) -> i32 {
        // SAFETY: the child makes only async-signal-safe calls and exits.
        match unsafe { super::raw_fork() } {
            Ok(0) => super::exit(run_case(write, case)),
            Ok(pid) => {
                let pid = rustix::process::Pid::from_raw(pid).expect("a pid");
                let (_, status) =
                    rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                        .expect("waitpid")
                        .expect("a status");
                status.as_raw()
            }
            Err(e) => panic!("fork: {e}"),
        }
    }

    fn every_case(write: Write, name: &str) {
        let mut failed = 0;
        for disposition in [
            Disposition::Default,
            Disposition::Ignored,
            Disposition::Handled,
        ] {
            for blocked in [false, true] {
                for (thread_pending, process_pending) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    if !blocked && (thread_pending || process_pending) {
                        continue; // it would have been delivered
                    }
                    let case = Case {
                        disposition,
                        blocked,
                        thread_pending,
                        process_pending,
                    };
                    let status = in_child(write, case);
                    if status != 0 {
                        failed += 1;
                        std::eprintln!(
                            "{name}: {:?} blocked {blocked} pending thread {thread_pending} process \
                             {process_pending}: child status {status:#x} (exit code = line % 250 + 1)",
                            disposition as u8
                        );
                    }
                }
            }
        }
        assert_eq!(
            failed, 0,
            "{name}: some SIGPIPE states were not left as they were"
        );
    }

    #[test]
    fn write_without_sigpipe_leaves_every_sigpipe_state_as_it_was() {
        every_case(write_no_sigpipe, "write_no_sigpipe");
    }

    #[test]
    fn masked_fallback_leaves_every_sigpipe_state_as_it_was() {
        every_case(masked_write, "masked_write");
    }
}

#[cfg(test)]
mod peer_cred_tests {
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
