//! A QuickJS allocator with a hard byte limit.
//!
//! QuickJS's own `JS_SetMemoryLimit` only covers part of the engine; counting every
//! allocation here makes the limit exact, and the `exceeded` flag lets the interrupt
//! handler stop a program that catches its own out-of-memory error.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

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

fn usable(ptr: *mut u8) -> usize {
    // SAFETY: every pointer handed out by this allocator comes from libc's malloc family.
    unsafe { libc::malloc_usable_size(ptr.cast()) }
}

// SAFETY: all memory comes from libc malloc/calloc/realloc (16-byte aligned) and goes back to free.
unsafe impl Allocator for LimitedAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(size) {
            return std::ptr::null_mut();
        }
        let ptr = unsafe { libc::malloc(size.max(1)) }.cast::<u8>();
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
        let ptr = unsafe { libc::calloc(count.max(1), size.max(1)) }.cast::<u8>();
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
        libc::free(ptr.cast());
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        let old = usable(ptr);
        if new_size > old && !self.admit(new_size - old) {
            return std::ptr::null_mut();
        }
        let new_ptr = libc::realloc(ptr.cast(), new_size.max(1)).cast::<u8>();
        if !new_ptr.is_null() {
            self.used = self.used.saturating_sub(old) + usable(new_ptr);
        }
        new_ptr
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        usable(ptr)
    }
}
