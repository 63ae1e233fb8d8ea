//! rawipc::mutex between processes: mutual exclusion, a holder killed by
//! SIGKILL (while others sleep on the lock, and at random moments hundreds of
//! times), the owner-died / consistent / not-recoverable states, EBUSY and
//! EPERM, garbage in the mutex word, and the C functions (tests/c/mutex.c).
//!
//! Each test runs in a process of its own (tests/support), single-threaded
//! when it forks. Children leave through `process::exit`, and die with their
//! test (PR_SET_PDEATHSIG), so a failed test leaves no writer spinning.
//!
//! No test waits for time to pass: a process that must act while another is
//! blocked in `lock` watches that one's state in /proc until it sleeps.

#[path = "../support/mod.rs"]
mod support;

use std::hint::black_box;
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rawipc::Errno;
use rawipc::mutex::{Acquired, LockError, ProcessMutex, RawMutex};
use rawipc::process::{self, Pid, Status, WaitOptions};
use rawipc::shm::Shared;
use rustix::process::{Signal, WaitId, WaitIdOptions, getpid, getppid, kill_process, waitid};
use support::child::{expect_success, kill, reap, spawn};

fn main() -> std::process::ExitCode {
    support::main(tests![
        processes_exclude_each_other,
        threads_of_two_processes_exclude_each_other,
        holder_killed_while_a_waiter_sleeps_gives_owner_died,
        holder_killed_before_try_lock_gives_owner_died,
        lock_and_repair_composes_with_question_mark,
        owner_died_again_when_the_repairer_dies_too,
        one_of_two_sleeping_waiters_takes_over,
        racing_takeovers_give_owner_died_once,
        unlocking_unrepaired_makes_it_not_recoverable_for_all,
        try_lock_is_ebusy_while_a_live_process_holds_it,
        unlock_by_a_process_that_does_not_hold_it_is_eperm,
        killed_at_random_moments_never_hangs_loses_or_tears,
        garbage_in_the_word_never_hangs_or_panics,
        zombie_holder_is_dead_with_no_fd_left,
        locker_that_got_the_dead_holders_pid_takes_over,
    ])
}

// ---- helpers ----

fn expect_killed(pid: Pid) {
    assert_eq!(
        reap(pid),
        Status::Killed {
            signal: 9,
            core_dumped: false
        },
        "the child was to die of SIGKILL (an exit means it failed: see its stderr)"
    );
}

/// Waits until child `pid` has ended, but leaves it a zombie (not reaped).
fn wait_until_zombie(pid: Pid) {
    waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    )
    .expect("waitid(WNOWAIT)");
}

/// SIGKILLs this process, as a crash would, holding whatever it holds.
fn die() -> ! {
    kill_process(getpid(), Signal::KILL).expect("kill(getpid(), SIGKILL)");
    unreachable!("SIGKILL cannot be caught")
}

use support::wait_until_sleeping;

/// Reaps `pid`, failing the test if it has not ended within 5 s (a hang
/// check, not a measure), and killing it then.
fn reap_within_5s(pid: Pid, what: &str) -> Status {
    let start = Instant::now();
    loop {
        if let Some((_, status)) = process::waitpid(pid, WaitOptions::NOHANG).expect("waitpid") {
            return status;
        }
        if start.elapsed() > Duration::from_secs(5) {
            kill(pid);
            panic!("{what}: still waiting after 5 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Lowers this process's RLIMIT_NOFILE to 64 and opens fds until none is
/// left (for a child only: the limit is its own).
fn use_up_every_fd() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(64),
            maximum: limit.maximum,
        },
    )
    .expect("setrlimit(RLIMIT_NOFILE)");
    let stdin = std::io::stdin();
    loop {
        match rustix::io::dup(&stdin) {
            Ok(fd) => std::mem::forget(fd),
            Err(Errno::MFILE) => break,
            Err(e) => panic!("dup: {e}"),
        }
    }
    assert_eq!(rustix::io::dup(&stdin).err(), Some(Errno::MFILE));
}

/// Spins (no system call, so the process stays runnable) until `flag` is set.
fn spin_until(flag: &AtomicU32) {
    while flag.load(SeqCst) == 0 {
        std::hint::spin_loop();
    }
}

fn spin(n: u32) {
    for _ in 0..n {
        std::hint::spin_loop();
    }
}

/// A tiny xorshift generator, seeded from the clock and the pid.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let seed = nanos ^ (u64::from(getpid().as_raw_nonzero().get().unsigned_abs()) << 32);
        println!("xorshift seed {seed:#x}");
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Adds 1 to the counter `n` times under the lock, as a separate read and
/// write, so that two unlocked increments would lose one.
fn add(counter: &ProcessMutex<u64>, n: u64) {
    for _ in 0..n {
        let mut count = counter.lock().expect("lock");
        let v = black_box(*count);
        *count = black_box(v + 1);
    }
}

// ---- mutual exclusion ----

const ROUNDS: u64 = 100_000;

fn processes_exclude_each_other() {
    let counter = Shared::new(ProcessMutex::new(0u64)).expect("shared memory");
    let child = spawn(|| add(&counter, ROUNDS));
    add(&counter, ROUNDS);
    expect_success(child);
    assert_eq!(*counter.lock().expect("lock"), 2 * ROUNDS);
}

fn threads_of_two_processes_exclude_each_other() {
    let counter = Shared::new(ProcessMutex::new(0u64)).expect("shared memory");
    let two_threads = || {
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| add(&counter, ROUNDS / 2));
            }
        })
    };
    let child = spawn(two_threads);
    two_threads();
    expect_success(child);
    assert_eq!(*counter.lock().expect("lock"), 2 * ROUNDS);
}

// ---- a holder that dies ----

fn holder_killed_while_a_waiter_sleeps_gives_owner_died() {
    let data = Shared::new(ProcessMutex::new([0u64; 4])).expect("shared memory");
    let locked = Shared::new(AtomicU32::new(0)).expect("shared memory");
    let parent = getpid();
    let child = spawn(|| {
        let mut guard = data.lock().expect("lock");
        *guard = [7, 7, 8, 8];
        locked.store(1, SeqCst);
        wait_until_sleeping(parent);
        die();
    });
    spin_until(&locked);
    // Sleeps in the futex until the child dies; the child stays an unreaped
    // zombie meanwhile, which must count as dead.
    match data.lock() {
        Err(LockError::OwnerDied(mut guard)) => {
            assert_eq!(
                *guard,
                [7, 7, 8, 8],
                "the dead holder's data is handed over"
            );
            assert!(!guard.is_consistent());
            *guard = [9; 4];
            guard.mark_consistent();
            assert!(guard.is_consistent());
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    let guard = data.lock().expect("an ordinary lock once repaired");
    assert_eq!(*guard, [9; 4]);
    assert!(guard.is_consistent());
    drop(guard);
    expect_killed(child);
}

/// `lock_and_repair` with `?`: after a holder died, the repair runs once,
/// the guard comes back consistent, and the mutex stays recoverable; on a
/// mutex that is not recoverable, `?` carries ENOTRECOVERABLE.
fn lock_and_repair_composes_with_question_mark() {
    fn bump(m: &ProcessMutex<[u64; 2]>, repairs: &mut u32) -> rawipc::Result<u64> {
        let mut guard = m.lock_and_repair(|v| {
            *repairs += 1;
            v[1] = v[0];
        })?;
        assert!(guard.is_consistent());
        guard[0] += 1;
        guard[1] += 1;
        Ok(guard[0])
    }
    let data = Shared::new(ProcessMutex::new([0u64; 2])).expect("shared memory");
    let mut repairs = 0;
    assert_eq!(bump(&data, &mut repairs), Ok(1));
    assert_eq!(repairs, 0, "no repair without a dead holder");
    let child = spawn(|| {
        let mut guard = data.lock().expect("lock");
        guard[0] = 5; // half an update: [5, 1]
        die();
    });
    expect_killed(child);
    assert_eq!(bump(&data, &mut repairs), Ok(6));
    assert_eq!(repairs, 1);
    assert_eq!(*data.lock().expect("an ordinary lock"), [6, 6]);
    assert_eq!(bump(&data, &mut repairs), Ok(7));
    assert_eq!(repairs, 1);

    // Made not recoverable on purpose: a dead holder, then an unrepaired unlock.
    let child = spawn(|| {
        let _guard = data.lock().expect("lock");
        die();
    });
    expect_killed(child);
    let Err(LockError::OwnerDied(guard)) = data.lock() else {
        panic!("expected OwnerDied");
    };
    drop(guard);
    assert_eq!(bump(&data, &mut repairs), Err(Errno::NOTRECOVERABLE));
    assert_eq!(repairs, 1);
}

fn holder_killed_before_try_lock_gives_owner_died() {
    let data = Shared::new(ProcessMutex::new(0u64)).expect("shared memory");
    let child = spawn(|| {
        let mut guard = data.lock().expect("lock");
        *guard = 41;
        die();
    });
    expect_killed(child);
    match data.try_lock() {
        Err(LockError::OwnerDied(mut guard)) => {
            assert_eq!(*guard, 41);
            *guard += 1;
            guard.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(*data.try_lock().expect("ordinary again"), 42);
    assert_eq!(*data.lock().expect("ordinary again"), 42);
}

/// As with POSIX robust mutexes: if the process that got OwnerDied dies too
/// before marking the data consistent, the next locker gets OwnerDied again.
fn owner_died_again_when_the_repairer_dies_too() {
    let data = Shared::new(ProcessMutex::new(0u64)).expect("shared memory");
    let first = spawn(|| {
        let mut guard = data.lock().expect("lock");
        *guard = 1;
        die();
    });
    expect_killed(first);
    let repairer = spawn(|| match data.lock() {
        Err(LockError::OwnerDied(mut guard)) => {
            *guard = 2;
            die();
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    });
    expect_killed(repairer);
    match data.lock() {
        Err(LockError::OwnerDied(mut guard)) => {
            assert_eq!(*guard, 2);
            guard.mark_consistent();
        }
        other => panic!("expected OwnerDied again, got {other:?}"),
    }
    assert!(data.lock().is_ok());
}

/// Two processes sleep on the lock when its holder dies: exactly one gets
/// OwnerDied (the takeover is a compare-exchange from the word it saw), the
/// other gets the repaired mutex normally.
fn one_of_two_sleeping_waiters_takes_over() {
    let data = Shared::new(ProcessMutex::new(0u64)).expect("shared memory");
    let locked = Shared::new(AtomicU32::new(0)).expect("shared memory");
    let waiters = Shared::new([AtomicU32::new(0), AtomicU32::new(0)]).expect("shared memory");
    // [normal, owner died]
    let outcomes = Shared::new([AtomicU32::new(0), AtomicU32::new(0)]).expect("shared memory");
    let holder = spawn(|| {
        let mut guard = data.lock().expect("lock");
        *guard = 100;
        locked.store(1, SeqCst);
        for waiter in waiters.iter() {
            spin_until(waiter);
            wait_until_sleeping(Pid::from_raw(waiter.load(SeqCst) as i32).expect("a pid"));
        }
        die();
    });
    spin_until(&locked);
    let waiter = || match data.lock() {
        Ok(mut guard) => {
            outcomes[0].fetch_add(1, SeqCst);
            *guard += 1;
        }
        Err(LockError::OwnerDied(mut guard)) => {
            outcomes[1].fetch_add(1, SeqCst);
            *guard += 1;
            guard.mark_consistent();
        }
        Err(e) => panic!("{e:?}"),
    };
    let pids = [spawn(waiter), spawn(waiter)];
    for (slot, pid) in waiters.iter().zip(pids) {
        slot.store(pid.as_raw_nonzero().get() as u32, SeqCst);
    }
    expect_killed(holder);
    pids.into_iter().for_each(expect_success);
    assert_eq!(outcomes[1].load(SeqCst), 1, "exactly one waiter took over");
    assert_eq!(outcomes[0].load(SeqCst), 1, "the other locked normally");
    assert_eq!(*data.lock().expect("lock"), 102);
}

/// A spin barrier: the sleeping kind wakes threads ~25 µs apart here, too
/// far apart for the race below.
struct SpinBarrier {
    arrived: AtomicU32,
    generation: AtomicU32,
}

impl SpinBarrier {
    fn wait(&self, threads: u32) {
        let generation = self.generation.load(SeqCst);
        if self.arrived.fetch_add(1, SeqCst) + 1 == threads {
            self.arrived.store(0, SeqCst);
            self.generation.fetch_add(1, SeqCst);
        } else {
            while self.generation.load(SeqCst) == generation {
                std::hint::spin_loop();
            }
        }
    }
}

/// Two threads, released together, find the same dead holder: exactly one
/// takes over (OwnerDied), the other sees its own process holding (EBUSY).
/// The holders are zombies, whose pids cannot be reused while unreaped.
fn racing_takeovers_give_owner_died_once() {
    const ROUNDS: usize = 300;
    let zombies: Vec<Pid> = (0..ROUNDS).map(|_| spawn(|| {})).collect();
    zombies.iter().copied().for_each(wait_until_zombie);
    let mutex = RawMutex::new();
    // SAFETY: RawMutex is repr(C) around its one AtomicU32 (rawipc_mutex).
    let word = unsafe { &*ptr::from_ref(&mutex).cast::<AtomicU32>() };
    let barrier = SpinBarrier {
        arrived: AtomicU32::new(0),
        generation: AtomicU32::new(0),
    };
    let outcomes = [AtomicU32::new(0), AtomicU32::new(0)];
    let (wrong, took_over) = (AtomicU32::new(0), AtomicU32::new(0));
    std::thread::scope(|s| {
        for (t, outcome) in outcomes.iter().enumerate() {
            let (barrier, outcomes, wrong, took_over) = (&barrier, &outcomes, &wrong, &took_over);
            let (zombies, mutex) = (&zombies, &mutex);
            s.spawn(move || {
                for zombie in zombies {
                    if t == 0 {
                        word.store(zombie.as_raw_nonzero().get() as u32, SeqCst);
                    }
                    barrier.wait(2);
                    outcome.store(
                        match mutex.try_lock() {
                            Ok(Acquired::OwnerDied) => 1,
                            Err(Errno::BUSY) => 2,
                            _ => 3,
                        },
                        SeqCst,
                    );
                    barrier.wait(2);
                    if t == 0 {
                        let mut seen = [outcomes[0].load(SeqCst), outcomes[1].load(SeqCst)];
                        seen.sort_unstable();
                        if seen == [1, 2] {
                            took_over.fetch_add(1, SeqCst);
                        } else {
                            wrong.fetch_add(1, SeqCst);
                        }
                        // Either thread may unlock: the holder is the process.
                        let _ = mutex.mark_consistent();
                        let _ = mutex.unlock();
                    }
                    barrier.wait(2);
                }
            });
        }
    });
    zombies.into_iter().for_each(expect_success);
    assert_eq!(wrong.load(SeqCst), 0, "rounds without exactly one takeover");
    assert_eq!(took_over.load(SeqCst), ROUNDS as u32);
    assert_eq!(word.load(SeqCst), 0, "every round ended unlocked");
}

/// Unlocking after OwnerDied without mark_consistent: every lock, in every
/// process, fails with ENOTRECOVERABLE from then on, and a process already
/// sleeping on the lock wakes to it.
fn unlocking_unrepaired_makes_it_not_recoverable_for_all() {
    let data = Shared::new(ProcessMutex::new(0u64)).expect("shared memory");
    let holder = spawn(|| {
        let _guard = data.lock().expect("lock");
        die();
    });
    expect_killed(holder);
    let Err(LockError::OwnerDied(guard)) = data.lock() else {
        panic!("expected OwnerDied");
    };
    let sleeper = spawn(|| {
        assert!(matches!(data.lock(), Err(LockError::NotRecoverable)));
    });
    wait_until_sleeping(sleeper);
    drop(guard);
    expect_success(sleeper);
    for _ in 0..3 {
        let e = data.lock().expect_err("not recoverable");
        assert!(matches!(e, LockError::NotRecoverable));
        assert_eq!(e.errno(), Errno::NOTRECOVERABLE);
        assert!(matches!(data.try_lock(), Err(LockError::NotRecoverable)));
    }
    let other = spawn(|| {
        assert!(matches!(data.lock(), Err(LockError::NotRecoverable)));
        assert!(matches!(data.try_lock(), Err(LockError::NotRecoverable)));
    });
    expect_success(other);
}

// ---- EBUSY, EPERM, EINVAL ----

fn try_lock_is_ebusy_while_a_live_process_holds_it() {
    let data = Shared::new(ProcessMutex::new(0u64)).expect("shared memory");
    let guard = data.lock().expect("lock");
    let e = data.try_lock().expect_err("held by this process");
    assert!(matches!(e, LockError::WouldBlock));
    assert_eq!(e.errno(), Errno::BUSY);
    let child = spawn(|| {
        assert!(matches!(data.try_lock(), Err(LockError::WouldBlock)));
    });
    expect_success(child);
    drop(guard);

    let locked = Shared::new(AtomicU32::new(0)).expect("shared memory");
    let holder = spawn(|| {
        let mut guard = data.lock().expect("lock");
        *guard = 5;
        locked.store(1, SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    spin_until(&locked);
    for _ in 0..3 {
        assert!(matches!(data.try_lock(), Err(LockError::WouldBlock)));
    }
    kill(holder);
    // A zombie holds nothing: try_lock takes over without waiting.
    wait_until_zombie(holder);
    match data.try_lock() {
        Err(LockError::OwnerDied(mut guard)) => {
            assert_eq!(*guard, 5);
            guard.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    expect_killed(holder);
}

fn unlock_by_a_process_that_does_not_hold_it_is_eperm() {
    let mutex = Shared::new(RawMutex::new()).expect("shared memory");
    assert_eq!(mutex.unlock(), Err(Errno::PERM), "not locked");
    assert_eq!(mutex.mark_consistent(), Err(Errno::INVAL), "not locked");
    assert_eq!(mutex.lock(), Ok(Acquired::Normal));
    assert_eq!(
        mutex.mark_consistent(),
        Err(Errno::INVAL),
        "held, but not after OwnerDied"
    );
    let child = spawn(|| {
        assert_eq!(mutex.unlock(), Err(Errno::PERM));
        assert_eq!(mutex.mark_consistent(), Err(Errno::INVAL));
        assert_eq!(mutex.try_lock(), Err(Errno::BUSY));
    });
    expect_success(child);
    assert_eq!(
        mutex.try_lock(),
        Err(Errno::BUSY),
        "still held by this process"
    );
    assert_eq!(mutex.unlock(), Ok(()));
    assert_eq!(mutex.unlock(), Err(Errno::PERM), "unlocked twice");

    // The mark on a guard got normally does nothing.
    let data = ProcessMutex::new(1u8);
    let mut guard = data.lock().expect("lock");
    guard.mark_consistent();
    assert!(guard.is_consistent());
}

// ---- SIGKILL at random moments ----

const WORDS: usize = 8;
const KILLS: u32 = 300;

/// The child: forever, locks, writes `i` into each of the 8 words one at a
/// time (volatile stores, with a pause between them so that kills land
/// inside), unlocks, then records `i` as committed.
fn writer(value: &ProcessMutex<[u64; WORDS]>, committed: &AtomicU64, start: u64) -> ! {
    for i in start.. {
        let mut guard = match value.lock() {
            Ok(guard) => guard,
            Err(e) => panic!("the writer's lock failed: {e:?}"),
        };
        for k in 0..WORDS {
            // SAFETY: a valid, exclusive place (the guard holds the lock).
            unsafe { ptr::write_volatile(&raw mut guard[k], i) };
            spin(20);
        }
        drop(guard);
        committed.store(i, SeqCst);
        spin(150);
    }
    unreachable!()
}

/// Hundreds of times: a child writes a multi-word value under the lock
/// while the parent contends for it, and the parent SIGKILLs the child at a
/// random moment, then locks. Never hangs (the harness's time limit would
/// fail it); a normal lock never sees a torn value nor one older than the
/// last committed update; OwnerDied may see a torn value, which must be a
/// partial write of the update after the last committed one.
fn killed_at_random_moments_never_hangs_loses_or_tears() {
    let value = Shared::new(ProcessMutex::new([0u64; WORDS])).expect("shared memory");
    let committed = Shared::new(AtomicU64::new(0)).expect("shared memory");
    let mut rng = Rng::seeded();
    let (mut normal, mut died, mut contended) = (0u32, 0u32, 0u64);
    let mut last = 0u64;
    for _ in 0..KILLS {
        committed.store(last, SeqCst);
        let child = spawn(|| writer(&value, &committed, last + 1));
        let deadline = Instant::now() + Duration::from_micros(rng.below(3000));
        let mut seen = last;
        while Instant::now() < deadline {
            let before = committed.load(SeqCst);
            let guard = value.lock().expect("the writer lives: a normal lock");
            let v = guard[0];
            assert!(
                guard.iter().all(|&w| w == v),
                "torn under a normal lock: {:?}",
                *guard
            );
            assert!(v >= before, "lost a committed update: {v} < {before}");
            assert!(v >= seen, "went back in time: {v} < {seen}");
            seen = v;
            contended += 1;
            drop(guard);
            spin(rng.below(500) as u32);
        }
        kill(child);
        expect_killed(child);
        let c = committed.load(SeqCst);
        match value.lock() {
            Ok(guard) => {
                let v = guard[0];
                assert!(
                    guard.iter().all(|&w| w == v),
                    "torn under a normal lock: {:?}",
                    *guard
                );
                assert!(
                    v == c || v == c + 1,
                    "{v} is neither committed {c} nor the next"
                );
                last = v;
                normal += 1;
            }
            Err(LockError::OwnerDied(mut guard)) => {
                let written = guard.iter().take_while(|&&w| w == c + 1).count();
                assert!(
                    guard[written..].iter().all(|&w| w == c),
                    "not a partial write of {} over committed {c}: {:?}",
                    c + 1,
                    *guard
                );
                *guard = [c; WORDS];
                guard.mark_consistent();
                last = c;
                died += 1;
            }
            Err(e) => panic!("after a kill: {e:?}"),
        }
    }
    println!(
        "{KILLS} kills: {died} in the critical section, {normal} outside; {contended} contended locks"
    );
    assert!(died > 0, "no kill landed while the child held the lock");
    assert!(
        normal > 0,
        "every kill landed while the child held the lock"
    );
}

// ---- garbage ----

// The word's layout, documented with RawMutex and rawipc_mutex: the holder
// in the low 30 bits (its pid in bits 0-21, its process's tag in 22-29),
// then OWNER_DIED and WAITERS; all holder bits set is not recoverable.
const WAITERS: u32 = 1 << 31;
const OWNER_DIED: u32 = 1 << 30;
const PID: u32 = OWNER_DIED - 1;
/// The process id in a holder (below PID_MAX_LIMIT); a tag above it.
const PID_BITS: u32 = (1 << 22) - 1;

/// This process as it names itself in a mutex word it holds.
fn holder_id() -> u32 {
    let mutex = RawMutex::new();
    assert_eq!(mutex.lock(), Ok(Acquired::Normal));
    // SAFETY: RawMutex is repr(C) around its one AtomicU32 (rawipc_mutex).
    let word = unsafe { &*ptr::from_ref(&mutex).cast::<AtomicU32>() };
    let id = word.load(SeqCst) & PID;
    mutex.unlock().expect("unlock");
    id
}

/// A holder no process can be, from `r`: a process id of 0 or at least
/// pid_max, under any tag.
fn impossible_holder(r: u32, pid_max: u32) -> u32 {
    let pid = match PID_BITS.checked_sub(pid_max) {
        Some(room) if r % 8 != 0 => pid_max + r % (room + 1),
        _ => 0,
    };
    // Tag 255 with every pid bit set is the not-recoverable value.
    let tag = (r >> 8) % 255;
    pid | (tag << 22)
}

/// Random words in the mutex (as a buggy or hostile process might write):
/// every call returns Ok or an error, never panics and never waits for a
/// holder that does not exist.
///
/// `lock` waits while the word names a live process, so it only gets words
/// whose pid no process can have (0, or pid_max and above). `try_lock`,
/// `unlock` and `mark_consistent` never wait and get any word at all,
/// including the harness's pid (live: EBUSY) and this process's own id
/// (which, holding no mutex, it takes over: a dead process had its pid).
fn garbage_in_the_word_never_hangs_or_panics() {
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .expect("pid_max")
        .trim()
        .parse()
        .expect("a number");
    let me = holder_id();
    assert_eq!(me & PID_BITS, getpid().as_raw_nonzero().get() as u32);
    let runner = getppid().expect("the harness").as_raw_nonzero().get() as u32;
    let mutex = RawMutex::new();
    // SAFETY: RawMutex is repr(C) around its one AtomicU32 (rawipc_mutex).
    let word = unsafe { &*ptr::from_ref(&mutex).cast::<AtomicU32>() };
    let mut rng = Rng::seeded();
    let flags = |r: u64| (r >> 32) as u32 & (WAITERS | OWNER_DIED);
    let release = |rng: &mut Rng, acquired: Acquired| {
        let mark = rng.below(2) == 0;
        if mark {
            let marked = mutex.mark_consistent();
            assert_eq!(marked.is_ok(), acquired == Acquired::OwnerDied);
        }
        assert_eq!(mutex.unlock(), Ok(()), "the new holder can unlock");
        if acquired == Acquired::OwnerDied && !mark {
            assert_eq!(mutex.lock(), Err(Errno::NOTRECOVERABLE));
            assert_eq!(mutex.try_lock(), Err(Errno::NOTRECOVERABLE));
        } else {
            assert_eq!(word.load(SeqCst), 0, "unlocked");
        }
    };
    for round in 0..40_000u32 {
        let bits = rng.next();
        let r = bits as u32;
        match round % 4 {
            0 => {
                let w = match rng.below(4) {
                    0 => me | flags(bits),
                    1 => runner | flags(bits),
                    _ => r,
                };
                word.store(w, SeqCst);
                // The runner under any tag (but 255, which no process has).
                // Not this process, even under its own tag: it holds no
                // mutex, so a word naming it was left by a dead process
                // that had its id.
                let live = w & PID_BITS == runner && (w & PID) >> 22 != 0xff;
                match mutex.try_lock() {
                    Ok(acquired) => {
                        assert!(!live, "{w:#x} names a live process");
                        assert!(w == 0 || acquired == Acquired::OwnerDied, "{w:#x}");
                        release(&mut rng, acquired);
                    }
                    Err(Errno::BUSY) => assert!(
                        live || (w & PID_BITS < pid_max && (w & PID) >> 22 != 0xff),
                        "EBUSY for {w:#x}, whose pid cannot be running"
                    ),
                    Err(Errno::NOTRECOVERABLE) => assert_eq!(w & PID, PID),
                    Err(e) => panic!("try_lock on {w:#x}: {e}"),
                }
            }
            1 => {
                let pid = if r % 64 == 0 {
                    PID
                } else {
                    impossible_holder(r, pid_max)
                };
                let w = flags(bits) | pid;
                word.store(w, SeqCst);
                match mutex.lock() {
                    Ok(acquired) => {
                        assert!(w == 0 || acquired == Acquired::OwnerDied, "{w:#x}");
                        release(&mut rng, acquired);
                    }
                    Err(Errno::NOTRECOVERABLE) => assert_eq!(pid, PID),
                    Err(e) => panic!("lock on {w:#x}: {e}"),
                }
            }
            2 => {
                let w = if r % 2 == 0 { me | flags(bits) } else { r };
                word.store(w, SeqCst);
                match mutex.unlock() {
                    Ok(()) => {
                        assert_eq!(w & PID, me);
                        let after = word.load(SeqCst);
                        let expected = if w & OWNER_DIED != 0 { PID } else { 0 };
                        assert_eq!(after, expected, "unlocked {w:#x}");
                    }
                    Err(Errno::PERM) => assert_ne!(w & PID, me),
                    Err(e) => panic!("unlock on {w:#x}: {e}"),
                }
            }
            _ => {
                let w = if r % 2 == 0 { me | flags(bits) } else { r };
                word.store(w, SeqCst);
                match mutex.mark_consistent() {
                    Ok(()) => {
                        assert!(w & PID == me && w & OWNER_DIED != 0, "{w:#x}");
                        assert_eq!(word.load(SeqCst), w & !OWNER_DIED);
                    }
                    Err(Errno::INVAL) => assert!(w & PID != me || w & OWNER_DIED == 0),
                    Err(e) => panic!("mark_consistent on {w:#x}: {e}"),
                }
            }
        }
    }

    // A ProcessMutex over garbage hands its value over with OwnerDied.
    let data = Shared::new(ProcessMutex::new(3u64)).expect("shared memory");
    // SAFETY: ProcessMutex is repr(C) with its RawMutex (one AtomicU32) first.
    let word = unsafe { &*data.as_ptr().cast::<AtomicU32>() };
    for _ in 0..1000 {
        let r = rng.next() as u32;
        let w = (r & (WAITERS | OWNER_DIED)) | impossible_holder(r, pid_max);
        word.store(w, SeqCst);
        match data.lock() {
            // A zero word is an unlocked mutex, not garbage.
            Ok(guard) => assert_eq!((w, *guard), (0, 3)),
            Err(LockError::OwnerDied(mut guard)) => {
                assert_ne!(w, 0);
                assert_eq!(*guard, 3);
                guard.mark_consistent();
            }
            other => panic!("expected OwnerDied for {w:#x}, got {other:?}"),
        }
    }

    // And a clean word is an ordinary mutex again.
    word.store(0, SeqCst);
    assert_eq!(*data.lock().expect("lock"), 3);
}

/// A holder that died and is an unreaped zombie, found by a locker that has
/// no fd left for a pidfd: the locker's own child, and a process of another
/// parent. try_lock gives OwnerDied (not EBUSY), lock returns.
fn zombie_holder_is_dead_with_no_fd_left() {
    let data = Shared::new(ProcessMutex::new(0u64)).expect("shared memory");
    let hold_and_die = || {
        let mut guard = data.lock().expect("lock");
        *guard += 1;
        die();
    };
    // A sibling of the locker: a zombie that only this process may reap.
    let sibling = spawn(hold_and_die);
    wait_until_zombie(sibling);
    let locker = spawn(|| {
        use_up_every_fd();
        match data.try_lock() {
            Err(LockError::OwnerDied(mut guard)) => guard.mark_consistent(),
            other => panic!("try_lock, holder a zombie of another parent: {other:?}"),
        }
        // Its own child, left unreaped.
        for blocking in [false, true] {
            let child = spawn(hold_and_die);
            wait_until_zombie(child);
            let got = if blocking {
                data.lock()
            } else {
                data.try_lock()
            };
            match got {
                Err(LockError::OwnerDied(mut guard)) => guard.mark_consistent(),
                other => panic!("blocking {blocking}, holder our zombie child: {other:?}"),
            }
            expect_killed(child);
        }
    });
    assert_eq!(
        reap_within_5s(locker, "the locker with no fd"),
        Status::Exited(0)
    );
    expect_killed(sibling);
    assert_eq!(*data.lock().expect("an ordinary mutex"), 3);
}

/// Forces the kernel to give a locker the pid of the holder that died
/// (`/proc/sys/kernel/ns_last_pid`, where this process may write it): the
/// locker, which holds no mutex, takes the mutex over instead of waiting
/// for itself. Skipped where the pid cannot be forced.
fn locker_that_got_the_dead_holders_pid_takes_over() {
    const LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";
    let Ok(saved) = std::fs::read_to_string(LAST_PID) else {
        println!("skipped: no {LAST_PID}");
        return;
    };
    if std::fs::OpenOptions::new()
        .write(true)
        .open(LAST_PID)
        .is_err()
    {
        println!("skipped: {LAST_PID} is not writable here");
        return;
    }
    let data = Shared::new(ProcessMutex::new(0u64)).expect("shared memory");
    let result = Shared::new(AtomicU32::new(0)).expect("shared memory");
    let mut forced = false;
    // Other processes on the machine may take the pid first: a few tries.
    for _ in 0..20 {
        let holder = spawn(|| {
            let mut guard = data.lock().expect("lock");
            *guard += 1;
            die();
        });
        expect_killed(holder);
        let pid = holder.as_raw_nonzero().get();
        // The next fork gets `pid` if it is still free.
        if std::fs::write(LAST_PID, format!("{}", pid - 1)).is_err() {
            break;
        }
        let locker = spawn(|| {
            if getpid() != holder {
                result.store(1, SeqCst);
                return;
            }
            // Tagged by the holder, in the word: our pid, not our tag.
            match data.lock() {
                Err(LockError::OwnerDied(mut guard)) => guard.mark_consistent(),
                other => panic!("the locker with the dead holder's pid: {other:?}"),
            }
            result.store(2, SeqCst);
        });
        let status = reap_within_5s(locker, "the locker with the dead holder's pid");
        assert_eq!(status, Status::Exited(0), "the locker failed");
        if result.load(SeqCst) == 2 {
            forced = true;
            break;
        }
        // Some other process got the pid: the mutex still names the dead
        // holder; take it over here and try again.
        if let Err(LockError::OwnerDied(mut guard)) = data.lock() {
            guard.mark_consistent();
        }
    }
    let _ = std::fs::write(LAST_PID, saved.trim());
    if forced {
        println!("the locker got its dead holder's pid, and took the mutex over");
        assert!(*data.lock().expect("an ordinary mutex") >= 1);
    } else {
        println!("skipped: the holder's pid could not be given to the locker");
    }
}

// ---- C ----
