//! rawipc's core API across `fork`: shared memory, processes, pipes and
//! message sockets between a parent and its children, end of file when a
//! child dies, signals in the middle of blocking calls, and SIGPIPE.
//!
//! Each test runs in a process of its own (tests/support), single-threaded,
//! so forking is safe and a test may change its process's signal
//! dispositions and mask. Children leave through [`in_child`], which turns
//! a failed assertion into exit code 1 and never returns into the harness.
//!
//! No test waits for time to pass: a child that must act while its parent
//! is blocked in a system call watches the parent's state in /proc until it
//! sleeps (see [`wait_until_sleeping`]).

#[path = "../support/mod.rs"]
mod support;

mod explain;
mod msg;
mod pipe;
mod process;
mod shm;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use rawipc::process::{Fork, Pid};
use rawipc::shm::Shared;

fn main() -> std::process::ExitCode {
    support::main(tests![
        shm::notes_counter_child_stores_5_parent_sees_5,
        shm::raw_region_written_by_child_is_read_by_parent,
        shm::child_sees_the_parents_later_writes,
        shm::array_of_atomics_counted_by_two_children,
        shm::drop_unmaps_in_this_process_only,
        shm::parent_unmapping_leaves_the_childs_mapping,
        shm::drop_unmaps_the_mapping,
        shm::into_raw_keeps_the_mapping_and_from_raw_owns_it_again,
        shm::mapping_is_shared_zero_backed_in_proc_maps,
        process::fork_returns_child_and_parent,
        process::wait_returns_the_pid_and_exit_code,
        process::exit_codes_are_truncated_to_a_byte,
        process::wait_collects_every_child,
        process::sigkill_is_killed_9_without_core,
        process::waitpid_nohang_is_none_while_the_child_runs,
        process::wait_any_nohang_reaps_any_ended_child_without_waiting,
        process::waitpid_of_a_non_child_is_echild,
        process::wait_without_children_is_echild,
        process::waitpid_unknown_option_is_einval,
        process::wait_interrupted_by_a_signal_still_returns_the_status,
        process::control_raw_wait4_is_interrupted,
        process::waitpid_interrupted_by_a_signal_still_returns_the_status,
        process::stopped_and_continued,
        process::pthread_atfork_handlers_run,
        process::child_panic_becomes_exit_code_1,
        explain::a_reader_holding_the_write_end_is_told_which_fd,
        explain::a_wait_while_holding_a_full_pipe_is_told_its_size,
        explain::a_correct_program_hears_nothing_and_gets_the_same,
        pipe::eof_once_the_writing_child_exits,
        pipe::eof_when_the_writing_child_is_killed,
        pipe::one_mebibyte_through_a_pipe_to_a_child,
        pipe::one_mebibyte_through_a_pipe_from_a_child,
        pipe::read_interrupted_by_a_signal_still_gets_the_data,
        pipe::control_raw_read_is_interrupted,
        pipe::write_all_interrupted_by_a_signal_writes_everything,
        pipe::control_raw_write_is_interrupted,
        pipe::epipe_with_default_sigpipe_and_the_process_survives,
        pipe::control_raw_write_to_a_closed_pipe_kills,
        pipe::epipe_never_runs_a_sigpipe_handler,
        pipe::epipe_with_sigpipe_blocked_leaves_no_new_pending_sigpipe,
        pipe::epipe_with_a_process_directed_sigpipe_pending_leaves_just_that_one,
        pipe::epipe_with_sigpipe_ignored_leaves_it_ignored,
        pipe::epipe_after_a_partial_write_counts_what_went_in,
        msg::parent_and_child_exchange_messages,
        msg::recv_returns_zero_when_the_child_dies,
        msg::recv_interrupted_by_a_signal_still_gets_the_message,
        msg::control_raw_recv_is_interrupted,
        msg::epipe_and_no_sigpipe_when_the_peer_is_gone,
        msg::large_messages_leave_no_fd_or_mapping_behind,
        msg::a_peer_killed_while_sending_large_messages_leaves_only_whole_ones,
        msg::a_large_message_waits_for_a_free_fd,
    ])
}

/// Runs `f` in a forked child and exits: 0 if `f` returned true, 1 if it
/// returned false or panicked (the panic message goes to stderr, which the
/// harness shows). Never returns, never unwinds into the harness.
pub fn in_child(f: impl FnOnce() -> bool) -> ! {
    let ok = catch_unwind(AssertUnwindSafe(f)).unwrap_or(false);
    rawipc::process::exit(if ok { 0 } else { 1 })
}

/// `rawipc::process::fork`, which must succeed.
///
/// The child is killed if its parent dies first: a test's process that fails
/// or is killed for hanging must not leave children behind, holding pipes
/// (among them the harness's output pipes, which it reads to end of file).
pub fn fork() -> Fork {
    let parent = rawipc::process::getpid();
    // SAFETY: the harness runs each test alone, on the only thread of its
    // process, so the child has every lock and fd the test expects.
    let side = unsafe { rawipc::process::fork() }.expect("fork");
    if side == Fork::Child {
        // SAFETY: PR_SET_PDEATHSIG takes a signal number.
        let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        // The parent may have died before that took effect.
        if rc != 0 || rawipc::process::getppid() != Some(parent) {
            rawipc::process::exit(1);
        }
    }
    side
}

pub use support::child::{expect_success, reap};

pub use support::wait_until_sleeping;

/// Where the SIGALRM handler counts its runs: shared memory, so that the
/// child that sent the signal sees that it was handled.
static HANDLED: AtomicPtr<AtomicU32> = AtomicPtr::new(ptr::null_mut());

extern "C" fn count_signal(_: libc::c_int) {
    let counter = HANDLED.load(Ordering::SeqCst);
    if !counter.is_null() {
        // SAFETY: set by `interrupt_parent` to a Shared value that lives
        // until the process exits; atomics are async-signal-safe.
        unsafe { (*counter).fetch_add(1, Ordering::SeqCst) };
    }
}

/// A signal handler function as sigaction(2) takes it.
pub fn handler(f: extern "C" fn(libc::c_int)) -> libc::sighandler_t {
    f as libc::sighandler_t
}

/// Installs `handler` for `signal` with `flags` (no SA_RESTART unless given,
/// so that a blocking call the signal interrupts fails with EINTR), and
/// returns the previous action.
pub fn set_handler(
    signal: libc::c_int,
    handler: libc::sighandler_t,
    flags: libc::c_int,
) -> libc::sigaction {
    // SAFETY: zeroed sigaction structs are valid; the handler is a valid
    // `extern "C" fn(c_int)` or SIG_DFL/SIG_IGN.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = flags;
        libc::sigemptyset(&mut action.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signal, &action, &mut old), 0);
        old
    }
}

/// The current handler of `signal` (SIG_DFL, SIG_IGN or a function).
pub fn handler_of(signal: libc::c_int) -> libc::sighandler_t {
    // SAFETY: a null new action only queries.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signal, ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

/// The calling thread's signal mask.
pub fn blocked_signals() -> libc::sigset_t {
    // SAFETY: a null new set only queries.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), &mut set),
            0
        );
        set
    }
}

/// Whether `signal` is in `set`.
pub fn has(set: &libc::sigset_t, signal: libc::c_int) -> bool {
    // SAFETY: a valid set and signal number.
    unsafe { libc::sigismember(set, signal) == 1 }
}

/// Signals pending for this thread or process.
pub fn pending_signals() -> libc::sigset_t {
    // SAFETY: a valid out-pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        assert_eq!(libc::sigpending(&mut set), 0);
        set
    }
}

/// Blocks or unblocks `signal` for the calling thread.
pub fn set_blocked(signal: libc::c_int, blocked: bool) {
    // SAFETY: a valid set; the old mask is not wanted.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        let how = if blocked {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        assert_eq!(libc::pthread_sigmask(how, &set, ptr::null_mut()), 0);
    }
}

/// Takes a pending `signal` (which must be blocked) without waiting;
/// returns whether there was one.
pub fn take_pending(signal: libc::c_int) -> bool {
    // SAFETY: a valid set and timeout; the siginfo is not wanted.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        libc::sigtimedwait(&set, ptr::null_mut(), &zero) == signal
    }
}

/// Sets up a signal in the middle of the parent's next blocking call.
///
/// Installs a counting SIGALRM handler without SA_RESTART, then forks a child
/// that waits until the parent sleeps (in the call that follows), sends it
/// SIGALRM, waits until the handler has run (so the call has been
/// interrupted), and then runs `then`, which must unblock the call.
/// Returns the child's pid.
pub fn interrupt_parent(then: impl FnOnce() -> bool) -> Pid {
    let handled = Box::leak(Box::new(Shared::new(AtomicU32::new(0)).unwrap()));
    HANDLED.store(
        ptr::from_ref::<AtomicU32>(handled).cast_mut(),
        Ordering::SeqCst,
    );
    set_handler(libc::SIGALRM, handler(count_signal), 0);
    let parent = rawipc::process::getpid();
    match fork() {
        Fork::Child => in_child(|| {
            wait_until_sleeping(parent);
            rustix::process::kill_process(parent, rustix::process::Signal::ALARM).unwrap();
            while handled.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
            then()
        }),
        Fork::Parent(pid) => pid,
    }
}

/// How many times the SIGALRM handler of [`interrupt_parent`] ran here.
pub fn signals_handled() -> u32 {
    let counter = HANDLED.load(Ordering::SeqCst);
    assert!(!counter.is_null());
    // SAFETY: see `count_signal`.
    unsafe { (*counter).load(Ordering::SeqCst) }
}
