//! Request and reply in one shared slot: calls across fork at every size up
//! to the slot's, the boundaries, a dead client, a dead server, a signal
//! storm while the peer is dead, a slot that a hostile peer scribbles on,
//! and each side's readiness fd (`readiness`).

#[path = "../support/mod.rs"]
mod support;

mod readiness;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rawipc::Errno;
use rawipc::call::{Call, Client, LINE_MESSAGE, MAX_MESSAGE, Server};
use rawipc::process::{self, Pid, Status, WaitOptions};
use support::child::{catch_sigusr1, fork, in_child, kill, reap};

fn main() -> ExitCode {
    support::main(tests![
        calls_cross_fork_whole_at_every_size_in_one_line,
        calls_cross_fork_whole_in_a_slot_of_many_lines,
        blocking_only_mode_answers_too,
        calls_in_place_across_fork_in_one_line_and_many,
        sizes_and_boundaries,
        call_in_place_boundaries,
        a_reply_too_large_for_its_buffer_is_kept,
        a_request_too_large_for_the_buffer_waits,
        calls_and_replies_out_of_turn_are_refused,
        timed_out_call_keeps_its_reply_due,
        server_gets_zero_when_client_dies,
        server_answers_the_last_request_of_a_dead_client,
        client_gets_epipe_when_server_dies_before_answering,
        client_blocked_in_call_wakes_when_server_is_killed,
        signal_storm_does_not_postpone_finding_a_dead_server,
        signal_storm_does_not_postpone_finding_a_dead_client,
        corrupt_slot_never_crashes_or_hangs_either_side,
        hostile_server_scribbling_then_dying_ends_the_call,
        readiness::server_fd_reports_a_request_and_then_the_client_killed,
        readiness::client_fd_reports_the_reply_and_then_the_server_killed,
        readiness::level_triggered_epoll_answers_every_call,
        readiness::edge_triggered_epoll_answers_every_call,
        readiness::waits_on_the_fd_mixed_with_blocking_ones_lose_nothing,
        readiness::only_an_armed_side_is_woken_and_once,
        readiness::hostile_bytes_fds_and_flags_are_survived,
        readiness::hostile_server_sending_its_end_then_dying_ends_the_call,
        readiness::scribbled_flags_cost_wakes_not_calls,
        readiness::fd_counts_stay_the_same_over_many_cycles,
    ])
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Request `i` of at most `max` bytes: its length varies from 1 to `max`
/// and every byte depends on `i` and its place, so a torn message shows.
fn request(i: u64, max: usize, buf: &mut [u8]) -> usize {
    let len = 1 + ((i * 7919) as usize % max);
    for (k, b) in buf[..len].iter_mut().enumerate() {
        *b = (i as usize * 31 + k * 7) as u8;
    }
    len
}

/// The server's answer: each byte plus one, and one byte more (up to the
/// slot's size), so that the reply differs from the request.
fn answer(req: &[u8], max: usize, out: &mut [u8]) -> usize {
    for (o, r) in out.iter_mut().zip(req) {
        *o = r.wrapping_add(1);
    }
    if req.len() < max {
        out[req.len()] = 0xa5;
        req.len() + 1
    } else {
        req.len()
    }
}

/// The server loop of a child: answers until the client is gone.
fn serve(mut server: Server) {
    let max = server.max_message();
    let mut req = vec![0u8; max];
    let mut out = vec![0u8; max];
    loop {
        let n = server.recv(&mut req).expect("recv");
        if n == 0 {
            return;
        }
        let m = answer(&req[..n], max, &mut out);
        server.reply(&out[..m]).expect("reply");
    }
}

fn check_calls(client: &mut Client, n: u64) {
    let max = client.max_message();
    let (mut req, mut reply, mut want) = (vec![0u8; max], vec![0u8; max], vec![0u8; max]);
    for i in 0..n {
        let len = request(i, max, &mut req);
        let got = client.call(&req[..len], &mut reply).expect("call");
        let w = answer(&req[..len], max, &mut want);
        assert_eq!(got, w, "call {i}: reply length");
        assert!(reply[..got] == want[..w], "call {i}: torn reply");
    }
}

/// As [`check_calls`], each request and its reply in one buffer.
fn check_calls_in_place(client: &mut Client, n: u64) {
    let max = client.max_message();
    let (mut buf, mut req, mut want) = (vec![0u8; max], vec![0u8; max], vec![0u8; max]);
    for i in 0..n {
        let len = request(i, max, &mut req);
        buf[..len].copy_from_slice(&req[..len]);
        let got = client.call_in_place(&mut buf, len).expect("call in place");
        let w = answer(&req[..len], max, &mut want);
        assert_eq!(got, w, "call {i}: reply length");
        assert!(buf[..got] == want[..w], "call {i}: torn reply");
    }
}

fn calls_in_place_across_fork_in_one_line_and_many() {
    for (max, n) in [(LINE_MESSAGE, 20_000), (100_000, 1_000)] {
        let call = Call::new(max).unwrap();
        let Some(pid) = fork() else {
            in_child(|| serve(call.into_server()))
        };
        let mut client = call.into_client();
        check_calls_in_place(&mut client, n);
        drop(client);
        assert!(matches!(reap(pid), Status::Exited(0)), "the server ends");
    }
}

fn calls_across_fork(max: usize, n: u64, spin: Option<u32>) {
    let call = Call::new(max).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut server = call.into_server();
            if let Some(ns) = spin {
                server.set_spin(ns);
            }
            serve(server)
        })
    };
    let mut client = call.into_client();
    if let Some(ns) = spin {
        client.set_spin(ns);
    }
    check_calls(&mut client, n);
    drop(client);
    assert!(matches!(reap(pid), Status::Exited(0)), "the server ends");
}

fn calls_cross_fork_whole_at_every_size_in_one_line() {
    calls_across_fork(LINE_MESSAGE, 50_000, None);
}

fn calls_cross_fork_whole_in_a_slot_of_many_lines() {
    calls_across_fork(100_000, 2_000, None);
}

fn blocking_only_mode_answers_too() {
    calls_across_fork(LINE_MESSAGE, 300, Some(0));
}

/// One call made in one thread without waiting: publish with a zero
/// timeout, answer, take the reply.
fn sizes_and_boundaries() {
    assert_eq!(Call::new(0).err(), Some(Errno::INVAL));
    assert_eq!(Call::new(MAX_MESSAGE + 1).err(), Some(Errno::INVAL));
    assert_eq!(Call::new(usize::MAX).err(), Some(Errno::INVAL));
    for max in [1, 7, LINE_MESSAGE, LINE_MESSAGE + 1, 4096, MAX_MESSAGE] {
        let call = Call::new(max).unwrap();
        assert_eq!(call.max_message(), max);
        let (mut client, mut server) = call.split().unwrap();
        let big = vec![3u8; max + 1];
        let mut buf = vec![0u8; max + 1];
        assert_eq!(client.call(&[], &mut buf), Err(Errno::INVAL), "empty");
        assert_eq!(client.call(&big, &mut buf), Err(Errno::MSGSIZE));
        // The largest request, and the largest reply, then an empty reply.
        for (req_len, reply_len) in [(max, max), (1, 0), (max, 1)] {
            let req: Vec<u8> = (0..req_len).map(|k| k as u8 ^ 0x5a).collect();
            let t = client.call_timeout(&req, &mut buf, Duration::ZERO);
            assert_eq!(t, Err(Errno::TIMEDOUT), "nobody answered yet");
            assert_eq!(server.recv(&mut buf), Ok(req_len));
            assert!(buf[..req_len] == req[..]);
            assert_eq!(server.reply(&big), Err(Errno::MSGSIZE), "reply too long");
            server.reply(&big[..reply_len]).unwrap();
            buf.fill(0);
            assert_eq!(client.reply(&mut buf), Ok(reply_len));
            assert!(buf[..reply_len].iter().all(|&b| b == 3));
        }
    }
}

fn call_in_place_boundaries() {
    let (mut client, mut server) = Call::new(LINE_MESSAGE).unwrap().split().unwrap();
    let mut buf = [7u8; LINE_MESSAGE + 1];
    assert_eq!(
        client.call_in_place(&mut buf, 0),
        Err(Errno::INVAL),
        "empty"
    );
    assert_eq!(
        client.call_in_place(&mut buf[..4], 5),
        Err(Errno::INVAL),
        "a request longer than its buffer"
    );
    assert_eq!(
        client.call_in_place(&mut buf, LINE_MESSAGE + 1),
        Err(Errno::MSGSIZE),
        "above the slot"
    );
    assert_eq!(
        server.recv_timeout(&mut [0; 64], Duration::ZERO),
        Err(Errno::TIMEDOUT),
        "nothing was sent"
    );
    // The whole slot, then a reply longer than the buffer: it is kept.
    let mut small = *b"ping";
    let t = client.call_in_place_timeout(&mut small, 4, Duration::ZERO);
    assert_eq!(t, Err(Errno::TIMEDOUT));
    let mut req = [0u8; 8];
    assert_eq!(server.recv(&mut req), Ok(4));
    assert_eq!(&req[..4], b"ping");
    server.reply(b"a longer pong").unwrap();
    assert_eq!(client.reply(&mut small), Err(Errno::MSGSIZE), "kept");
    let mut room = [0u8; 16];
    assert_eq!(client.reply(&mut room), Ok(13));
    assert_eq!(&room[..13], b"a longer pong");
    // A reply that fits overwrites the request in place.
    let mut full = [1u8; LINE_MESSAGE];
    let t = client.call_in_place_timeout(&mut full, LINE_MESSAGE, Duration::ZERO);
    assert_eq!(t, Err(Errno::TIMEDOUT));
    assert_eq!(server.recv(&mut [0; LINE_MESSAGE]), Ok(LINE_MESSAGE));
    server.reply(b"ok").unwrap();
    assert_eq!(client.reply(&mut full), Ok(2));
    assert_eq!(&full[..2], b"ok");
}

fn a_reply_too_large_for_its_buffer_is_kept() {
    let (mut client, mut server) = Call::new(LINE_MESSAGE).unwrap().split().unwrap();
    let mut small = [0u8; 4];
    let t = client.call_timeout(b"hi", &mut small, Duration::ZERO);
    assert_eq!(t, Err(Errno::TIMEDOUT));
    server.recv(&mut [0; 8]).unwrap();
    server.reply(b"a longer reply").unwrap();
    assert_eq!(client.reply(&mut small), Err(Errno::MSGSIZE), "too small");
    assert_eq!(client.reply(&mut small), Err(Errno::MSGSIZE), "still kept");
    let mut buf = [0u8; 32];
    assert_eq!(client.reply(&mut buf), Ok(14));
    assert_eq!(&buf[..14], b"a longer reply");
    assert_eq!(client.reply(&mut buf), Err(Errno::INVAL), "taken");
    // The next call goes on as usual.
    client
        .call_timeout(b"again", &mut buf, Duration::ZERO)
        .unwrap_err();
    assert_eq!(server.recv(&mut buf), Ok(5));
}

fn a_request_too_large_for_the_buffer_waits() {
    let (mut client, mut server) = Call::new(LINE_MESSAGE).unwrap().split().unwrap();
    let req = [9u8; LINE_MESSAGE];
    let t = client.call_timeout(&req, &mut [0; 1], Duration::ZERO);
    assert_eq!(t, Err(Errno::TIMEDOUT));
    assert_eq!(server.recv(&mut [0; 47]), Err(Errno::MSGSIZE));
    let mut buf = [0u8; LINE_MESSAGE];
    assert_eq!(server.recv(&mut buf), Ok(LINE_MESSAGE), "still there");
    assert_eq!(buf, req);
}

fn calls_and_replies_out_of_turn_are_refused() {
    let (mut client, mut server) = Call::new(16).unwrap().split().unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(server.reply(b"x"), Err(Errno::INVAL), "no request");
    assert_eq!(client.reply(&mut buf), Err(Errno::INVAL), "no call");
    assert_eq!(
        server.recv_timeout(&mut buf, Duration::ZERO),
        Err(Errno::TIMEDOUT),
        "no request yet"
    );
    assert_eq!(
        server.recv_timeout(&mut buf, Duration::from_millis(30)),
        Err(Errno::TIMEDOUT),
        "a wait that sleeps, with the client alive"
    );
    client
        .call_timeout(b"q", &mut buf, Duration::ZERO)
        .unwrap_err();
    assert_eq!(client.call(b"q2", &mut buf), Err(Errno::BUSY), "reply due");
    assert_eq!(server.recv(&mut buf), Ok(1));
    assert_eq!(server.recv(&mut buf), Err(Errno::INVAL), "answer first");
    server.reply(b"r").unwrap();
    assert_eq!(server.reply(b"r"), Err(Errno::INVAL), "answered already");
    assert_eq!(client.reply(&mut buf), Ok(1));
}

fn timed_out_call_keeps_its_reply_due() {
    let call = Call::new(LINE_MESSAGE).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut server = call.into_server();
            let mut buf = [0u8; LINE_MESSAGE];
            let n = server.recv(&mut buf).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            server.reply(&buf[..n]).unwrap();
            assert_eq!(server.recv(&mut buf), Ok(0));
        })
    };
    let mut client = call.into_client();
    let mut buf = [0u8; LINE_MESSAGE];
    let t = client.call_timeout(b"slow", &mut buf, Duration::from_millis(1));
    assert_eq!(t, Err(Errno::TIMEDOUT));
    assert_eq!(
        client.reply_timeout(&mut buf, Duration::from_secs(60)),
        Ok(4)
    );
    assert_eq!(&buf[..4], b"slow");
    drop(client);
    assert!(matches!(reap(pid), Status::Exited(0)));
}

fn server_gets_zero_when_client_dies() {
    let call = Call::new(LINE_MESSAGE).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let _client = call.into_client();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let mut server = call.into_server();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        kill(pid);
    });
    // Blocks (spins, then sleeps on the futex) until the kill.
    assert_eq!(server.recv(&mut [0; LINE_MESSAGE]), Ok(0));
    assert_eq!(server.recv(&mut [0; LINE_MESSAGE]), Ok(0), "and stays 0");
    killer.join().unwrap();
    assert!(matches!(reap(pid), Status::Killed { signal: 9, .. }));
}

fn server_answers_the_last_request_of_a_dead_client() {
    let call = Call::new(LINE_MESSAGE).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut client = call.into_client();
            let t = client.call_timeout(b"last words", &mut [0; 64], Duration::ZERO);
            assert_eq!(t, Err(Errno::TIMEDOUT));
        })
    };
    assert!(matches!(reap(pid), Status::Exited(0)));
    let mut server = call.into_server();
    let mut buf = [0u8; LINE_MESSAGE];
    assert_eq!(server.recv(&mut buf), Ok(10));
    assert_eq!(&buf[..10], b"last words");
    server.reply(b"too late").unwrap();
    assert_eq!(server.recv(&mut buf), Ok(0));
}

fn client_gets_epipe_when_server_dies_before_answering() {
    let call = Call::new(LINE_MESSAGE).unwrap();
    let Some(pid) = fork() else {
        in_child(|| {
            let mut server = call.into_server();
            // Takes the request and dies without answering.
            server.recv(&mut [0; LINE_MESSAGE]).unwrap();
        })
    };
    let mut client = call.into_client();
    let mut buf = [0u8; 8];
    assert_eq!(client.call(b"anyone?", &mut buf), Err(Errno::PIPE));
    assert_eq!(client.call(b"again?", &mut buf), Err(Errno::PIPE), "stays");
    assert!(matches!(reap(pid), Status::Exited(0)));
}

fn client_blocked_in_call_wakes_when_server_is_killed() {
    for spin in [None, Some(0)] {
        let call = Call::new(LINE_MESSAGE).unwrap();
        let Some(pid) = fork() else {
            in_child(|| {
                let _server = call.into_server();
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        };
        let mut client = call.into_client();
        if let Some(ns) = spin {
            client.set_spin(ns);
        }
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            kill(pid);
        });
        assert_eq!(client.call(b"hello", &mut [0; 8]), Err(Errno::PIPE));
        killer.join().unwrap();
        reap(pid);
    }
}

static HANDLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    HANDLED.store(true, Ordering::Relaxed);
}

/// Installs a handler for SIGUSR1 (with SA_RESTART, which does not restart
/// a timed futex wait) and forks a child that sends SIGUSR1 to this process
/// every 100 µs for a minute, far longer than the liveness check's period.
fn start_signal_storm() -> Pid {
    catch_sigusr1(on_signal, true);
    let target = rustix::process::getpid();
    let Some(pid) = fork() else {
        in_child(|| {
            for _ in 0..600_000 {
                if rustix::process::kill_process(target, rustix::process::Signal::USR1).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        })
    };
    pid
}

/// The storm is still going: the wait ended while signals kept coming.
fn stop_signal_storm(storm: Pid) {
    let still = process::waitpid(storm, WaitOptions::NOHANG).expect("waitpid");
    assert!(still.is_none(), "the wait outlasted the signal storm");
    assert!(HANDLED.load(Ordering::Relaxed), "signals were handled");
    kill(storm);
    reap(storm);
}

fn signal_storm_does_not_postpone_finding_a_dead_server() {
    for spin in [None, Some(0)] {
        let call = Call::new(LINE_MESSAGE).unwrap();
        let Some(server) = fork() else {
            in_child(|| {
                let _server = call.into_server();
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        };
        let mut client = call.into_client();
        if let Some(ns) = spin {
            client.set_spin(ns);
        }
        let storm = start_signal_storm();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            kill(server);
        });
        assert_eq!(client.call(b"hello", &mut [0; 8]), Err(Errno::PIPE));
        stop_signal_storm(storm);
        killer.join().unwrap();
        reap(server);
    }
}

fn signal_storm_does_not_postpone_finding_a_dead_client() {
    let call = Call::new(LINE_MESSAGE).unwrap();
    let Some(client) = fork() else {
        in_child(|| {
            let _client = call.into_client();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let mut server = call.into_server();
    let storm = start_signal_storm();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        kill(client);
    });
    assert_eq!(server.recv(&mut [0; 8]), Ok(0));
    stop_signal_storm(storm);
    killer.join().unwrap();
    reap(client);
}

/// Writes a random 32-bit value at a random 4-aligned place of the slot:
/// usually a header word, sometimes the message.
fn scribble(region: (*mut u8, usize), seed: &mut u64) {
    let (base, len) = region;
    let r = xorshift(seed);
    let off = match r % 4 {
        0..=2 => 4 * ((r >> 8) as usize % 4),
        _ => ((r >> 8) as usize % len) & !3,
    };
    let value = match (r >> 40) % 5 {
        0 => 0,
        1 => u32::MAX,
        2 => (r >> 12) as u32 % 8,
        3 => (r >> 12) as u32 % 200,
        _ => xorshift(seed) as u32,
    };
    // SAFETY: a 4-aligned place inside the region; the test plays the
    // hostile peer, which may write anything anywhere in it.
    unsafe { base.add(off).cast::<u32>().write_volatile(value) };
}

fn corrupt_slot_never_crashes_or_hangs_either_side() {
    let mut seed = 0x2545_f491_4f6c_dd1d;
    let (mut protos, mut calls) = (0u32, 0u32);
    for _ in 0..20_000 {
        let max = [8, LINE_MESSAGE, 100][(xorshift(&mut seed) % 3) as usize];
        let call = Call::new(max).unwrap();
        let region = call.region();
        let (mut client, mut server) = call.split().unwrap();
        let mut buf = [0u8; 128];
        for step in 0..6 {
            if xorshift(&mut seed) % 2 == 0 {
                scribble(region, &mut seed);
            }
            // Either side, with a deadline of zero or a short one: each
            // must end, with an answer or an error, never out of bounds.
            let wait = Duration::from_micros(xorshift(&mut seed) % 3 * 100);
            let got = match step % 2 {
                0 => client.call_timeout(&[step as u8; 5], &mut buf, wait),
                _ => match server.recv_timeout(&mut buf, wait) {
                    Ok(n) if n > 0 => {
                        assert!(n <= max);
                        server.reply(&buf[..n.min(4)]).map(|()| n)
                    }
                    other => other,
                },
            };
            match got {
                Ok(n) => {
                    assert!(n <= buf.len());
                    calls += 1;
                }
                Err(Errno::PROTO) => {
                    protos += 1;
                    break;
                }
                Err(Errno::TIMEDOUT | Errno::MSGSIZE | Errno::BUSY | Errno::INVAL) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        // Broken sides stay broken; neither panics on the scribbled slot.
        let zero = Duration::ZERO;
        if client.call_timeout(b"x", &mut buf, zero) == Err(Errno::PROTO) {
            assert_eq!(client.call_timeout(b"x", &mut buf, zero), Err(Errno::PROTO));
        }
        drop(client);
        // With the client gone the server's blocking receive ends.
        for _ in 0..3 {
            match server.recv(&mut buf) {
                Ok(0) | Err(Errno::PROTO) | Err(Errno::INVAL) => break,
                Ok(n) => assert!(n <= max),
                Err(Errno::MSGSIZE) => break,
                Err(e) => panic!("unexpected {e:?}"),
            }
            let _ = server.reply(b"y");
        }
    }
    println!("{protos} corrupt slots reported EPROTO, {calls} steps answered");
    assert!(
        protos > 1000,
        "scribbling on the header is detected ({protos})"
    );
}

fn hostile_server_scribbling_then_dying_ends_the_call() {
    let mut seed = 42u64;
    for _ in 0..50 {
        let call = Call::new(LINE_MESSAGE).unwrap();
        let region = call.region();
        let (word, value) = (
            xorshift(&mut seed) as usize % 4,
            match xorshift(&mut seed) % 4 {
                0 => 1,
                1 => 2,
                _ => xorshift(&mut seed) as u32,
            },
        );
        let Some(pid) = fork() else {
            in_child(|| {
                let _server = call.into_server();
                std::thread::sleep(Duration::from_millis(1));
                // SAFETY: a header word of the slot, in the shared region.
                unsafe { region.0.add(4 * word).cast::<u32>().write_volatile(value) };
            })
        };
        let mut client = call.into_client();
        let got = client.call(b"hi", &mut [0; LINE_MESSAGE]);
        // seq 2 (request 1's reply) with any length up to the slot's is a
        // reply; any other sequence is corruption; other words leave the
        // call waiting until the server is gone.
        match (word, value) {
            (0, 2) => assert!(matches!(got, Ok(_) | Err(Errno::PIPE)), "{got:?}"),
            (0, 1) => assert_eq!(got, Err(Errno::PIPE)),
            (0, _) => assert!(
                matches!(got, Err(Errno::PROTO) | Err(Errno::PIPE)),
                "{got:?}"
            ),
            _ => assert_eq!(got, Err(Errno::PIPE)),
        }
        reap(pid);
    }
}
