//! Processes that did not fork from each other: named endpoints and who they
//! admit (with real different uids), fd passing that loses nothing, sealed
//! memory a peer cannot shrink, channels and mutexes handed over, peers that
//! die at every step, and nothing leaked over thousands of cycles.
//!
//! Each test runs in a process of its own (tests/support). The "other
//! programs" are this binary exec'd again with `RAWIPC_ROLE` set (see
//! [`roles`]): they share no memory, no fd and no parent-made object with
//! the test; they find it by name only. Names hold the test process's pid,
//! so parallel runs on one machine never meet.

#[path = "../support/mod.rs"]
mod support;

mod closing;
mod endpoint;
mod fds;
mod handover;
mod memfd;
mod roles;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use rustix::process::Signal;

fn main() -> std::process::ExitCode {
    if let Ok(role) = std::env::var(roles::ROLE_ENV) {
        roles::run(&role);
        return std::process::ExitCode::SUCCESS;
    }
    support::main(tests![
        endpoint::separately_started_programs_exchange_everything_by_name,
        endpoint::bad_names_and_taken_names,
        endpoint::accept_refuses_what_is_no_message_listener,
        endpoint::listener_refuses_a_client_of_another_user_and_stays_usable,
        endpoint::listener_admits_a_uid_a_gid_or_anyone_when_told,
        endpoint::client_refuses_an_impostor_of_another_user,
        endpoint::client_trusts_another_server_uid_when_told,
        endpoint::killed_server_name_is_free_at_once,
        endpoint::peer_cred_tells_who_is_there,
        endpoint::peer_cred_of_a_peer_in_another_pid_namespace_is_pid_0,
        endpoint::a_signal_storm_never_surfaces_as_eintr,
        endpoint::a_signal_storm_on_both_sides_never_surfaces_as_eintr,
        fds::fds_travel_and_arrive_close_on_exec,
        fds::too_many_fds_for_the_room_loses_nothing,
        fds::too_long_a_message_with_fds_loses_nothing,
        fds::the_kernel_maximum_of_fds_passes,
        fds::out_of_fds_loses_nothing,
        fds::peer_gone_after_messages_with_fds,
        fds::bad_sends_are_refused,
        fds::a_plain_receive_leaves_fds_queued,
        fds::a_plain_receive_with_credentials_on_still_works,
        fds::credentials_from_another_pid_namespace_are_no_trouble,
        fds::pidfds_of_so_passpidfd_are_not_leaked,
        memfd::sealed_region_is_shared_by_fd,
        memfd::created_region_cannot_be_resized_or_unsealed,
        memfd::shrinkable_or_foreign_fds_are_refused,
        memfd::a_hostile_peer_cannot_cause_sigbus,
        memfd::mutex_in_a_sealed_region_between_programs,
        handover::channel_handed_to_another_program_both_ways,
        handover::hostile_hand_overs_are_refused_without_leaks,
        handover::hostile_life_lines_and_unwritable_memory_are_refused,
        handover::a_life_line_kept_alive_in_its_own_queue_is_a_dead_peer,
        handover::giver_gone_before_giving_is_epipe,
        handover::taker_killed_before_taking_is_a_dead_peer,
        handover::taker_killed_after_taking_is_a_dead_peer,
        handover::giver_killed_after_giving_is_a_dead_peer,
        handover::thousands_of_cycles_leak_no_fd_and_no_mapping,
        handover::out_of_fds_in_accept_take_and_recv_fds_loses_nothing,
        handover::a_peer_killed_anywhere_in_a_hand_over_leaves_nothing_behind,
        closing::a_last_message_sent_as_the_peer_closes_is_received,
        closing::a_last_message_with_fds_sent_as_the_peer_closes_is_received,
        closing::a_hand_over_sent_as_the_giver_closes_is_taken,
    ])
}

/// A name no other test run on this machine uses.
pub fn name(tag: &str) -> String {
    format!("test-{}-{tag}", std::process::id())
}

/// Another program: this binary exec'd in `role` with `args`, its stdout
/// piped (roles say "ready" on it when they listen or are connected).
pub struct Program {
    pub child: Child,
    lines: BufReader<std::process::ChildStdout>,
}

impl Program {
    pub fn start(role: &str, args: &[&str]) -> Program {
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env(roles::ROLE_ENV, role)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("exec this binary in a role");
        let lines = BufReader::new(child.stdout.take().expect("its stdout"));
        Program { child, lines }
    }

    /// The next line it prints (without the newline); "" at end of file.
    pub fn line(&mut self) -> String {
        let mut l = String::new();
        self.lines.read_line(&mut l).expect("read its output");
        l.trim_end().to_owned()
    }

    pub fn expect_line(&mut self, want: &str) {
        assert_eq!(self.line(), want, "the program's output");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL it");
        self.child.wait().expect("reap it");
    }

    pub fn succeeds(mut self) {
        let status = self.child.wait().expect("wait for it");
        assert!(status.success(), "the other program failed: {status}");
    }
}

pub use support::child::{expect_success, spawn};

/// The unprivileged user and group the tests drop to.
pub const NOBODY: u32 = 65534;

/// Whether the tests can switch users (they run as root in CI).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Makes this (forked, single-threaded) process user and group `NOBODY`,
/// with no supplementary groups: a real other user.
pub fn become_nobody() {
    // SAFETY: plain system calls on a single-threaded process.
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups");
        assert_eq!(libc::setresgid(NOBODY, NOBODY, NOBODY), 0, "setresgid");
        assert_eq!(libc::setresuid(NOBODY, NOBODY, NOBODY), 0, "setresuid");
    }
    assert_eq!(rustix::process::geteuid().as_raw(), NOBODY);
}

pub use support::child::open_fds as fd_count;

/// How many mappings this process has.
pub fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .lines()
        .count()
}
