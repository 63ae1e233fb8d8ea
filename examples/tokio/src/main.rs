//! A forked child echoes every message back over a second channel (with
//! blocking calls, as a plain program would); the parent, a tokio program,
//! sends and receives concurrently in two tasks, each awaiting its end's
//! readiness fd, and another task ticks meanwhile to show that the runtime
//! is never blocked.
//!
//! `cargo run --manifest-path examples/tokio/Cargo.toml`

use std::time::Duration;

use rawipc::chan::Channel;
use rawipc::process::{self, Fork};
use rawipc_tokio::{AsyncReceiver, AsyncSender};

const MESSAGES: u32 = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests = Channel::new(4096)?;
    let replies = Channel::new(4096)?;
    // Fork before the runtime starts its threads.
    // SAFETY: the program has a single thread here.
    if let Fork::Child = unsafe { process::fork()? } {
        let (mut rx, mut tx) = (requests.into_receiver(), replies.into_sender());
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = rx.recv(&mut buf) {
            if tx.send(&buf[..n]).is_err() {
                break;
            }
        }
        process::exit(0);
    }
    let (tx, rx) = (requests.into_sender(), replies.into_receiver());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut tx = AsyncSender::new(tx)?;
        let mut rx = AsyncReceiver::new(rx)?;
        let ticker = tokio::spawn(async {
            let mut ticks = 0u32;
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ticks += 1;
                if ticks % 20 == 0 {
                    println!("tick {ticks}: the runtime is free while the channels wait");
                }
            }
        });
        let sending = tokio::spawn(async move {
            for i in 0..MESSAGES {
                tx.send(&i.to_ne_bytes()).await?;
            }
            Ok::<_, std::io::Error>(()) // tx dropped: the echo ends
        });
        let mut buf = [0u8; 256];
        let mut got = 0u32;
        while rx.recv(&mut buf).await? == 4 {
            assert_eq!(u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]), got);
            got += 1;
        }
        sending.await??;
        ticker.abort();
        println!("{got} messages echoed, in order; then the echo was gone");
        Ok::<_, std::io::Error>(())
    })?;
    process::wait()?;
    Ok(())
}
