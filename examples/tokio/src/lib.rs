//! A rawipc channel driven from tokio: [`AsyncSender`] and
//! [`AsyncReceiver`] wrap a channel's ends in [`tokio::io::unix::AsyncFd`],
//! through each end's readiness fd, so that a task awaits a message or room
//! instead of blocking a thread. rawipc itself has no runtime and no async
//! code: this is all it takes.
//!
//! The fd of an end turns readable when the end can make progress, and is
//! armed by a `try_` call that fails with `EAGAIN`: so each operation tries
//! first, and awaits readiness only after an `EAGAIN` (tokio registers the
//! fd edge-triggered, and clears its readiness when the closure passed to
//! [`AsyncFdReadyMutGuard::try_io`](tokio::io::unix::AsyncFdReadyMutGuard::try_io)
//! fails with `WouldBlock`, which is exactly the rule: try until `EAGAIN`,
//! then wait). Both ends wait for *read* readiness: the sender's fd says
//! "room" by turning readable (as a socket, it is always writable).

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use rawipc::Errno;
use rawipc::chan::{Receiver, Sender};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A channel end as `AsyncFd` wants it (`AsRawFd`).
#[derive(Debug)]
struct End<T>(T);

impl<T: AsFd> AsRawFd for End<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// The sending end of a channel, for tasks.
#[derive(Debug)]
pub struct AsyncSender(AsyncFd<End<Sender>>);

/// The receiving end of a channel, for tasks.
#[derive(Debug)]
pub struct AsyncReceiver(AsyncFd<End<Receiver>>);

impl AsyncSender {
    /// Registers the end with the current tokio runtime's reactor.
    pub fn new(tx: Sender) -> io::Result<Self> {
        // SAFETY: the end owns its fd, which stays open, the same fd, for
        // as long as the end lives (it is closed when the end is dropped).
        let fd = unsafe { AsyncFd::register_with_interest(End(tx), Interest::READABLE) };
        Ok(Self(fd?))
    }

    /// Sends `msg` as one message, waiting (as a task) while the ring is
    /// full. Errors: those of [`Sender::try_send`] but `EAGAIN`: `EPIPE`
    /// once the receiver is gone and the ring is full, `EMSGSIZE`, ...
    pub async fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match self.0.get_mut().0.try_send(msg) {
            Err(Errno::AGAIN) => {}
            other => return other.map_err(io::Error::from),
        }
        loop {
            let mut ready = self.0.readable_mut().await?;
            match ready.try_io(|end| end.get_mut().0.try_send(msg).map_err(io::Error::from)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// The end itself, for the calls that do not wait.
    pub fn get_mut(&mut self) -> &mut Sender {
        &mut self.0.get_mut().0
    }
}

impl AsyncReceiver {
    /// Registers the end with the current tokio runtime's reactor.
    pub fn new(rx: Receiver) -> io::Result<Self> {
        // SAFETY: the end owns its fd, which stays open, the same fd, for
        // as long as the end lives (it is closed when the end is dropped).
        let fd = unsafe { AsyncFd::register_with_interest(End(rx), Interest::READABLE) };
        Ok(Self(fd?))
    }

    /// Receives one whole message into `buf`, waiting (as a task) for one:
    /// its length, or 0 once the sender is gone and every message it sent
    /// has been received. Errors: those of [`Receiver::try_recv`] but
    /// `EAGAIN` (`EMSGSIZE`: the message stays queued).
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.get_mut().0.try_recv(buf) {
            Err(Errno::AGAIN) => {}
            other => return other.map_err(io::Error::from),
        }
        loop {
            let mut ready = self.0.readable_mut().await?;
            match ready.try_io(|end| end.get_mut().0.try_recv(buf).map_err(io::Error::from)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// The end itself, for the calls that do not wait.
    pub fn get_mut(&mut self) -> &mut Receiver {
        &mut self.0.get_mut().0
    }
}
