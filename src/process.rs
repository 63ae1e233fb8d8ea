//! Processes: `fork`, `wait`, `waitpid` and `_exit`.
//!
//! The notes' pattern: the parent makes what is to be shared (shared memory, a
//! pipe, a socket pair), forks, and the child inherits it; the parent waits for
//! the child and learns how it ended.

use rustix::process::{WaitOptions as RawOptions, wait as raw_wait, waitpid as raw_waitpid};

pub use rustix::process::{Pid, getpid, getppid};

use crate::{Errno, Result, retry, sys};

/// Which side of a [`fork`] this process is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fork {
    /// This is the new process.
    Child,
    /// This is the process that called `fork`; the child has this id.
    Parent(Pid),
}

/// `fork()`: makes a child process, a copy of this one.
///
/// In a process that has libc this is libc's `fork`, so `pthread_atfork`
/// handlers run and libc's own state stays right in the child. With the
/// `freestanding` feature (programs with no libc at all) it is the raw
/// `clone(SIGCHLD)` system call. Which to use when: see
/// [the crate's documentation](crate#with-libc-or-without).
///
/// # Safety
/// - **Threads.** In a process with more than one thread, the child has only
///   the calling thread: until it calls [`exit`] (or execs), it may only do
///   what is async-signal-safe, since a lock held by another thread (the
///   allocator's, a `Mutex`'s) stays locked forever in the child.
/// - **Live borrows of shared memory.** Memory shared by `fork` (a
///   [`Shared`](crate::shm::Shared) value, a channel's ring) is the *same*
///   memory in both processes, so a borrow that Rust thinks unique is not
///   after the fork: neither process may use one that was alive at the fork,
///   though each keeps a copy of it. These are:
///   - a [`MutexGuard`](crate::mutex::MutexGuard): the child would get a
///     `&mut T` to the value while the parent holds the lock (the lock is the
///     parent's, not the child's: the child does not hold it);
///   - a [`Reservation`](crate::chan::Reservation) or a
///     [`Message`](crate::chan::Message): two processes would write, or
///     give back, the same bytes of the ring;
///   - a [`Sender`](crate::chan::Sender) or a
///     [`Receiver`](crate::chan::Receiver), if both processes go on using it:
///     a channel has one sender and one receiver, each keeping its position
///     in private memory. Fork with a [`Channel`](crate::chan::Channel) and
///     turn it into one end in each process; an end that only one of the two
///     processes uses afterwards (the other drops it, or leaves) is fine.
///
///   Drop them before forking, or leave them unused on one side (a child
///   that calls [`exit`] at once uses nothing).
/// - With `freestanding`, the process must have no libc.
///
/// # References
/// - [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html)
pub unsafe fn fork() -> Result<Fork> {
    // SAFETY: the caller upholds fork's contract.
    match unsafe { sys::raw_fork() }? {
        0 => Ok(Fork::Child),
        // SAFETY: a positive pid from fork.
        pid => Ok(Fork::Parent(unsafe { Pid::from_raw_unchecked(pid) })),
    }
}

/// `_exit(status)`: ends this process at once, without running `atexit`
/// handlers or flushing anything, which is how a forked child should leave.
/// With the `freestanding` feature it is the `exit_group` system call that
/// `_exit` makes.
///
/// # References
/// - [_exit(2)](https://man7.org/linux/man-pages/man2/_exit.2.html)
#[doc(alias = "_exit")]
pub fn exit(status: i32) -> ! {
    sys::exit(status)
}

/// How a child ended (or changed state), decoded from `wait`'s status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It called `exit`/`_exit` or returned from `main`, with this code.
    Exited(u8),
    /// A signal killed it.
    Killed {
        /// The signal's number (`SIGKILL` is 9).
        signal: i32,
        /// Whether it left a core dump.
        core_dumped: bool,
    },
    /// A signal stopped it (reported with `WaitOptions::UNTRACED`).
    Stopped(i32),
    /// `SIGCONT` resumed it (reported with `WaitOptions::CONTINUED`).
    Continued,
}

impl Status {
    /// Decodes the `int` that `wait(2)` fills in.
    pub const fn from_raw(raw: i32) -> Self {
        let low = raw & 0x7f;
        if low == 0 {
            Status::Exited(((raw >> 8) & 0xff) as u8)
        } else if raw & 0xff == 0x7f {
            Status::Stopped((raw >> 8) & 0xff)
        } else if raw == 0xffff {
            Status::Continued
        } else {
            Status::Killed {
                signal: low,
                core_dumped: raw & 0x80 != 0,
            }
        }
    }

    /// The `int` that `wait(2)` would fill in, so C's `WIFEXITED` etc. apply.
    pub const fn to_raw(self) -> i32 {
        match self {
            Status::Exited(code) => (code as i32) << 8,
            Status::Killed {
                signal,
                core_dumped,
            } => signal | if core_dumped { 0x80 } else { 0 },
            Status::Stopped(signal) => (signal << 8) | 0x7f,
            Status::Continued => 0xffff,
        }
    }

    /// True if it exited with code 0.
    pub const fn success(self) -> bool {
        matches!(self, Status::Exited(0))
    }

    /// Its exit code if it exited (`WEXITSTATUS`), as
    /// `std::process::ExitStatus::code`; `None` if a signal ended or
    /// stopped it, or it was resumed.
    #[doc(alias = "WEXITSTATUS")]
    pub const fn code(self) -> Option<i32> {
        match self {
            Status::Exited(code) => Some(code as i32),
            _ => None,
        }
    }

    /// The signal that killed it (`WTERMSIG`), as std's
    /// `ExitStatusExt::signal`; `None` if it exited, stopped or resumed.
    #[doc(alias = "WTERMSIG")]
    pub const fn signal(self) -> Option<i32> {
        match self {
            Status::Killed { signal, .. } => Some(signal),
            _ => None,
        }
    }

    /// The signal that stopped it (`WSTOPSIG`); `None` for any other status.
    #[doc(alias = "WSTOPSIG")]
    pub const fn stopped_signal(self) -> Option<i32> {
        match self {
            Status::Stopped(signal) => Some(signal),
            _ => None,
        }
    }
}

impl core::fmt::Display for Status {
    /// As std's `ExitStatus` shows itself: `exit status: 1`, `signal: 9`,
    /// `signal: 6 (core dumped)`, `stopped (signal: 19)`, `continued`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Status::Exited(code) => write!(f, "exit status: {code}"),
            Status::Killed {
                signal,
                core_dumped,
            } => {
                write!(f, "signal: {signal}")?;
                if core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
            Status::Stopped(signal) => write!(f, "stopped (signal: {signal})"),
            Status::Continued => f.write_str("continued"),
        }
    }
}

/// The same status as std's type, for code that works with
/// `std::process::ExitStatus`.
#[cfg(feature = "std")]
impl From<Status> for std::process::ExitStatus {
    fn from(status: Status) -> std::process::ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        std::process::ExitStatus::from_raw(status.to_raw())
    }
}

/// Options of [`waitpid`]: `WNOHANG`, `WUNTRACED`, `WCONTINUED`.
pub type WaitOptions = RawOptions;

/// `wait(&status)`: waits for any child to end, and reaps it.
///
/// Errors: `ECHILD` if this process has no child left to wait for.
///
/// # References
/// - [wait(2)](https://man7.org/linux/man-pages/man2/wait.2.html)
pub fn wait() -> Result<(Pid, Status)> {
    crate::explain::before_wait(None, 0);
    match retry(|| raw_wait(RawOptions::empty()))? {
        Some((pid, status)) => Ok((pid, Status::from_raw(status.as_raw()))),
        // Without WNOHANG the kernel always reports a child.
        None => Err(Errno::CHILD),
    }
}

/// `waitpid(-1, &status, options)`: waits for any child, with options;
/// `WaitOptions::NOHANG` makes it a check that does not wait.
///
/// Returns `None` only with `WaitOptions::NOHANG` when no child has changed
/// state yet.
///
/// ```no_run
/// use rawipc::process::{self, WaitOptions};
/// // Reap every child that has ended, without waiting for the others.
/// while let Ok(Some((pid, status))) = process::wait_any(WaitOptions::NOHANG) {
///     println!("{pid:?}: {status}");
/// }
/// ```
///
/// Errors: `ECHILD` if this process has no child left to wait for, `EINVAL`
/// for options the kernel does not know.
///
/// # References
/// - [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html)
#[doc(alias = "waitpid")]
pub fn wait_any(options: WaitOptions) -> Result<Option<(Pid, Status)>> {
    let reaped = retry(|| raw_wait(options))?;
    Ok(reaped.map(|(pid, status)| (pid, Status::from_raw(status.as_raw()))))
}

/// `waitpid(pid, &status, options)`: waits for the child `pid` (for any
/// child, see [`wait_any`]).
///
/// Returns `None` only with `WaitOptions::NOHANG` when the child has not
/// changed state yet.
///
/// Errors: `ECHILD` if `pid` is not a child of this process, `EINVAL` for
/// options the kernel does not know.
///
/// # References
/// - [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html)
pub fn waitpid(pid: Pid, options: WaitOptions) -> Result<Option<(Pid, Status)>> {
    crate::explain::before_wait(Some(pid), options.bits() as i32);
    let reaped = retry(|| raw_waitpid(Some(pid), options))?;
    Ok(reaped.map(|(pid, status)| (pid, Status::from_raw(status.as_raw()))))
}

#[cfg(test)]
mod tests {
    use super::Status;

    /// Calls `f` with every status the kernel can report: each exit code,
    /// each signal (1..=64) with and without a core dump, each stop, continued.
    fn for_every_status(mut f: impl FnMut(Status)) {
        for code in 0..=255 {
            f(Status::Exited(code));
        }
        for signal in 1..=64 {
            f(Status::Killed {
                signal,
                core_dumped: false,
            });
            f(Status::Killed {
                signal,
                core_dumped: true,
            });
            f(Status::Stopped(signal));
        }
        f(Status::Continued);
    }

    #[test]
    fn to_raw_then_from_raw_is_the_same_status() {
        let mut count = 0;
        for_every_status(|status| {
            assert_eq!(Status::from_raw(status.to_raw()), status);
            count += 1;
        });
        assert_eq!(count, 256 + 3 * 64 + 1);
    }

    #[test]
    fn every_status_has_its_own_raw_value() {
        let mut seen = [false; 0x10000];
        for_every_status(|status| {
            let raw = status.to_raw();
            assert!((0..0x10000).contains(&raw), "{status:?}: {raw:#x}");
            assert!(!seen[raw as usize], "{status:?}: {raw:#x} twice");
            seen[raw as usize] = true;
        });
    }

    /// The kernel's encoding (wait(2)): exit code in bits 8..16; terminating
    /// signal in bits 0..7 with 0x80 for a core dump; 0x7f with the stop
    /// signal in bits 8..16; 0xffff for continued.
    #[test]
    fn from_raw_decodes_the_kernels_encoding() {
        assert_eq!(Status::from_raw(0), Status::Exited(0));
        assert_eq!(Status::from_raw(0x0100), Status::Exited(1));
        assert_eq!(Status::from_raw(0xff00), Status::Exited(255));
        assert_eq!(
            Status::from_raw(9),
            Status::Killed {
                signal: 9,
                core_dumped: false
            }
        );
        assert_eq!(
            Status::from_raw(0x86),
            Status::Killed {
                signal: 6,
                core_dumped: true
            }
        );
        assert_eq!(Status::from_raw(0x137f), Status::Stopped(19));
        assert_eq!(Status::from_raw(0xffff), Status::Continued);
    }

    #[test]
    fn success_is_exit_code_zero_only() {
        for_every_status(|status| {
            assert_eq!(status.success(), status == Status::Exited(0), "{status:?}");
        });
    }
}
