//! Keep freed host memory in the process.
//!
//! glibc hands blocks above its mmap threshold (128 KiB at first) back to the kernel when they
//! are freed and trims the heap top above 128 KiB. A training step frees and reallocates the same
//! activations, gradients and quantized operands every step, so each step page-faults and
//! re-zeroes them: up to a fifth of a CPU step on the `small` model. Raising both thresholds once
//! at start-up keeps those pages mapped; peak memory is unchanged (the pages were in use anyway).

/// Raise glibc's mmap and trim thresholds (no-op on other platforms). Call once, early.
#[allow(unsafe_code)]
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
