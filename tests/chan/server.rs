//! The example server of many clients (`examples/chan_server.rs`), run
//! here: 64 clients it forks, 8 of them killed with SIGKILL at random
//! moments, and 6 clients started separately (this binary exec'd again,
//! meeting the server by name), 2 of which die by SIGKILL in the middle of
//! a request; all waited on in one `epoll_wait` with a pipe.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

#[allow(dead_code)]
#[path = "../../examples/chan_server.rs"]
mod example;

/// Set for this binary exec'd as a client started separately:
/// `NAME,COUNT,DIE` (`DIE`: after how many replies it kills itself, or `-`).
pub const CLIENT_ENV: &str = "RAWIPC_CHAN_SERVER_CLIENT";

/// The client's whole life, exec'd separately.
pub fn client(spec: &str) -> ! {
    let parts: Vec<&str> = spec.split(',').collect();
    let (name, count) = (parts[0], parts[1].parse().expect("COUNT"));
    let code = match parts[2].parse::<u32>() {
        Err(_) => example::client(name, count),
        Ok(die) => {
            let (mut tx, mut rx, id) = example::connect(name).expect("connect");
            assert_eq!(example::run_client(&mut tx, &mut rx, id, die), 0);
            // One more request, then death before its reply.
            let mut req = [0u8; 8 + example::PAYLOAD_MAX];
            let len = example::request(id, die, &mut req);
            tx.send(&req[..len]).expect("send");
            let me = rustix::process::getpid();
            let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
            unreachable!("killed");
        }
    };
    rawipc::process::exit(code)
}

pub fn epoll_server_serves_64_clients_and_notices_the_killed() {
    const COUNT: u32 = 200;
    let name = format!("chan-server-test-{}", std::process::id());
    let exe = std::env::current_exe().expect("this test binary");
    let separate: Vec<_> = (0..6)
        .map(|i| {
            let die = if i >= 4 {
                format!("{}", 10 + 17 * i)
            } else {
                "-".into()
            };
            let child = Command::new(&exe)
                .env(CLIENT_ENV, format!("{name},{COUNT},{die}"))
                .spawn()
                .expect("start a client");
            (child, die != "-")
        })
        .collect();
    let report = example::serve(&example::Options {
        forked: 64,
        count: COUNT,
        kills: 8,
        name: Some(name),
        separate: 6,
    })
    .expect("serve");
    println!("{report:?}");
    assert_eq!(
        report.failed, 0,
        "every forked client served or killed and noticed"
    );
    assert_eq!(
        report.finished, 56,
        "the 56 living forked clients got every reply"
    );
    assert_eq!(report.killed_noticed, 8, "the 8 killed ones were noticed");
    assert_eq!(
        report.separate_gone, 6,
        "the 6 clients started separately came and went"
    );
    assert!(report.replies >= u64::from(56 * COUNT + 4 * COUNT));
    for (mut child, dies) in separate {
        let status = child.wait().expect("wait for a client");
        match dies {
            true => assert_eq!(status.signal(), Some(9), "a victim: {status}"),
            false => assert!(status.success(), "a client started separately: {status}"),
        }
    }
}
