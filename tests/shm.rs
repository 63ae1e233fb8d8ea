//! rawipc::shm in one process: sizes (zero, enormous), zero fill, alignment,
//! the typed `Shared<T>`. Sharing across fork and unmapping on drop are in
//! tests/fork/ (unmapping is checked in a process of its own, where no other
//! test's thread can map something at the freed address).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, Ordering};

use rawipc::Errno;
use rawipc::shm::{Shared, SharedRegion, ShmSafe};

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap()
}

#[test]
fn zero_length_is_einval() {
    assert_eq!(SharedRegion::new(0).unwrap_err(), Errno::INVAL);
}

#[test]
fn lengths_above_isize_max_are_enomem() {
    for len in [usize::MAX, isize::MAX as usize + 1, usize::MAX - 4095] {
        assert_eq!(
            SharedRegion::new(len).unwrap_err(),
            Errno::NOMEM,
            "{len:#x}"
        );
    }
}

#[test]
fn isize_max_is_enomem_from_the_kernel() {
    // Rounded up to whole pages it is 2^63, more address space than a
    // process has: mmap(2) itself refuses.
    assert_eq!(
        SharedRegion::new(isize::MAX as usize).unwrap_err(),
        Errno::NOMEM
    );
}

/// 64 TiB fits in the 128 TiB of a process's address space, but no machine
/// has that much memory. A MAP_SHARED anonymous mapping is shmem, whose pages
/// are reserved (committed) at mmap time unless MAP_NORESERVE: with
/// vm.overcommit_memory 0 (heuristic: nothing larger than RAM + swap) or 2
/// (strict) the kernel refuses it with ENOMEM; with 1 (always) it succeeds,
/// and the mapping is dropped without a byte touched.
#[test]
fn enormous_but_legal_length_follows_the_overcommit_policy() {
    let policy = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap();
    let result = SharedRegion::new(1 << 46);
    match policy.trim() {
        "1" => assert_eq!(result.map(|r| r.len()), Ok(1 << 46)),
        "0" | "2" => assert_eq!(result.unwrap_err(), Errno::NOMEM),
        other => panic!("unknown vm.overcommit_memory {other}"),
    }
}

#[test]
fn region_is_zero_filled_page_aligned_and_writable_to_its_end() {
    for len in [1, 100, page_size(), 3 * page_size() + 5] {
        let region = SharedRegion::new(len).unwrap();
        assert_eq!(region.len(), len);
        assert!(!region.is_empty());
        assert_eq!(region.as_ptr() as usize % page_size(), 0);
        // SAFETY: the region is `len` readable and writable bytes, ours alone.
        let bytes = unsafe { std::slice::from_raw_parts_mut(region.as_ptr(), len) };
        assert!(bytes.iter().all(|&b| b == 0), "len {len}");
        bytes.fill(0xA5);
        assert_eq!(bytes[len - 1], 0xA5);
    }
}

#[test]
fn regions_are_distinct() {
    let a = SharedRegion::new(10).unwrap();
    let b = SharedRegion::new(10).unwrap();
    assert_ne!(a.as_ptr(), b.as_ptr());
}

#[test]
fn region_debug_shows_its_length() {
    let region = SharedRegion::new(123).unwrap();
    let text = format!("{region:?}");
    assert!(text.starts_with("SharedRegion"), "{text}");
    assert!(text.contains("len: 123"), "{text}");
}

#[test]
fn region_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SharedRegion>();
    check::<Shared<AtomicU64>>();
}

#[test]
fn shared_holds_its_value_and_derefs_to_it() {
    let counter = Shared::new(AtomicI32::new(1)).unwrap();
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    counter.fetch_add(41, Ordering::SeqCst);
    assert_eq!(counter.load(Ordering::SeqCst), 42);
    assert_eq!(counter.as_ptr(), std::ptr::from_ref::<AtomicI32>(&counter));
    assert_eq!(counter.as_ptr() as usize % page_size(), 0);

    let plain = Shared::new(0x1234_5678_u32).unwrap();
    assert_eq!(*plain, 0x1234_5678);
    assert_eq!(format!("{plain:?}"), "Shared(305419896)");
}

#[test]
fn shared_array_larger_than_a_page() {
    let counters = Shared::new([const { AtomicU64::new(7) }; 1024]).unwrap();
    assert_eq!(std::mem::size_of_val(&*counters), 8192);
    assert!(counters.iter().all(|c| c.load(Ordering::SeqCst) == 7));
    counters[1023].store(9, Ordering::SeqCst);
    assert_eq!(counters[1023].load(Ordering::SeqCst), 9);
    assert_eq!(counters[0].load(Ordering::SeqCst), 7);
}

#[test]
fn shared_zero_sized_and_small_values() {
    let unit = Shared::new(()).unwrap();
    assert_eq!(*unit, ());
    let flags = Shared::new([AtomicBool::new(true), AtomicBool::new(false)]).unwrap();
    assert!(flags[0].load(Ordering::SeqCst));
    assert!(!flags[1].load(Ordering::SeqCst));
    let nested = Shared::new([const { [const { AtomicU8::new(3) }; 3] }; 2]).unwrap();
    assert_eq!(nested[1][2].load(Ordering::SeqCst), 3);
    let phantom = Shared::new(std::marker::PhantomData::<u64>).unwrap();
    assert_eq!(std::mem::size_of_val(&*phantom), 0);
}

/// A page-aligned type fits a page-aligned mapping; anything more aligned
/// than a page cannot be placed by mmap's alignment alone.
#[test]
fn alignment_above_a_page_is_einval() {
    #[repr(C, align(4096))]
    struct PageAligned(AtomicU64);
    // SAFETY: an atomic and padding: no pointer, no destructor.
    unsafe impl ShmSafe for PageAligned {}
    #[repr(C, align(8192))]
    struct TwoPageAligned(AtomicU64);
    // SAFETY: as above.
    unsafe impl ShmSafe for TwoPageAligned {}

    let ok = Shared::new(PageAligned(AtomicU64::new(5))).unwrap();
    assert_eq!(ok.0.load(Ordering::SeqCst), 5);
    let refused = Shared::new(TwoPageAligned(AtomicU64::new(5)));
    assert_eq!(refused.map(|_| ()), Err(Errno::INVAL));
}
