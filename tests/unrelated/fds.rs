//! Passing fds: they arrive close-on-exec and whole, and a receive without
//! room for the message or its fds, or without free fds, loses nothing.

use rawipc::msg::{self, MAX_FDS, MsgSocket};
use rawipc::{AsFd, BorrowedFd, Errno, OwnedFd};
use rustix::io::FdFlags;

use super::*;

fn pair() -> (MsgSocket, MsgSocket) {
    msg::socketpair().expect("socketpair")
}

/// `n` pipes: their read ends, and the write ends to send.
fn pipes(n: usize) -> (Vec<rawipc::pipe::ReadEnd>, Vec<rawipc::pipe::WriteEnd>) {
    (0..n).map(|_| rawipc::pipe::pipe().expect("pipe")).unzip()
}

/// The received write end `w` writes into the pipe whose read end is `r`.
fn same_pipe(r: &rawipc::pipe::ReadEnd, w: &OwnedFd, tag: u8) {
    rustix::io::write(w, &[tag]).expect("write the received end");
    let mut b = [0u8; 1];
    assert_eq!(r.read(&mut b), Ok(1));
    assert_eq!(b[0], tag);
}

fn borrowed<T: AsFd>(v: &[T]) -> Vec<BorrowedFd<'_>> {
    v.iter().map(|f| f.as_fd()).collect()
}

pub fn fds_travel_and_arrive_close_on_exec() {
    let (a, b) = pair();
    let (rs, ws) = pipes(3);
    assert_eq!(a.send_fds(b"three", &borrowed(&ws)), Ok(5));
    drop(ws);
    let mut buf = [0u8; 16];
    let mut fds: [Option<OwnedFd>; 4] = Default::default();
    assert_eq!(b.recv_fds(&mut buf, &mut fds), Ok((5, 3)));
    assert_eq!(&buf[..5], b"three");
    assert!(fds[3].is_none());
    for (i, (r, w)) in rs.iter().zip(&fds).enumerate() {
        let w = w.as_ref().expect("a received fd");
        let flags = rustix::io::fcntl_getfd(w).unwrap();
        assert!(
            flags.contains(FdFlags::CLOEXEC),
            "received fds are close-on-exec"
        );
        same_pipe(r, w, i as u8);
    }
    // A plain message through recv_fds, and recv_fds's next_sizes.
    a.send(b"plain").unwrap();
    assert_eq!(msg::next_sizes(&b), Ok((5, 0)));
    assert_eq!(b.recv_fds(&mut buf, &mut []), Ok((5, 0)));
}

pub fn too_many_fds_for_the_room_loses_nothing() {
    let (a, b) = pair();
    let (rs, ws) = pipes(3);
    a.send_fds(b"abc", &borrowed(&ws)).unwrap();
    drop(ws);
    let before = fd_count();
    let mut buf = [0u8; 16];
    for room in 0..3 {
        let mut fds: Vec<Option<OwnedFd>> = (0..room).map(|_| None).collect();
        assert_eq!(b.recv_fds(&mut buf, &mut fds), Err(Errno::MSGSIZE));
        assert!(fds.iter().all(Option::is_none));
        assert_eq!(fd_count(), before, "no copy left open");
    }
    // A plain receive into too small a buffer does not take it either.
    assert_eq!(b.recv(&mut [0; 2]), Err(Errno::MSGSIZE));
    assert_eq!(msg::next_sizes(&b), Ok((3, 3)));
    assert_eq!(fd_count(), before);
    let mut fds: [Option<OwnedFd>; 3] = Default::default();
    assert_eq!(b.recv_fds(&mut buf, &mut fds), Ok((3, 3)));
    for (i, (r, w)) in rs.iter().zip(&fds).enumerate() {
        same_pipe(r, w.as_ref().unwrap(), i as u8);
    }
    assert_eq!(fd_count(), before + 3);
}

pub fn too_long_a_message_with_fds_loses_nothing() {
    let (a, b) = pair();
    let (rs, ws) = pipes(2);
    a.send_fds(&[7u8; 100], &borrowed(&ws)).unwrap();
    drop(ws);
    let before = fd_count();
    let mut fds: [Option<OwnedFd>; 8] = Default::default();
    let mut small = [0u8; 99];
    assert_eq!(b.recv_fds(&mut small, &mut fds), Err(Errno::MSGSIZE));
    assert_eq!(small, [0u8; 99], "the buffer is not written on EMSGSIZE");
    assert_eq!(fd_count(), before);
    let mut buf = [0u8; 100];
    assert_eq!(b.recv_fds(&mut buf, &mut fds), Ok((100, 2)));
    assert_eq!(buf, [7u8; 100]);
    same_pipe(&rs[1], fds[1].as_ref().unwrap(), 9);
}

pub fn the_kernel_maximum_of_fds_passes() {
    let (a, b) = pair();
    let (r, w) = rawipc::pipe::pipe().unwrap();
    let many = vec![w.as_fd(); MAX_FDS];
    assert_eq!(a.send_fds(b"max", &many), Ok(3));
    let mut one_more = many.clone();
    one_more.push(w.as_fd());
    assert_eq!(a.send_fds(b"over", &one_more), Err(Errno::INVAL));
    let mut fds: Vec<Option<OwnedFd>> = (0..MAX_FDS).map(|_| None).collect();
    let mut buf = [0u8; 8];
    assert_eq!(b.recv_fds(&mut buf, &mut fds), Ok((3, MAX_FDS)));
    same_pipe(&r, fds[MAX_FDS - 1].as_ref().unwrap(), 1);
}

pub fn out_of_fds_loses_nothing() {
    let (a, b) = pair();
    let (rs, ws) = pipes(5);
    a.send_fds(b"five", &borrowed(&ws)).unwrap();
    drop(ws);
    let child = spawn(move || {
        // Room for two more fds only: the five cannot all be installed.
        let open = fd_count() as u64;
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let low = rustix::process::Rlimit {
            current: Some(open + 1),
            maximum: limit.maximum,
        };
        rustix::process::setrlimit(rustix::process::Resource::Nofile, low).unwrap();
        let mut fds: [Option<OwnedFd>; 5] = Default::default();
        let mut buf = [0u8; 8];
        assert_eq!(b.recv_fds(&mut buf, &mut fds), Err(Errno::MFILE));
        assert!(fds.iter().all(Option::is_none));
        assert_eq!(fd_count() as u64, open, "no copy left open");
        rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).unwrap();
        assert_eq!(b.recv_fds(&mut buf, &mut fds), Ok((4, 5)));
        for (i, (r, w)) in rs.iter().zip(&fds).enumerate() {
            same_pipe(r, w.as_ref().unwrap(), i as u8);
        }
    });
    drop(a);
    expect_success(child);
}

pub fn peer_gone_after_messages_with_fds() {
    let (a, b) = pair();
    let (r, w) = rawipc::pipe::pipe().unwrap();
    a.send_fds(b"1", &[w.as_fd()]).unwrap();
    a.send_fds(b"2", &[w.as_fd(), w.as_fd()]).unwrap();
    drop((a, w));
    let mut buf = [0u8; 4];
    let mut fds: [Option<OwnedFd>; 2] = Default::default();
    assert_eq!(b.recv_fds(&mut buf, &mut fds), Ok((1, 1)));
    assert_eq!(b.recv_fds(&mut buf, &mut fds), Ok((1, 2)));
    same_pipe(&r, fds[1].as_ref().unwrap(), 3);
    assert_eq!(b.recv_fds(&mut buf, &mut fds), Ok((0, 0)));
    assert_eq!(msg::next_sizes(&b), Ok((0, 0)));
}

pub fn bad_sends_are_refused() {
    let (a, b) = pair();
    let (_r, w) = rawipc::pipe::pipe().unwrap();
    assert_eq!(a.send_fds(b"", &[w.as_fd()]), Err(Errno::INVAL));
    drop(b);
    assert_eq!(a.send_fds(b"x", &[w.as_fd()]), Err(Errno::PIPE));
    let (r, _w2) = rawipc::pipe::pipe().unwrap();
    assert_eq!(msg::send_fds(&r, b"x", &[]), Err(Errno::NOTSOCK));
    assert_eq!(msg::recv_fds(&r, &mut [0; 4], &mut []), Err(Errno::NOTSOCK));
}

/// Sends `msg` with `fds` as another program might: with no rawipc check
/// (an empty message is allowed).
fn raw_send_fds(sock: &MsgSocket, msg: &[u8], fds: &[BorrowedFd<'_>]) {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let mut space = [std::mem::MaybeUninit::uninit(); 64];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    let iov = [rustix::io::IoSlice::new(msg)];
    assert_eq!(
        sendmsg(sock, &iov, &mut control, SendFlags::empty()),
        Ok(msg.len())
    );
}

pub fn a_plain_receive_leaves_fds_queued() {
    let (a, b) = pair();
    let (rs, ws) = pipes(2);
    a.send_fds(b"two", &borrowed(&ws)).unwrap();
    // An empty message with an fd, which rawipc never sends but another
    // program may: it is no "peer gone" to be skipped, and its fd stays.
    raw_send_fds(&a, b"", &[ws[0].as_fd()]);
    drop(ws);
    let before = fd_count();
    let mut buf = [0u8; 16];
    for _ in 0..2 {
        // Room for the bytes but none for fds: refused, nothing installed
        // and nothing closed by the kernel.
        assert_eq!(msg::next_size(&b), Err(Errno::MSGSIZE));
        assert_eq!(b.recv(&mut buf), Err(Errno::MSGSIZE));
        assert_eq!(buf, [0u8; 16], "the buffer is not written");
        assert_eq!(fd_count(), before, "no fd installed");
    }
    assert_eq!(msg::next_sizes(&b), Ok((3, 2)));
    let mut fds: [Option<OwnedFd>; 2] = Default::default();
    assert_eq!(b.recv_fds(&mut buf, &mut fds), Ok((3, 2)));
    for (i, (r, w)) in rs.iter().zip(&fds).enumerate() {
        same_pipe(r, w.as_ref().unwrap(), i as u8);
    }
    // The empty message with its fd, then a plain one behind it.
    a.send(b"plain").unwrap();
    assert_eq!(msg::next_size(&b), Err(Errno::MSGSIZE));
    assert_eq!(b.recv(&mut buf), Err(Errno::MSGSIZE));
    let mut one: [Option<OwnedFd>; 1] = Default::default();
    assert_eq!(b.recv_fds(&mut buf, &mut one), Ok((0, 1)));
    same_pipe(&rs[0], one[0].as_ref().unwrap(), 7);
    assert_eq!(b.recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"plain");
}

pub fn a_plain_receive_with_credentials_on_still_works() {
    // SO_PASSCRED makes every message carry credentials: they are no fds,
    // and a plain receive takes such a message as usual.
    let (a, b) = pair();
    rustix::net::sockopt::set_socket_passcred(&b, true).unwrap();
    let (r, w) = rawipc::pipe::pipe().unwrap();
    a.send(b"creds").unwrap();
    a.send_fds(b"fd", &[w.as_fd()]).unwrap();
    drop(w);
    let mut buf = [0u8; 16];
    assert_eq!(msg::next_size(&b), Ok(5));
    assert_eq!(b.recv(&mut buf), Ok(5));
    let before = fd_count();
    assert_eq!(b.recv(&mut buf), Err(Errno::MSGSIZE));
    assert_eq!(fd_count(), before, "no fd installed");
    let mut fds: [Option<OwnedFd>; 1] = Default::default();
    assert_eq!(b.recv_fds(&mut buf, &mut fds), Ok((2, 1)));
    same_pipe(&r, fds[0].as_ref().unwrap(), 1);
}

pub fn credentials_from_another_pid_namespace_are_no_trouble() {
    // With SO_PASSCRED on, each message carries its sender's credentials;
    // a sender whose pid is not visible here comes with pid 0.
    let (a, b) = pair();
    rustix::net::sockopt::set_socket_passcred(&b, true).unwrap();
    let (r, w) = rawipc::pipe::pipe().unwrap();
    a.send(b"plain").unwrap();
    a.send_fds(b"fd", &[w.as_fd()]).unwrap();
    drop(w);
    if !is_root() {
        eprintln!("skipped: a new pid namespace needs root");
        return;
    }
    let child = spawn(move || {
        // SAFETY: a plain system call in a single-threaded child.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWPID) }, 0, "unshare");
        let inner = spawn(move || {
            let mut buf = [0u8; 8];
            assert_eq!(msg::next_size(&b), Ok(5));
            assert_eq!(b.recv(&mut buf), Ok(5));
            assert_eq!(b.recv(&mut buf), Err(Errno::MSGSIZE));
            assert_eq!(msg::next_sizes(&b), Ok((2, 1)));
            let mut fds: [Option<OwnedFd>; 1] = Default::default();
            assert_eq!(b.recv_fds(&mut buf, &mut fds), Ok((2, 1)));
            same_pipe(&r, fds[0].as_ref().unwrap(), 5);
        });
        expect_success(inner);
    });
    expect_success(child);
}

pub fn pidfds_of_so_passpidfd_are_not_leaked() {
    const SO_PASSPIDFD: libc::c_int = 76;
    let (a, b) = pair();
    let on: libc::c_int = 1;
    // SAFETY: a valid int option on a socket of ours.
    let set = unsafe {
        libc::setsockopt(
            rawipc::AsRawFd::as_raw_fd(&b.as_fd()),
            libc::SOL_SOCKET,
            SO_PASSPIDFD,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set != 0 {
        eprintln!("skipped: this kernel has no SO_PASSPIDFD");
        return;
    }
    // Each receive, peeks included, makes the kernel install a pidfd.
    let (r, w) = rawipc::pipe::pipe().unwrap();
    a.send_fds(b"fd", &[w.as_fd()]).unwrap();
    drop(w);
    let before = fd_count();
    assert_eq!(msg::next_sizes(&b), Ok((2, 1)));
    assert_eq!(b.recv_fds(&mut [0; 4], &mut []), Err(Errno::MSGSIZE));
    assert_eq!(fd_count(), before, "no pidfd left open");
    let mut fds: [Option<OwnedFd>; 1] = Default::default();
    assert_eq!(b.recv_fds(&mut [0; 4], &mut fds), Ok((2, 1)));
    assert_eq!(fd_count(), before + 1, "the fd sent, and no pidfd");
    same_pipe(&r, fds[0].as_ref().unwrap(), 3);
}
