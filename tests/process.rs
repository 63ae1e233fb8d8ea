//! rawipc::process::Status against C's view: the int that `to_raw` makes is
//! decoded by libc's WIFEXITED/WEXITSTATUS, WIFSIGNALED/WTERMSIG/WCOREDUMP,
//! WIFSTOPPED/WSTOPSIG and WIFCONTINUED as the same status, for every status
//! the kernel can report. (fork, wait and the rest: tests/fork/.)

use rawipc::process::Status;

/// Every status a child can be in: each exit code, each signal (1..=64) with
/// and without a core dump, each stop signal, and continued.
fn every_status() -> Vec<Status> {
    let mut all: Vec<Status> = (0..=255u8).map(Status::Exited).collect();
    for signal in 1..=64 {
        for core_dumped in [false, true] {
            all.push(Status::Killed {
                signal,
                core_dumped,
            });
        }
        all.push(Status::Stopped(signal));
    }
    all.push(Status::Continued);
    all
}

#[test]
fn c_macros_decode_to_raw_as_the_same_status() {
    for status in every_status() {
        let raw = status.to_raw();
        let exited = libc::WIFEXITED(raw);
        let signaled = libc::WIFSIGNALED(raw);
        let stopped = libc::WIFSTOPPED(raw);
        let continued = libc::WIFCONTINUED(raw);
        assert_eq!(
            [exited, signaled, stopped, continued]
                .iter()
                .filter(|&&b| b)
                .count(),
            1,
            "{status:?} as {raw:#x}"
        );
        match status {
            Status::Exited(code) => {
                assert!(exited, "{status:?}");
                assert_eq!(libc::WEXITSTATUS(raw), i32::from(code));
            }
            Status::Killed {
                signal,
                core_dumped,
            } => {
                assert!(signaled, "{status:?}");
                assert_eq!(libc::WTERMSIG(raw), signal);
                assert_eq!(libc::WCOREDUMP(raw), core_dumped);
            }
            Status::Stopped(signal) => {
                assert!(stopped, "{status:?}");
                assert_eq!(libc::WSTOPSIG(raw), signal);
            }
            Status::Continued => assert!(continued),
        }
        assert_eq!(Status::from_raw(raw), status);
    }
}

#[test]
fn only_exit_code_zero_is_success() {
    for status in every_status() {
        assert_eq!(status.success(), status == Status::Exited(0), "{status:?}");
    }
}
