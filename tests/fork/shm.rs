//! rawipc::shm across fork, and unmapping (checked in a process of its own,
//! where no other thread can map something at the freed address).

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use rawipc::pipe::pipe;
use rawipc::process::{self, Fork};
use rawipc::shm::{Shared, SharedRegion};
use rustix::mm::{MsyncFlags, msync};

use crate::{expect_success, fork, in_child};

/// The notes' program: `glob_var` is 1, the child stores 5 and exits, and the
/// parent, after `wait`, prints 5.
pub fn notes_counter_child_stores_5_parent_sees_5() {
    let glob_var = Shared::new(AtomicI32::new(1)).unwrap();
    match fork() {
        Fork::Child => in_child(|| {
            assert_eq!(glob_var.load(Ordering::SeqCst), 1);
            glob_var.store(5, Ordering::SeqCst);
            true
        }),
        Fork::Parent(pid) => {
            let (reaped, status) = process::wait().unwrap();
            assert_eq!(reaped, pid);
            assert!(status.success());
            assert_eq!(glob_var.load(Ordering::SeqCst), 5);
        }
    }
}

pub fn raw_region_written_by_child_is_read_by_parent() {
    let region = SharedRegion::new(3 * 4096 + 10).unwrap();
    let len = region.len();
    match fork() {
        Fork::Child => in_child(|| {
            // SAFETY: the region is `len` bytes, and the parent does not
            // touch it until this child has exited.
            let bytes = unsafe { std::slice::from_raw_parts_mut(region.as_ptr(), len) };
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (i % 251) as u8;
            }
            true
        }),
        Fork::Parent(pid) => {
            expect_success(pid);
            // SAFETY: the child that wrote it is gone; nobody else writes.
            let bytes = unsafe { std::slice::from_raw_parts(region.as_ptr(), len) };
            assert!(bytes.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        }
    }
}

/// Sharing goes both ways and lasts: the child sees what the parent writes
/// after the fork.
pub fn child_sees_the_parents_later_writes() {
    let value = Shared::new(AtomicU64::new(0)).unwrap();
    let (go_r, go_w) = pipe().unwrap();
    match fork() {
        Fork::Child => in_child(|| {
            drop(go_w);
            let mut byte = [0u8; 1];
            assert_eq!(go_r.read(&mut byte), Ok(1));
            assert_eq!(value.load(Ordering::SeqCst), 0xDEAD_BEEF);
            true
        }),
        Fork::Parent(pid) => {
            drop(go_r);
            value.store(0xDEAD_BEEF, Ordering::SeqCst);
            go_w.write_all(b"!").unwrap();
            expect_success(pid);
        }
    }
}

/// Two children each add 1 to every counter `ROUNDS` times, at the same time:
/// no increment is lost (the atomics work between processes).
pub fn array_of_atomics_counted_by_two_children() {
    const ROUNDS: u64 = 2000;
    let counters = Shared::new([const { AtomicU64::new(0) }; 32]).unwrap();
    let mut children = Vec::new();
    for _ in 0..2 {
        match fork() {
            Fork::Child => in_child(|| {
                for _ in 0..ROUNDS {
                    for c in counters.iter() {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
                true
            }),
            Fork::Parent(pid) => children.push(pid),
        }
    }
    for pid in children {
        expect_success(pid);
    }
    for c in counters.iter() {
        assert_eq!(c.load(Ordering::SeqCst), 2 * ROUNDS);
    }
}

/// Whether `[ptr, ptr + len)` is mapped in this process: msync(2) answers
/// ENOMEM for memory that is not mapped.
fn is_mapped(ptr: *mut u8, len: usize) -> bool {
    // SAFETY: msync with MS_ASYNC changes nothing; it only checks the range.
    match unsafe { msync(ptr.cast(), len, MsyncFlags::ASYNC) } {
        Ok(()) => true,
        Err(rawipc::Errno::NOMEM) => false,
        Err(e) => panic!("msync: {e}"),
    }
}

/// The line of /proc/self/maps that starts at `ptr`, if any.
fn maps_line(ptr: *mut u8) -> Option<String> {
    let start = format!("{:x}-", ptr as usize);
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&start))
        .map(str::to_owned)
}

pub fn drop_unmaps_the_mapping() {
    let region = SharedRegion::new(2 * 4096).unwrap();
    let (ptr, len) = (region.as_ptr(), region.len());
    assert!(is_mapped(ptr, len));
    assert!(maps_line(ptr).is_some());
    drop(region);
    assert!(!is_mapped(ptr, len));
    assert_eq!(maps_line(ptr), None);

    let shared = Shared::new(AtomicU32::new(3)).unwrap();
    let ptr = shared.as_ptr().cast_mut().cast::<u8>();
    assert!(is_mapped(ptr, 4));
    drop(shared);
    assert!(!is_mapped(ptr, 4));
}

pub fn into_raw_keeps_the_mapping_and_from_raw_owns_it_again() {
    let region = SharedRegion::new(100).unwrap();
    let before = region.as_ptr();
    // SAFETY: in bounds of a fresh 100-byte region.
    unsafe { region.as_ptr().add(99).write(7) };
    let (ptr, len) = region.into_raw();
    assert_eq!((ptr, len), (before, 100));
    assert!(is_mapped(ptr, len), "into_raw must not unmap");
    // SAFETY: straight from into_raw; nothing else owns the mapping.
    let region = unsafe { SharedRegion::from_raw(ptr, len) };
    assert_eq!((region.as_ptr(), region.len()), (ptr, len));
    // SAFETY: in bounds, and the mapping is alive.
    assert_eq!(unsafe { region.as_ptr().add(99).read() }, 7);
    drop(region);
    assert!(!is_mapped(ptr, len));
}

/// mmap(MAP_SHARED | MAP_ANONYMOUS) shows in /proc/self/maps as a shared
/// ("s") read-write mapping of /dev/zero, as long as the requested length
/// rounded up to whole pages.
pub fn mapping_is_shared_zero_backed_in_proc_maps() {
    let region = SharedRegion::new(4096 + 1).unwrap();
    let line = maps_line(region.as_ptr()).expect("the region in /proc/self/maps");
    let mut fields = line.split_whitespace();
    let range = fields.next().unwrap();
    let perms = fields.next().unwrap();
    assert_eq!(perms, "rw-s", "{line}");
    assert!(line.contains("/dev/zero"), "{line}");
    let (start, end) = range.split_once('-').unwrap();
    let size = usize::from_str_radix(end, 16).unwrap() - usize::from_str_radix(start, 16).unwrap();
    assert_eq!(size, 2 * 4096, "{line}");
}

/// The child unmaps its copy; the parent's stays, with the child's writes.
pub fn drop_unmaps_in_this_process_only() {
    let value = Shared::new(AtomicU32::new(0)).unwrap();
    let ptr = value.as_ptr().cast_mut().cast::<u8>();
    match fork() {
        Fork::Child => in_child(move || {
            value.store(11, Ordering::SeqCst);
            drop(value);
            !is_mapped(ptr, 4)
        }),
        Fork::Parent(pid) => {
            expect_success(pid);
            assert!(is_mapped(ptr, 4));
            assert_eq!(value.load(Ordering::SeqCst), 11);
        }
    }
}

/// The parent unmaps its copy while the child still uses its own.
pub fn parent_unmapping_leaves_the_childs_mapping() {
    let value = Shared::new(AtomicU32::new(21)).unwrap();
    let ptr = value.as_ptr().cast_mut().cast::<u8>();
    let (go_r, go_w) = pipe().unwrap();
    match fork() {
        Fork::Child => in_child(move || {
            drop(go_w);
            let mut byte = [0u8; 1];
            assert_eq!(go_r.read(&mut byte), Ok(1));
            is_mapped(ptr, 4) && value.load(Ordering::SeqCst) == 21
        }),
        Fork::Parent(pid) => {
            drop(go_r);
            drop(value);
            assert!(!is_mapped(ptr, 4));
            go_w.write_all(b"!").unwrap();
            expect_success(pid);
        }
    }
}
