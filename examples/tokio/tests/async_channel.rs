//! The tokio wrappers over real channels: a threaded blocking peer, two
//! tasks on both ends of one small ring (each waits for the other, through
//! its fd, thousands of times), a peer gone, and a message too large.

use std::time::Duration;

use rawipc::chan::Channel;
use rawipc_tokio::{AsyncReceiver, AsyncSender};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Message `i`: 1 to 300 bytes that depend on `i`.
fn message(i: u32) -> Vec<u8> {
    let len = 1 + (i as usize * 7919) % 300;
    (0..len).map(|k| (i as usize * 31 + k) as u8).collect()
}

#[test]
fn tasks_on_both_ends_of_a_small_ring_lose_nothing() {
    const COUNT: u32 = 20_000;
    let (tx, rx) = Channel::new(1024).unwrap().split().unwrap();
    runtime().block_on(async {
        let mut tx = AsyncSender::new(tx).unwrap();
        let mut rx = AsyncReceiver::new(rx).unwrap();
        let sender = tokio::spawn(async move {
            for i in 0..COUNT {
                tx.send(&message(i)).await.unwrap();
                if i % 1000 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
        let mut buf = [0u8; 512];
        for i in 0..COUNT {
            let n = rx.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &message(i)[..], "message {i}");
        }
        sender.await.unwrap();
        assert_eq!(
            rx.recv(&mut buf).await.unwrap(),
            0,
            "then the sender is gone"
        );
    });
}

#[test]
fn a_blocking_peer_thread_is_awaited_both_ways() {
    let (tx, mut peer_rx) = Channel::new(4096).unwrap().split().unwrap();
    let (mut peer_tx, rx) = Channel::new(4096).unwrap().split().unwrap();
    // The peer: a plain thread with blocking calls, slow now and then.
    let peer = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let mut i = 0u32;
        while let Ok(n @ 1..) = peer_rx.recv(&mut buf) {
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            peer_tx.send(&buf[..n]).unwrap();
            i += 1;
        }
        i
    });
    runtime().block_on(async {
        let mut tx = AsyncSender::new(tx).unwrap();
        let mut rx = AsyncReceiver::new(rx).unwrap();
        let mut buf = [0u8; 512];
        for i in 0..2000 {
            tx.send(&message(i)).await.unwrap();
            let n = rx.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &message(i)[..]);
        }
        drop(tx);
        assert_eq!(rx.recv(&mut buf).await.unwrap(), 0, "the peer is gone");
    });
    assert_eq!(peer.join().unwrap(), 2000);
}

#[test]
fn a_send_on_a_full_ring_whose_receiver_goes_is_epipe() {
    let (tx, rx) = Channel::new(1024).unwrap().split().unwrap();
    runtime().block_on(async {
        let mut tx = AsyncSender::new(tx).unwrap();
        while tx.get_mut().try_send(&[1; 100]).is_ok() {}
        let dropper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(rx);
        });
        let err = tx.send(&[2; 100]).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(rawipc::Errno::PIPE.raw_os_error()));
        dropper.await.unwrap();
    });
}

#[test]
fn a_message_too_large_for_the_buffer_stays_queued() {
    let (mut tx, rx) = Channel::new(4096).unwrap().split().unwrap();
    tx.send(&[7; 100]).unwrap();
    runtime().block_on(async {
        let mut rx = AsyncReceiver::new(rx).unwrap();
        let err = rx.recv(&mut [0; 10]).await.unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(rawipc::Errno::MSGSIZE.raw_os_error())
        );
        assert_eq!(rx.recv(&mut [0; 100]).await.unwrap(), 100, "still there");
    });
}
