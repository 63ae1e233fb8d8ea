//! The readiness fd of each side of a call: what `poll` and `epoll` report,
//! the arming rule ("try until EAGAIN, then wait"), level- and
//! edge-triggered epoll over thousands of calls, waits on the fd mixed with
//! blocking ones, a killed peer, a hostile peer's bytes, fds and flags, and
//! no fd left behind.

use std::time::Duration;

use rawipc::call::{Call, Client, LINE_MESSAGE, Server};
use rawipc::process::Status;
use rawipc::{AsFd, Errno, OwnedFd};
use rustix::event::Timespec;
use rustix::event::epoll;
use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType, send, socketpair};

use super::support::child::{open_fds, pending, readable, wait_readable};
use super::{fork, in_child, kill, reap, xorshift};

/// Where the flag words lie in the slot: the client's, then the server's.
const CLIENT_FLAG: usize = 8;
const SERVER_FLAG: usize = 12;

/// Writes `value` into the slot's word at `at`, as a hostile peer may.
fn poke(region: (*mut u8, usize), at: usize, value: u32) {
    assert!(at + 4 <= region.1);
    // SAFETY: a 4-aligned word inside the shared region; the test plays the
    // hostile peer, which may write anything there.
    unsafe { region.0.add(at).cast::<u32>().write_volatile(value) };
}

/// Waits in `epoll_wait` for at most a minute; a timeout fails the test.
fn epoll_wait_a_minute(ep: &OwnedFd) {
    let mut events = Vec::with_capacity(4);
    let minute = Timespec {
        tv_sec: 60,
        tv_nsec: 0,
    };
    rustix::io::retry_on_intr(|| {
        epoll::wait(
            ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&minute),
        )
    })
    .expect("epoll_wait");
    assert!(
        !events.is_empty(),
        "epoll_wait timed out: a wake-up was lost"
    );
}

/// A request taken the poll way: try until one comes, waiting on the fd
/// after each EAGAIN; 0 when the client is gone.
fn recv_polling(server: &mut Server, buf: &mut [u8]) -> usize {
    loop {
        match server.try_recv(buf) {
            Ok(n) => return n,
            Err(Errno::AGAIN) => wait_readable(&*server),
            Err(e) => panic!("try_recv: {e:?}"),
        }
    }
}

/// A reply taken the poll way.
fn reply_polling(client: &mut Client, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match client.try_reply(buf) {
            Err(Errno::AGAIN) => wait_readable(&*client),
            other => return other,
        }
    }
}

pub fn server_fd_reports_a_request_and_then_the_client_killed() {
    let call = Call::new(LINE_MESSAGE).unwrap();
    let (go_rx, go_tx) = rawipc::pipe::pipe().unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            drop(go_tx);
            let mut client = call.into_client();
            let mut reply = [0u8; 64];
            for req in [&b"one"[..], b"two"] {
                go_rx.read(&mut [0u8; 1]).unwrap();
                let n = client.call(req, &mut reply).unwrap();
                assert_eq!(&reply[..n], b"ok");
            }
            // Alive, its side open, until killed.
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    drop(go_rx);
    let mut server = call.into_server();
    let mut buf = [0u8; 64];
    // A new server starts armed: it may wait before its first try.
    assert!(!readable(&server, 20), "no request yet");
    go_tx.write_all(b"1").unwrap();
    wait_readable(&server);
    assert_eq!(server.try_recv(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"one");
    assert_eq!(
        server.try_recv(&mut buf),
        Err(Errno::INVAL),
        "not answered yet"
    );
    server.reply(b"ok").unwrap();
    assert_eq!(server.try_recv(&mut buf), Err(Errno::AGAIN), "arms");
    assert!(!readable(&server, 20), "drained, and nothing comes");
    go_tx.write_all(b"2").unwrap();
    wait_readable(&server);
    assert_eq!(server.try_recv(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"two");
    server.reply(b"ok").unwrap();
    assert_eq!(server.try_recv(&mut buf), Err(Errno::AGAIN));
    kill(pid);
    wait_readable(&server);
    assert_eq!(server.try_recv(&mut buf), Ok(0), "the client is gone");
    assert!(readable(&server, 0), "and the fd stays readable");
    assert_eq!(server.try_recv(&mut buf), Ok(0));
    assert_eq!(
        reap(pid),
        Status::Killed {
            signal: 9,
            core_dumped: false
        }
    );
}

pub fn client_fd_reports_the_reply_and_then_the_server_killed() {
    let call = Call::new(LINE_MESSAGE).unwrap();
    let (go_rx, go_tx) = rawipc::pipe::pipe().unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            drop(go_tx);
            let mut server = call.into_server();
            let mut buf = [0u8; 64];
            go_rx.read(&mut [0u8; 1]).unwrap();
            let n = server.recv(&mut buf).unwrap();
            buf[..n].reverse();
            server.reply(&buf[..n]).unwrap();
            // Takes the second request and never answers it.
            assert_eq!(server.recv(&mut buf).unwrap(), 3);
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    drop(go_rx);
    let mut client = call.into_client();
    let mut buf = [0u8; 64];
    assert_eq!(client.try_reply(&mut buf), Err(Errno::INVAL), "no call");
    assert!(!readable(&client, 0), "no call, no reply");
    client.send(b"abc").unwrap();
    assert_eq!(client.send(b"abc"), Err(Errno::BUSY), "one call at a time");
    assert_eq!(client.try_reply(&mut buf), Err(Errno::AGAIN), "arms");
    assert!(!readable(&client, 20), "the server waits for its go");
    go_tx.write_all(b"1").unwrap();
    wait_readable(&client);
    assert_eq!(client.try_reply(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"cba");
    client.send(b"two").unwrap();
    assert_eq!(client.try_reply(&mut buf), Err(Errno::AGAIN));
    assert!(!readable(&client, 20), "taken, never answered");
    kill(pid);
    wait_readable(&client);
    assert_eq!(client.try_reply(&mut buf), Err(Errno::PIPE), "server gone");
    assert!(readable(&client, 0), "and the fd stays readable");
    assert_eq!(client.try_reply(&mut buf), Err(Errno::PIPE), "and stays");
    assert_eq!(client.send(b"x"), Err(Errno::PIPE), "the client is broken");
    assert!(matches!(reap(pid), Status::Killed { signal: 9, .. }));

    // A server that is gone before any call: the fd is readable at once.
    let call = Call::new(LINE_MESSAGE).unwrap();
    let Some(pid) = fork() else {
        in_child(|| drop(call.into_server()))
    };
    let mut client = call.into_client();
    assert!(reap(pid).success());
    assert!(readable(&client, 0));
    client.send(b"anyone?").unwrap();
    assert_eq!(client.try_reply(&mut buf), Err(Errno::PIPE));
}

/// Thousands of calls with both sides waiting only in `epoll_wait`,
/// level- or edge-triggered: every reply, none lost.
fn calls_through_epoll(edge: bool) {
    const CALLS: u32 = 5000;
    let flags = match edge {
        true => epoll::EventFlags::IN | epoll::EventFlags::ET,
        false => epoll::EventFlags::IN,
    };
    let call = Call::new(LINE_MESSAGE).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut server = call.into_server();
            let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
            epoll::add(&ep, &server, epoll::EventData::new_u64(1), flags).unwrap();
            let mut buf = [0u8; 64];
            loop {
                match server.try_recv(&mut buf) {
                    Ok(0) => break,
                    Ok(4) => {
                        let v = u32::from_ne_bytes(buf[..4].try_into().unwrap());
                        server.reply(&(v + 1).to_ne_bytes()).unwrap();
                    }
                    Err(Errno::AGAIN) => epoll_wait_a_minute(&ep),
                    other => panic!("try_recv: {other:?}"),
                }
            }
        })
    };
    let mut client = call.into_client();
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    epoll::add(&ep, &client, epoll::EventData::new_u64(2), flags).unwrap();
    let mut buf = [0u8; 64];
    let mut waits = 0u32;
    for i in 0..CALLS {
        client.send(&i.to_ne_bytes()).unwrap();
        loop {
            match client.try_reply(&mut buf) {
                Ok(n) => {
                    assert_eq!(n, 4);
                    assert_eq!(u32::from_ne_bytes(buf[..4].try_into().unwrap()), i + 1);
                    break;
                }
                Err(Errno::AGAIN) => {
                    waits += 1;
                    epoll_wait_a_minute(&ep);
                }
                Err(e) => panic!("try_reply: {e:?}"),
            }
        }
    }
    assert!(waits > 10, "the client waited on its fd ({waits} times)");
    drop(client);
    assert!(reap(pid).success(), "the server saw every call, then 0");
}

pub fn level_triggered_epoll_answers_every_call() {
    calls_through_epoll(false);
}

pub fn edge_triggered_epoll_answers_every_call() {
    calls_through_epoll(true);
}

/// Each side chooses at random, call by call, how it waits: on its fd, in
/// a blocking call that spins then sleeps, in one that sleeps at once, or
/// with a zero timeout first. A flag left by one way must not make another
/// lose a wake-up.
pub fn waits_on_the_fd_mixed_with_blocking_ones_lose_nothing() {
    const CALLS: u32 = 4000;
    let call = Call::new(LINE_MESSAGE).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut server = call.into_server();
            let mut seed = 0x9e37_79b9_u64;
            let mut buf = [0u8; 64];
            loop {
                let r = xorshift(&mut seed);
                server.set_spin(if r & 8 == 0 { 0 } else { 20_000 });
                let n = match r % 3 {
                    0 => server.recv(&mut buf).unwrap(),
                    1 => match server.recv_timeout(&mut buf, Duration::ZERO) {
                        Ok(n) => n,
                        Err(Errno::TIMEDOUT) => recv_polling(&mut server, &mut buf),
                        Err(e) => panic!("recv_timeout: {e:?}"),
                    },
                    _ => recv_polling(&mut server, &mut buf),
                };
                if n == 0 {
                    break;
                }
                let v = u32::from_ne_bytes(buf[..4].try_into().unwrap());
                server.reply(&(v ^ 0xffff).to_ne_bytes()).unwrap();
            }
        })
    };
    let mut client = call.into_client();
    let mut seed = 0x1234_5678_u64;
    let mut buf = [0u8; 64];
    for i in 0..CALLS {
        let r = xorshift(&mut seed);
        client.set_spin(if r & 8 == 0 { 0 } else { 20_000 });
        let req = i.to_ne_bytes();
        let n = match r % 3 {
            0 => client.call(&req, &mut buf).unwrap(),
            1 => match client.call_timeout(&req, &mut buf, Duration::ZERO) {
                Ok(n) => n,
                Err(Errno::TIMEDOUT) => reply_polling(&mut client, &mut buf).unwrap(),
                Err(e) => panic!("call_timeout: {e:?}"),
            },
            _ => {
                client.send(&req).unwrap();
                reply_polling(&mut client, &mut buf).unwrap()
            }
        };
        assert_eq!(n, 4);
        assert_eq!(u32::from_ne_bytes(buf[..4].try_into().unwrap()), i ^ 0xffff);
    }
    drop(client);
    assert!(reap(pid).success());
}

/// The peer writes to the fd only when this side armed it, one byte at
/// most per arming; a try that finds what it looks for arms nothing.
pub fn only_an_armed_side_is_woken_and_once() {
    let (mut client, mut server) = Call::new(LINE_MESSAGE).unwrap().split().unwrap();
    let mut buf = [0u8; 64];
    assert!(!readable(&server, 0) && !readable(&client, 0));
    client.send(b"a").unwrap();
    assert_eq!(pending(&server), 1, "a new server starts armed");
    assert_eq!(server.try_recv(&mut buf), Ok(1));
    server.reply(b"b").unwrap();
    assert_eq!(pending(&client), 0, "the client did not arm");
    assert_eq!(client.try_reply(&mut buf), Ok(1));
    // Nobody armed: a thousand calls ring nothing.
    for _ in 0..1000 {
        client.send(b"c").unwrap();
        assert_eq!(server.try_recv(&mut buf), Ok(1));
        server.reply(b"d").unwrap();
        assert_eq!(client.try_reply(&mut buf), Ok(1));
    }
    assert_eq!(pending(&server), 1, "only the byte of the first request");
    assert_eq!(pending(&client), 0);
    // Both arm each time: one byte per arming, drained by the next EAGAIN.
    for _ in 0..1000 {
        assert_eq!(server.try_recv(&mut buf), Err(Errno::AGAIN));
        assert_eq!(pending(&server), 0, "drained before arming");
        client.send(b"e").unwrap();
        assert_eq!(pending(&server), 1, "the request rings once");
        assert_eq!(client.try_reply(&mut buf), Err(Errno::AGAIN));
        assert_eq!(pending(&client), 0, "drained before arming");
        assert_eq!(server.try_recv(&mut buf), Ok(1));
        server.reply(b"f").unwrap();
        assert_eq!(pending(&client), 1, "the reply rings once");
        assert_eq!(client.try_reply(&mut buf), Ok(1));
    }
    // A reply too long for the buffer stays, and try_reply takes it.
    client.send(b"g").unwrap();
    assert_eq!(server.try_recv(&mut buf), Ok(1));
    server.reply(b"a longer reply").unwrap();
    assert_eq!(client.try_reply(&mut buf[..4]), Err(Errno::MSGSIZE));
    assert_eq!(client.try_reply(&mut buf), Ok(14));
    assert_eq!(&buf[..14], b"a longer reply");
    assert_eq!(client.try_reply(&mut buf), Err(Errno::INVAL), "taken");
    // The client gone: the server's fd turns readable, its try says 0.
    assert_eq!(server.try_recv(&mut buf), Err(Errno::AGAIN));
    drop(client);
    assert!(readable(&server, 0));
    assert_eq!(server.try_recv(&mut buf), Ok(0));
}

/// A hostile client: floods the server's fd, sends fds into it (its own
/// end among them, which would keep the life-line open after its death if
/// it stayed queued), and scribbles on both flags. The server neither hangs
/// nor crashes, drains without trusting a count, and still learns that the
/// client is gone.
pub fn hostile_bytes_fds_and_flags_are_survived() {
    let call = Call::new(LINE_MESSAGE).unwrap();
    let region = call.region();
    let (client, mut server) = call.split().unwrap();
    let mut buf = [0u8; 64];
    // The client's end of the life-line, as a hostile client holds it.
    let bell = rustix::io::dup(client.as_fd()).unwrap();
    let mut flooded = 0;
    loop {
        match send(&bell, &[0xAA; 4096], SendFlags::DONTWAIT) {
            Ok(n) => flooded += n,
            Err(Errno::AGAIN) => break,
            Err(e) => panic!("send: {e:?}"),
        }
    }
    assert!(flooded > 64 * 1024);
    assert_eq!(server.try_recv(&mut buf), Err(Errno::AGAIN));
    assert!(pending(&server) > 0, "a flood is not drained in one go");
    assert!(readable(&server, 0));
    let (a, _b) = socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    rawipc::msg::send_fds(&bell, b"x", &[bell.as_fd(), a.as_fd()]).unwrap();
    poke(region, CLIENT_FLAG, u32::MAX);
    poke(region, SERVER_FLAG, u32::MAX);
    // The client dies: only the in-flight copy of its end stays.
    drop(client);
    drop(bell);
    let mut got_gone = false;
    for _ in 0..100 {
        match server.try_recv(&mut buf) {
            Ok(0) => {
                got_gone = true;
                break;
            }
            Err(Errno::AGAIN) => assert!(readable(&server, 0), "readable while bytes are left"),
            other => panic!("try_recv: {other:?}"),
        }
    }
    assert!(got_gone, "the end sent into the life-line kept it open");
    assert!(readable(&server, 0));
}

/// A hostile server sends its own end of the life-line into the client's,
/// floods it, scribbles on the client's flag, and dies: the client's call
/// ends with EPIPE, whether it blocks (spinning or not) or waits on its fd.
pub fn hostile_server_sending_its_end_then_dying_ends_the_call() {
    for way in 0..3 {
        let call = Call::new(LINE_MESSAGE).unwrap();
        let region = call.region();
        let Some(pid) = fork() else {
            in_child(|| {
                let server = call.into_server();
                let end = server.as_fd();
                rawipc::msg::send_fds(end, b"x", &[end]).unwrap();
                for _ in 0..16 {
                    let _ = send(end, &[0x55; 4096], SendFlags::DONTWAIT);
                }
                poke(region, CLIENT_FLAG, 0x7);
            })
        };
        assert!(reap(pid).success());
        let mut client = call.into_client();
        let mut buf = [0u8; 8];
        let got = match way {
            0 => client.call(b"hi", &mut buf),
            1 => {
                client.set_spin(0);
                client.call(b"hi", &mut buf)
            }
            _ => {
                client.send(b"hi").unwrap();
                reply_polling(&mut client, &mut buf)
            }
        };
        assert_eq!(got, Err(Errno::PIPE), "way {way}");
    }
}

/// Peers that scribble on the flag words at random, before each step:
/// wake-ups for nothing, never a hang or a lost call.
pub fn scribbled_flags_cost_wakes_not_calls() {
    let mut seed = 99u64;
    let call = Call::new(LINE_MESSAGE).unwrap();
    let region = call.region();
    let (mut client, mut server) = call.split().unwrap();
    let mut buf = [0u8; 64];
    let scribble = |seed: &mut u64| {
        poke(region, CLIENT_FLAG, xorshift(seed) as u32);
        poke(region, SERVER_FLAG, xorshift(seed) as u32);
    };
    for i in 0..20_000u32 {
        scribble(&mut seed);
        client.send(&i.to_ne_bytes()).unwrap();
        scribble(&mut seed);
        assert_eq!(client.try_reply(&mut buf), Err(Errno::AGAIN));
        scribble(&mut seed);
        assert_eq!(server.try_recv(&mut buf), Ok(4));
        assert_eq!(u32::from_ne_bytes(buf[..4].try_into().unwrap()), i);
        scribble(&mut seed);
        server.reply(&buf[..4]).unwrap();
        scribble(&mut seed);
        assert_eq!(client.try_reply(&mut buf), Ok(4));
        assert_eq!(server.try_recv(&mut buf), Err(Errno::AGAIN));
    }
}

pub fn fd_counts_stay_the_same_over_many_cycles() {
    let before = open_fds();
    let mut buf = [0u8; 16];
    for i in 0..2000 {
        let (mut client, mut server) = Call::new(LINE_MESSAGE).unwrap().split().unwrap();
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
        for (side, fd) in [(0, server.as_fd()), (1, client.as_fd())] {
            epoll::add(
                &ep,
                fd,
                epoll::EventData::new_u64(side),
                epoll::EventFlags::IN,
            )
            .unwrap();
        }
        assert_eq!(server.try_recv(&mut buf), Err(Errno::AGAIN));
        client.send(&[1; 8]).unwrap();
        assert_eq!(client.try_reply(&mut buf), Err(Errno::AGAIN));
        assert!(readable(&server, 0));
        assert_eq!(server.try_recv(&mut buf), Ok(8));
        server.reply(&[2; 8]).unwrap();
        assert!(readable(&client, 0));
        match i % 3 {
            0 => {
                assert_eq!(client.try_reply(&mut buf), Ok(8));
                drop(client);
                assert_eq!(server.try_recv(&mut buf), Ok(0));
            }
            1 => {
                drop(server);
                assert_eq!(client.try_reply(&mut buf), Ok(8), "answered before");
            }
            _ => drop((client, server)),
        }
    }
    assert_eq!(open_fds(), before, "no fd left behind");
}
