//! A counting global allocator for the benches: live heap bytes, their peak since the
//! last reset, and the high-water mark of the whole process.
//!
//! A bench installs it with
//! `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
};

/// A global allocator that counts live heap bytes and their peak.
#[derive(Debug)]
pub struct CountingAlloc;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static HIGH_WATER: AtomicUsize = AtomicUsize::new(0);

// The bench allocates from one thread only, so plain loads and stores (no atomic
// read-modify-write) keep the counters exact and cost next to nothing.
fn grew(bytes: usize) {
    let now = CURRENT.load(Ordering::Relaxed) + bytes;
    CURRENT.store(now, Ordering::Relaxed);
    if now > PEAK.load(Ordering::Relaxed) {
        PEAK.store(now, Ordering::Relaxed);
        if now > HIGH_WATER.load(Ordering::Relaxed) {
            HIGH_WATER.store(now, Ordering::Relaxed);
        }
    }
}

fn shrank(bytes: usize) {
    let now = CURRENT.load(Ordering::Relaxed) - bytes;
    CURRENT.store(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the wrapper
// only updates counters, so the `GlobalAlloc` contract is the system allocator's.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        new
    }
}

/// Resets the peak to the live bytes and returns them.
pub fn reset_peak() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// Live heap bytes now.
pub fn current() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// The most live heap bytes since the last [`reset_peak`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// The most live heap bytes since the process started.
pub fn high_water() -> usize {
    HIGH_WATER.load(Ordering::Relaxed)
}
