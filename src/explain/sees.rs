//! What explain mode looks at: this process's own fds and children, with
//! system calls that neither read, write, reap nor block (`fstat`,
//! `fcntl(F_GETFL)`, `FIONREAD`, `F_GETPIPE_SZ`, `poll` with a zero timeout,
//! `waitid(WNOHANG | WNOWAIT)`), and no file system.
//!
//! This process's fds are found with `poll` (zero timeout) over fds 0 to
//! RLIMIT_NOFILE, at most 65536, 256 at a time (a closed fd answers
//! POLLNVAL), and each open one is `fstat`ed: the same device and inode is
//! the same pipe, `F_GETFL` tells its end. `/proc/self/fd` would be shorter
//! to walk, but it is a file system, and may not be mounted.

use core::ffi::c_int;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fd::BorrowedFd;
use rustix::fs::{FileType, OFlags, fcntl_getfl, fstat};
use rustix::io::ioctl_fionread;
use rustix::pipe::fcntl_getpipe_size;
use rustix::process::{Pid, Resource, WaitId, WaitIdOptions, getrlimit, waitid};

/// The highest fd number the checks look at, whatever RLIMIT_NOFILE says.
const MAX_FDS: u64 = 1 << 16;

/// PIPE_BUF: a pipe with less room than this is "full" to a record writer.
const PIPE_BUF: u64 = 4096;

/// A caller's fd number, for checks that only take a number.
pub fn borrow(fd: c_int) -> Option<BorrowedFd<'static>> {
    // SAFETY: only used for checks that take a number; a closed or reused
    // fd makes them fail (EBADF) or look at what is there now, harmlessly.
    (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
}

/// The pipe's identity (device, inode) if `fd` is a pipe or FIFO.
pub fn is_pipe(fd: c_int) -> Option<(u64, u64)> {
    let st = fstat(borrow(fd)?).ok()?;
    (FileType::from_raw_mode(st.st_mode as _) == FileType::Fifo)
        .then_some((st.st_dev as u64, st.st_ino as u64))
}

/// How `fd` was opened: for reading, for writing, or both.
pub fn access(fd: c_int) -> Option<(bool, bool)> {
    let mode = fcntl_getfl(borrow(fd)?).ok()? & OFlags::RWMODE;
    Some((mode != OFlags::WRONLY, mode != OFlags::RDONLY))
}

/// A blocking pipe read end with nothing in it: the read will wait.
pub fn empty_blocking_pipe(fd: c_int) -> bool {
    let Some(b) = borrow(fd) else { return false };
    is_pipe(fd).is_some()
        && fcntl_getfl(b)
            .is_ok_and(|f| !f.contains(OFlags::NONBLOCK) && (f & OFlags::RWMODE) != OFlags::WRONLY)
        && ioctl_fionread(b).is_ok_and(|n| n == 0)
}

/// A pipe write end whose read ends are all closed (POLLERR).
pub fn no_reader(fd: c_int) -> bool {
    let Some(b) = borrow(fd) else { return false };
    let mut fds = [PollFd::new(&b, PollFlags::OUT)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).is_ok() && fds[0].revents().contains(PollFlags::ERR)
}

/// Calls `each` with every open fd of this process, lowest first, until it
/// returns Some.
pub fn open_fds<T>(mut each: impl FnMut(c_int) -> Option<T>) -> Option<T> {
    let limit = getrlimit(Resource::Nofile)
        .current
        .unwrap_or(MAX_FDS)
        .min(MAX_FDS) as c_int;
    const CHUNK: c_int = 256;
    let mut first = 0;
    while first < limit {
        let count = CHUNK.min(limit - first);
        // SAFETY: numbers only; poll reports a closed one as POLLNVAL.
        let fds: [BorrowedFd<'static>; CHUNK as usize] =
            core::array::from_fn(|i| unsafe { BorrowedFd::borrow_raw(first + i as c_int) });
        let mut polled: [PollFd<'_>; CHUNK as usize] =
            core::array::from_fn(|i| PollFd::new(&fds[i], PollFlags::empty()));
        let polled = &mut polled[..count as usize];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        if poll(polled, Some(&zero)).is_err() {
            return None;
        }
        for (i, p) in polled.iter().enumerate() {
            if !p.revents().contains(PollFlags::NVAL) {
                if let Some(found) = each(first + i as c_int) {
                    return Some(found);
                }
            }
        }
        first += count;
    }
    None
}

/// Another fd of this process that is a write end of the pipe `fd` reads.
pub fn write_end_held(fd: c_int) -> Option<c_int> {
    let pipe = is_pipe(fd)?;
    open_fds(|other| {
        (other != fd && is_pipe(other) == Some(pipe) && access(other)?.1).then_some(other)
    })
}

/// A pipe read end that is (all but) full.
#[derive(Debug)]
pub struct FullPipe {
    /// The read end.
    pub fd: c_int,
    /// Bytes waiting in the pipe (FIONREAD).
    pub unread: u64,
    /// The pipe's size (F_GETPIPE_SZ).
    pub size: u64,
}

/// A pipe read end of this process with less than PIPE_BUF bytes of room.
pub fn full_pipe_held() -> Option<FullPipe> {
    open_fds(|fd| {
        is_pipe(fd)?;
        if !access(fd)?.0 {
            return None;
        }
        let unread = ioctl_fionread(borrow(fd)?).ok()?;
        let size = fcntl_getpipe_size(borrow(fd)?).ok()? as u64;
        (unread + PIPE_BUF > size).then_some(FullPipe { fd, unread, size })
    })
}

/// The waitid target and options that match waitpid(pid, options), or None
/// if waitpid returns at once (WNOHANG, options it refuses, pid INT_MIN).
pub fn wait_target(pid: c_int, options: c_int) -> Option<(WaitId<'static>, WaitIdOptions)> {
    const WNOHANG: c_int = 1;
    // WUNTRACED, WCONTINUED, __WNOTHREAD, __WCLONE, __WALL: the options
    // wait4 takes besides WNOHANG, with the same values for waitid.
    const PASSED: c_int = 2 | 8 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000_u32 as c_int;
    if options & WNOHANG != 0 || options & !PASSED != 0 {
        return None;
    }
    let id = match pid {
        -1 => WaitId::All,
        0 => WaitId::Pgid(None),
        p if p > 0 => WaitId::Pid(Pid::from_raw(p)?),
        p if p > c_int::MIN => WaitId::Pgid(Pid::from_raw(-p)),
        _ => return None,
    };
    let how = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    Some((id, how | WaitIdOptions::from_bits_retain(options as u32)))
}

/// True if a child it waits for exists and none has anything to report yet.
pub fn wait_would_block(pid: c_int, options: c_int) -> bool {
    wait_target(pid, options).is_some_and(|(id, how)| matches!(waitid(id, how), Ok(None)))
}
