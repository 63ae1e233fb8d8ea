//! The ring's shared layout: the control block, message headers, stamps and
//! markers, and the checks of everything read from shared memory.
//!
//! ```text
//! region: | control block (one page) | ring: cap bytes, a power of two      |
//! ring:   | stamp u32 | len u32 | payload, padded to 8 | stamp | len | ...  |
//! ```
//!
//! A header's stamp is [`stamp_for`] its position (odd, so never 0); its
//! length is a message's, or a marker: [`WRAP`] (the rest of the lap is
//! unused) or [`PAD`] (skip to the next header whose payload starts a
//! cache line).

use core::sync::atomic::{AtomicU32, Ordering};

use super::wait::wake;
use super::{MAX_CAPACITY, MIN_CAPACITY};
use crate::shm::SharedRegion;
use crate::{Errno, OwnedFd, Result};

/// Bytes of a message header: stamp and length, each a `u32`.
pub(super) const HDR: usize = 8;
/// The length that marks "the rest of this lap is unused, go to the next".
pub(super) const WRAP: u32 = u32::MAX;
/// The length that marks "skip to the next header whose payload starts a
/// cache line" (up to 56 bytes on).
pub(super) const PAD: u32 = u32::MAX - 1;
/// A cache line: messages of at least [`ALIGN_FROM`] bytes start on one, so
/// that copying them runs at full speed (a copy 8 bytes off a page-aligned
/// buffer can be ten times slower: 4K aliasing).
pub(super) const LINE: usize = 64;
/// See [`LINE`].
pub(super) const ALIGN_FROM: usize = 1024;
/// The ring starts one page into the region, after the control block.
pub(super) const DATA_OFFSET: usize = 4096;

/// The shared control block, each word on its own cache line so that the
/// sides never write the same line.
#[repr(C)]
pub(super) struct Control {
    /// The receiver's read position (low 32 bits), for the sender's free space.
    pub(super) head: Line,
    /// Non-zero while the receiver sleeps or is about to ([`SLEEPING`]),
    /// or waits on its fd ([`POLLING`]).
    pub(super) rx_sleeping: Line,
    /// Non-zero while the sender waits for room, on the futex
    /// ([`SLEEPING`]) or on its fd ([`POLLING`]): the receiver publishes
    /// `head` on every release with a full barrier, and then wakes it.
    pub(super) tx_waiting: Line,
}

#[repr(C, align(128))]
pub(super) struct Line(pub(super) AtomicU32);

const _: () = assert!(size_of::<Control>() <= DATA_OFFSET);

/// `tx_waiting` or `rx_sleeping`: that side sleeps on a futex (wake it).
pub(super) const SLEEPING: u32 = 2;
/// A bit of `tx_waiting` or `rx_sleeping`: that side waits in `poll` on its
/// fd (write a byte into the life-line, once).
pub(crate) const POLLING: u32 = 4;

/// The ring as one side sees it: the shared region and, in private memory,
/// the size it was made with.
pub(super) struct Ring {
    region: SharedRegion,
    cap: usize,
}

impl Ring {
    /// The ring of `cap` bytes laid out in `region`, whatever made it: a
    /// fresh anonymous mapping, or one received from another process.
    ///
    /// Errors: `EINVAL` if `cap` is not a power of two between
    /// [`MIN_CAPACITY`] and [`MAX_CAPACITY`], or `region` is not
    /// [`Ring::region_len`]`(cap)` bytes long.
    pub(super) fn new(region: SharedRegion, cap: usize) -> Result<Self> {
        let valid = cap.is_power_of_two()
            && (MIN_CAPACITY..=MAX_CAPACITY).contains(&cap)
            && region.len() == Self::region_len(cap);
        match valid {
            true => Ok(Self { region, cap }),
            false => Err(Errno::INVAL),
        }
    }

    /// The length of the shared region that holds a ring of `cap` bytes.
    pub(super) const fn region_len(cap: usize) -> usize {
        DATA_OFFSET + cap
    }

    /// The shared region.
    pub(super) fn region(&self) -> &SharedRegion {
        &self.region
    }

    /// The ring's size in bytes.
    pub(super) fn cap(&self) -> usize {
        self.cap
    }

    /// A second mapping of the same ring, for a second end in this process.
    ///
    /// Errors: `ENOMEM`.
    pub(super) fn map_again(&self) -> Result<Self> {
        Ok(Self {
            region: self.region.map_again()?,
            cap: self.cap,
        })
    }

    pub(super) fn control(&self) -> &Control {
        // SAFETY: the region starts with a Control (all atomics, valid for
        // any bytes), page-aligned, alive as long as self.
        unsafe { &*self.region.as_ptr().cast::<Control>() }
    }

    /// The ring's first byte.
    pub(super) fn data(&self) -> *mut u8 {
        // SAFETY: the region is DATA_OFFSET + cap bytes long.
        unsafe { self.region.as_ptr().add(DATA_OFFSET) }
    }

    /// Where position `pos` lies in the ring.
    pub(super) fn offset(&self, pos: u64) -> usize {
        (pos as usize) & (self.cap - 1)
    }

    /// The stamp word of the header at `off` (8-aligned, below `cap`).
    pub(super) fn stamp(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % HDR == 0 && off < self.cap);
        // SAFETY: in bounds and 4-aligned; an atomic is valid for any bytes.
        unsafe { AtomicU32::from_ptr(self.data().add(off).cast()) }
    }

    /// The length word of the header at `off`.
    pub(super) fn len(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % HDR == 0 && off < self.cap);
        // SAFETY: in bounds (off + 8 <= cap) and 4-aligned.
        unsafe { AtomicU32::from_ptr(self.data().add(off + 4).cast()) }
    }

    /// The length of the message whose header is at `off`, if it is one that
    /// fits: not a marker, not 0, not above the largest, inside the ring.
    #[inline]
    pub(super) fn message_len(&self, off: usize) -> Option<usize> {
        let len = self.len(off).load(Ordering::Relaxed) as usize;
        let fits = len != 0 && len <= self.max_message() && off + HDR + padded(len) <= self.cap;
        fits.then_some(len)
    }

    /// How far the marker whose length word `len` is read at `off` moves
    /// the reader (after the marker `after`, if the last header was one);
    /// `None` if `len` is no marker.
    ///
    /// Errors: `EPROTO` for a marker where none can be: a wrap at a lap's
    /// start or after another marker would skip a whole lap, a pad where no
    /// padding is due nothing.
    pub(super) fn marker_skip(
        &self,
        off: usize,
        len: u32,
        after: Option<u32>,
    ) -> Result<Option<usize>> {
        match len {
            WRAP if off != 0 && after.is_none() => Ok(Some(self.cap - off)),
            PAD if (off + HDR) % LINE != 0 && after != Some(PAD) => {
                Ok(Some(LINE - (off + HDR) % LINE))
            }
            WRAP | PAD => Err(Errno::PROTO),
            _ => Ok(None),
        }
    }

    /// The largest message this ring takes: with its padding, a wrap marker
    /// and the next header, the room it needs is then always below `cap`.
    pub(super) fn max_message(&self) -> usize {
        self.cap / 2 - 2 * HDR - LINE
    }
}

/// The stamp of a header at position `pos`: never 0, different each lap.
pub(super) fn stamp_for(pos: u64) -> u32 {
    (pos as u32) | 1
}

pub(super) fn padded(len: usize) -> usize {
    (len + HDR - 1) & !(HDR - 1)
}

/// The receiver's position from the shared `seen` (its low 32 bits): at most
/// `cap` behind `tail`, or the ring is corrupt.
pub(super) fn observed_head(tail: u64, seen: u32, cap: usize) -> Result<u64> {
    let behind = (tail as u32).wrapping_sub(seen);
    if behind as usize > cap || u64::from(behind) > tail {
        return Err(Errno::PROTO);
    }
    Ok(tail - u64::from(behind))
}

/// Stores the receiver's position `head` for the sender; `full`: as a full
/// barrier, then wakes the sender if it waits (either it sees the position
/// or we see its flag), through the receiver's life-line `bell` if it waits
/// on its fd.
pub(super) fn publish_head(ring: &Ring, head: u64, full: bool, bell: &OwnedFd) {
    let word = &ring.control().head.0;
    if !full {
        word.store(head as u32, Ordering::Release);
        return;
    }
    word.swap(head as u32, Ordering::SeqCst);
    let flag = &ring.control().tx_waiting.0;
    if flag.load(Ordering::SeqCst) != 0 {
        wake(flag, word, bell);
    }
}
