//! A QuickJS allocator with a hard byte limit.
//!
//! QuickJS's own `JS_SetMemoryLimit` only covers part of the engine; counting every
//! allocation here makes the limit exact, and the `exceeded` flag lets the interrupt
//! handler stop a program that catches its own out-of-memory error.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use libmimalloc_sys as mi;
use rquickjs::allocator::Allocator;

/// Extra room granted once the limit has been hit, so the engine can unwind and build
/// the error object instead of failing inside its own error path.
const UNWIND_RESERVE: usize = 2 << 20;

pub(crate) struct LimitedAllocator {
    /// Adjustable: engines are made ahead of time and get their limit when taken.
    limit: Arc<AtomicUsize>,
    used: usize,
    exceeded: Arc<AtomicBool>,
}

impl LimitedAllocator {
    pub(crate) fn new(limit: Arc<AtomicUsize>, exceeded: Arc<AtomicBool>) -> Self {
        Self {
            limit,
            used: 0,
            exceeded,
        }
    }

    fn admit(&mut self, grow: usize) -> bool {
        let mut ceiling = self.limit.load(Ordering::Relaxed);
        if self.exceeded.load(Ordering::Relaxed) {
            ceiling = ceiling.saturating_add(UNWIND_RESERVE);
        }
        if self.used.saturating_add(grow) > ceiling {
            self.exceeded.store(true, Ordering::Relaxed);
            false
        } else {
            true
        }
    }
}

/// Blocks from this size up come from libc's malloc, which maps them on their own and
/// unmaps them when freed, so a program that grows big arrays hands the memory back at
/// once. Smaller blocks, nearly all of an engine's, come from mimalloc, which keeps freed
/// pages for the next execution instead of faulting them in again.
const LARGE: usize = 128 << 10;

/// Whether mimalloc made this block (else libc did).
fn from_mimalloc(ptr: *mut u8) -> bool {
    // SAFETY: a lookup in mimalloc's segment map; any pointer may be asked about.
    unsafe { mi::mi_is_in_heap_region(ptr.cast()) }
}

fn usable(ptr: *mut u8) -> usize {
    // SAFETY: every pointer handed out by this allocator comes from mimalloc or libc malloc.
    unsafe {
        if from_mimalloc(ptr) {
            mi::mi_usable_size(ptr.cast())
        } else {
            libc::malloc_usable_size(ptr.cast())
        }
    }
}

fn raw_alloc(size: usize) -> *mut u8 {
    // SAFETY: plain allocations; freed by `raw_free`.
    unsafe {
        if size >= LARGE {
            libc::malloc(size).cast()
        } else {
            mi::mi_malloc(size.max(1)).cast()
        }
    }
}

/// # Safety
/// `ptr` came from `raw_alloc` / `raw_realloc` / calloc here and is freed once.
unsafe fn raw_free(ptr: *mut u8) {
    if from_mimalloc(ptr) {
        mi::mi_free(ptr.cast());
    } else {
        libc::free(ptr.cast());
    }
}

/// # Safety
/// As for `raw_free`; `ptr` is not null.
unsafe fn raw_realloc(ptr: *mut u8, old: usize, new_size: usize) -> *mut u8 {
    let small = from_mimalloc(ptr);
    match (small, new_size >= LARGE) {
        (true, false) => mi::mi_realloc(ptr.cast(), new_size.max(1)).cast(),
        (false, true) => libc::realloc(ptr.cast(), new_size).cast(),
        _ => {
            // Moving between the two: copy what fits.
            let new_ptr = raw_alloc(new_size);
            if !new_ptr.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, old.min(new_size));
                raw_free(ptr);
            }
            new_ptr
        }
    }
}

// SAFETY: all memory comes from mimalloc (small blocks) or libc (large ones), 16-byte
// aligned, and goes back to the allocator that made it.
unsafe impl Allocator for LimitedAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(size) {
            return std::ptr::null_mut();
        }
        let ptr = raw_alloc(size);
        if !ptr.is_null() {
            self.used += usable(ptr);
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        if !self.admit(total) {
            return std::ptr::null_mut();
        }
        // SAFETY: a plain zeroed allocation.
        let ptr: *mut u8 = unsafe {
            if total >= LARGE {
                libc::calloc(count, size).cast()
            } else {
                mi::mi_calloc(count.max(1), size.max(1)).cast()
            }
        };
        if !ptr.is_null() {
            self.used += usable(ptr);
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        self.used = self.used.saturating_sub(usable(ptr));
        raw_free(ptr);
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        let old = usable(ptr);
        if new_size > old && !self.admit(new_size - old) {
            return std::ptr::null_mut();
        }
        let new_ptr = raw_realloc(ptr, old, new_size);
        if !new_ptr.is_null() {
            self.used = self.used.saturating_sub(old) + usable(new_ptr);
        }
        new_ptr
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        usable(ptr)
    }
}
