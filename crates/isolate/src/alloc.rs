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

/// What one engine may use and uses, shared by its allocator, its bridge and its interrupt
/// handler. Only the thread running the engine writes `used`, so it is kept with plain
/// loads and stores (no atomic read-modify-write on the allocation path).
#[derive(Default)]
pub(crate) struct Meter {
    /// Adjustable: engines are made ahead of time and get their limit when taken.
    limit: AtomicUsize,
    /// Bytes the engine's heap holds.
    used: AtomicUsize,
    /// Bytes the bridge holds for the program outside the heap (tool arguments and console
    /// lines built for the host): they count toward the same limit.
    bridge: AtomicUsize,
    /// The limit was hit (sticky; the interrupt handler stops the program on it).
    exceeded: AtomicBool,
}

impl Meter {
    pub(crate) fn new() -> Self {
        Self {
            limit: AtomicUsize::new(usize::MAX),
            ..Self::default()
        }
    }

    pub(crate) fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// Bytes the engine's heap holds.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes left under the limit, heap and bridge together.
    pub(crate) fn room(&self) -> usize {
        self.limit().saturating_sub(
            self.used
                .load(Ordering::Relaxed)
                .saturating_add(self.bridge.load(Ordering::Relaxed)),
        )
    }

    /// Count `bytes` the bridge now holds; false (and the limit marked as hit) when they
    /// do not fit.
    pub(crate) fn charge_bridge(&self, bytes: usize) -> bool {
        if bytes > self.room() {
            self.exceeded.store(true, Ordering::Relaxed);
            return false;
        }
        self.bridge.fetch_add(bytes, Ordering::Relaxed);
        true
    }

    /// The bridge handed everything it held to the host.
    pub(crate) fn release_bridge(&self) {
        self.bridge.store(0, Ordering::Relaxed);
    }

    fn add_used(&self, bytes: usize) {
        let used = self.used.load(Ordering::Relaxed);
        self.used.store(used + bytes, Ordering::Relaxed);
    }

    fn sub_used(&self, bytes: usize) {
        let used = self.used.load(Ordering::Relaxed);
        self.used
            .store(used.saturating_sub(bytes), Ordering::Relaxed);
    }
}

pub(crate) struct LimitedAllocator {
    meter: Arc<Meter>,
}

impl LimitedAllocator {
    pub(crate) fn new(meter: Arc<Meter>) -> Self {
        Self { meter }
    }

    fn admit(&mut self, grow: usize) -> bool {
        let meter = &*self.meter;
        let mut ceiling = meter.limit();
        if meter.exceeded() {
            ceiling = ceiling.saturating_add(UNWIND_RESERVE);
        }
        let held = meter.used.load(Ordering::Relaxed) + meter.bridge.load(Ordering::Relaxed);
        if held.saturating_add(grow) > ceiling {
            meter.exceeded.store(true, Ordering::Relaxed);
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

/// The usable size of a block, knowing which allocator made it.
///
/// # Safety
/// `ptr` is a live block (not yet freed) of the allocator `small` names: mimalloc when true,
/// libc's malloc when false.
unsafe fn usable_of(ptr: *mut u8, small: bool) -> usize {
    if small {
        // SAFETY: the caller vouches that `ptr` is a live mimalloc block.
        unsafe { mi::mi_usable_size(ptr.cast()) }
    } else {
        // SAFETY: the caller vouches that `ptr` is a live block of libc's malloc.
        unsafe { libc::malloc_usable_size(ptr.cast()) }
    }
}

/// The usable size of a live block of this allocator, whichever allocator made it.
///
/// # Safety
/// `ptr` is a live block handed out by [`LimitedAllocator`].
unsafe fn usable(ptr: *mut u8) -> usize {
    // SAFETY: every block this allocator hands out comes from mimalloc or libc's malloc, and
    // `from_mimalloc` says which; the caller vouches that the block is live.
    unsafe { usable_of(ptr, from_mimalloc(ptr)) }
}

/// A new block of `size` bytes (zeroed when `zeroed`), and its usable size.
fn raw_alloc(size: usize, zeroed: bool) -> (*mut u8, usize) {
    let small = size < LARGE;
    // SAFETY: plain allocations with no precondition (a size of 0 is raised to 1 for
    // mimalloc; libc accepts 0); the block is freed by `raw_free` with the same `small`.
    let ptr: *mut u8 = unsafe {
        match (small, zeroed) {
            (true, false) => mi::mi_malloc(size.max(1)).cast(),
            (true, true) => mi::mi_zalloc(size.max(1)).cast(),
            (false, false) => libc::malloc(size).cast(),
            (false, true) => libc::calloc(1, size).cast(),
        }
    };
    if ptr.is_null() {
        return (ptr, 0);
    }
    // SAFETY: `ptr` was just made, not null, by the allocator `small` names.
    (ptr, unsafe { usable_of(ptr, small) })
}

/// Give a block back to the allocator that made it.
///
/// # Safety
/// `ptr` is a live block of the allocator `small` names (mimalloc when true, libc's malloc
/// when false), and it is not used again.
unsafe fn raw_free(ptr: *mut u8, small: bool) {
    if small {
        // SAFETY: the caller vouches that `ptr` is a live mimalloc block, freed once.
        unsafe { mi::mi_free(ptr.cast()) };
    } else {
        // SAFETY: the caller vouches that `ptr` is a live block of libc's malloc, freed once.
        unsafe { libc::free(ptr.cast()) };
    }
}

// SAFETY: `alloc`, `calloc` and `realloc` return null or a block of at least the size asked
// for (mimalloc's and libc's blocks are 16-byte aligned, more than `usize` needs);
// `usable_size` asks the allocator that made the block; every block goes back to the
// allocator that made it (`from_mimalloc` tells them apart).
unsafe impl Allocator for LimitedAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(size) {
            return std::ptr::null_mut();
        }
        let (ptr, usable) = raw_alloc(size, false);
        self.meter.add_used(usable);
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        if !self.admit(total) {
            return std::ptr::null_mut();
        }
        let (ptr, usable) = raw_alloc(total, true);
        self.meter.add_used(usable);
        ptr
    }

    /// # Safety
    /// `ptr` is null or a live block of this allocator, not used again (the trait's contract).
    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        let small = from_mimalloc(ptr);
        // SAFETY: `ptr` is a live block of this allocator (the caller's contract), made by
        // the allocator `small` names; it is freed once, after its size is read.
        unsafe {
            self.meter.sub_used(usable_of(ptr, small));
            raw_free(ptr, small);
        }
    }

    /// # Safety
    /// `ptr` is null or a live block of this allocator (the trait's contract); when the
    /// result is not null, `ptr` is not used again.
    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        let small = from_mimalloc(ptr);
        // SAFETY: `ptr` is a live block of this allocator, made by the one `small` names.
        let old = unsafe { usable_of(ptr, small) };
        if new_size > old && !self.admit(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above; `ptr` is resized or moved by the allocator that made it.
        let (new_ptr, usable) = unsafe { resize(ptr, small, old, new_size) };
        if !new_ptr.is_null() {
            self.meter.sub_used(old);
            self.meter.add_used(usable);
        }
        new_ptr
    }

    /// # Safety
    /// `ptr` is a live block of this allocator (the trait's contract).
    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: the caller's contract is `usable`'s.
        unsafe { usable(ptr) }
    }
}

/// Resize the block `ptr` (of `old` usable bytes) to `new_size` bytes: in place or moved by
/// its allocator when the new size is on the same side of [`LARGE`], else moved to the other
/// allocator. Returns the block and its usable size, or null (and `ptr` untouched).
///
/// # Safety
/// `ptr` is a live block of the allocator `small` names, and `old` its usable size; when
/// the result is not null, `ptr` is not used again.
unsafe fn resize(ptr: *mut u8, small: bool, old: usize, new_size: usize) -> (*mut u8, usize) {
    match (small, new_size < LARGE) {
        (true, true) => {
            // SAFETY: `ptr` is a live mimalloc block (the caller's contract).
            let p: *mut u8 = unsafe { mi::mi_realloc(ptr.cast(), new_size.max(1)) }.cast();
            // SAFETY: `p`, when not null, is the live mimalloc block just returned.
            (p, if p.is_null() { 0 } else { unsafe { usable_of(p, true) } })
        }
        (false, false) => {
            // SAFETY: `ptr` is a live block of libc's malloc (the caller's contract).
            let p: *mut u8 = unsafe { libc::realloc(ptr.cast(), new_size) }.cast();
            // SAFETY: `p`, when not null, is the live libc block just returned.
            (p, if p.is_null() { 0 } else { unsafe { usable_of(p, false) } })
        }
        _ => {
            // Moving between the two: copy what fits.
            let (p, usable) = raw_alloc(new_size, false);
            if !p.is_null() {
                // SAFETY: `ptr` holds `old` readable bytes and `p` at least `new_size`
                // writable ones; they are distinct blocks. `ptr` is then freed once, by the
                // allocator that made it.
                unsafe {
                    std::ptr::copy_nonoverlapping(ptr, p, old.min(new_size));
                    raw_free(ptr, small);
                }
            }
            (p, usable)
        }
    }
}
