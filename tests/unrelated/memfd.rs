//! Sealed memory: shared by fd, never resizable, and what could shrink (or
//! is no memfd at all) refused, so that no peer can cause SIGBUS.

use std::sync::atomic::{AtomicU64, Ordering};

use rawipc::mutex::ProcessMutex;
use rawipc::shm::{SEALS, SealedRegion, map_sealed};
use rawipc::{AsFd, Errno, OwnedFd};
use rustix::fs::{
    MemfdFlags, SealFlags, fcntl_add_seals, fcntl_get_seals, ftruncate, memfd_create,
};

use super::*;

fn memfd(size: u64, sealing: bool) -> OwnedFd {
    let flags = if sealing {
        MemfdFlags::ALLOW_SEALING | MemfdFlags::CLOEXEC
    } else {
        MemfdFlags::CLOEXEC
    };
    let fd = memfd_create("hostile", flags).unwrap();
    ftruncate(&fd, size).unwrap();
    fd
}

pub fn sealed_region_is_shared_by_fd() {
    let region = SealedRegion::create(10_000).expect("create");
    assert_eq!(region.len(), 10_000);
    assert_eq!(region.as_ptr() as usize % 4096, 0);
    assert_eq!(fcntl_get_seals(region.fd()).unwrap(), SEALS);
    let other = SealedRegion::open(region.fd().try_clone_to_owned().unwrap()).expect("open");
    assert_eq!(other.len(), 10_000, "the size comes from the memfd");
    let a: &AtomicU64 = region.get(8).unwrap();
    let b: &AtomicU64 = other.get(8).unwrap();
    assert_eq!(b.load(Ordering::SeqCst), 0, "zero-filled");
    a.store(42, Ordering::SeqCst);
    assert_eq!(b.load(Ordering::SeqCst), 42, "the same memory");
    assert_eq!(region.get::<AtomicU64>(9_996).err(), Some(Errno::INVAL));
    assert_eq!(region.get::<AtomicU64>(4).err(), Some(Errno::INVAL));
    assert_eq!(
        region.get::<AtomicU64>(usize::MAX).err(),
        Some(Errno::INVAL)
    );
    assert_eq!(SealedRegion::create(0).err(), Some(Errno::INVAL));
    assert_eq!(SealedRegion::create(usize::MAX).err(), Some(Errno::NOMEM));
    // The mapping outlives the fd.
    let (mapping, fd) = other.into_parts();
    drop(fd);
    // SAFETY: inside the mapping, aligned, read only here.
    let v = unsafe { &*mapping.as_ptr().add(8).cast::<AtomicU64>() };
    assert_eq!(v.load(Ordering::SeqCst), 42);
}

pub fn created_region_cannot_be_resized_or_unsealed() {
    let region = SealedRegion::create(4096).unwrap();
    assert_eq!(ftruncate(region.fd(), 0).err(), Some(Errno::PERM));
    assert_eq!(ftruncate(region.fd(), 8192).err(), Some(Errno::PERM));
    assert_eq!(
        fcntl_add_seals(region.fd(), SealFlags::WRITE).err(),
        Some(Errno::PERM),
        "no more seals can be added (F_SEAL_SEAL)"
    );
}

pub fn shrinkable_or_foreign_fds_are_refused() {
    let before = (fd_count(), map_count());
    refuse_all();
    assert_eq!(
        (fd_count(), map_count()),
        before,
        "nothing left open or mapped"
    );
}

fn refuse_all() {
    // A memfd with no seals at all, or that allows none.
    assert_eq!(map_sealed(memfd(4096, true)).err(), Some(Errno::PERM));
    assert_eq!(map_sealed(memfd(4096, false)).err(), Some(Errno::PERM));
    // Sealed against growing and against further seals, but not shrinking.
    let fd = memfd(4096, true);
    fcntl_add_seals(&fd, SealFlags::GROW | SealFlags::SEAL).unwrap();
    assert_eq!(SealedRegion::open(fd).err(), Some(Errno::PERM));
    // Sealed against shrinking only: safe, accepted.
    let fd = memfd(4096, true);
    fcntl_add_seals(&fd, SealFlags::SHRINK).unwrap();
    assert_eq!(map_sealed(&fd).map(|r| r.len()), Ok(4096));
    // Sealed but empty.
    let fd = memfd(0, true);
    fcntl_add_seals(&fd, SealFlags::SHRINK).unwrap();
    assert_eq!(map_sealed(&fd).err(), Some(Errno::INVAL));
    // No memfd: a pipe, a socket, a file on disk.
    let (r, _w) = rawipc::pipe::pipe().unwrap();
    assert_eq!(map_sealed(&r).err(), Some(Errno::INVAL));
    let (s, _t) = rawipc::msg::socketpair().unwrap();
    assert_eq!(map_sealed(&s).err(), Some(Errno::INVAL));
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("unrelated-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(4096).unwrap();
    assert_eq!(map_sealed(&file).err(), Some(Errno::INVAL));
    drop(file);
    std::fs::remove_file(&path).unwrap();
    // Sealed against writing: it cannot be mapped writable.
    let fd = memfd(4096, true);
    fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::WRITE).unwrap();
    assert_eq!(map_sealed(&fd).err(), Some(Errno::PERM));
    // Opened read-only (through /proc): not writable.
    let fd = memfd(4096, true);
    fcntl_add_seals(&fd, SealFlags::SHRINK).unwrap();
    let ro = std::fs::File::open(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())).unwrap();
    assert_eq!(map_sealed(&ro).err(), Some(Errno::ACCESS));
    drop((fd, ro));
}

use rawipc::AsRawFd;

pub fn a_hostile_peer_cannot_cause_sigbus() {
    // The peer keeps its fd and tries everything to take pages away.
    let region = SealedRegion::create(1 << 20).unwrap();
    let theirs = region.fd().try_clone_to_owned().unwrap();
    let mine = SealedRegion::open(theirs.try_clone().unwrap()).unwrap();
    assert_eq!(ftruncate(&theirs, 0).err(), Some(Errno::PERM));
    assert_eq!(ftruncate(&theirs, 4096).err(), Some(Errno::PERM));
    // Punching a hole only zeroes pages; they stay mapped.
    let _ = rustix::fs::fallocate(
        &theirs,
        rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
        0,
        1 << 20,
    );
    // Every page of the mapping can still be read and written.
    for page in (0..mine.len()).step_by(4096) {
        let word: &AtomicU64 = mine.get(page).unwrap();
        word.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn mutex_in_a_sealed_region_between_programs() {
    // Two processes that share nothing but the fd sent over a socket.
    let (a, b) = rawipc::msg::socketpair().unwrap();
    let child = spawn(|| {
        let mut fds = [None];
        assert_eq!(b.recv_fds(&mut [0; 8], &mut fds), Ok((1, 1)));
        let region = SealedRegion::open(fds[0].take().unwrap()).unwrap();
        let m: &ProcessMutex<[u64; 2]> = region.get(0).unwrap();
        for _ in 0..10_000 {
            let mut g = m.lock().unwrap();
            g[0] += 1;
            g[1] += 1;
        }
    });
    drop(b);
    let region = SealedRegion::create(4096).unwrap();
    let m: &ProcessMutex<[u64; 2]> = region.get(0).unwrap();
    a.send_fds(b"m", &[region.fd()]).unwrap();
    for _ in 0..10_000 {
        let mut g = m.lock().unwrap();
        g[0] += 1;
        g[1] += 1;
    }
    expect_success(child);
    assert_eq!(*m.lock().unwrap(), [20_000, 20_000]);
}
