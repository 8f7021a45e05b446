//! A bf16 GEMM for the `bf16` precision scheme: `dst = bf16(lhs) · bf16(rhs)` with f32
//! accumulation. The f32→bf16 rounding is fused into the packing of the operands (BLIS-style
//! panels), so there is no separate rounding pass. Three kernels ([`Bf16Kernel`]):
//! - `Dot`: AVX512-BF16 `vdpbf16ps` on panels of bf16 k-pairs (half the bytes of f32).
//! - `Fma`: AVX-512 f32 FMA on panels of the rounded values. On Intel Sapphire/Emerald Rapids
//!   `vdpbf16ps` issues once per 2 cycles against 2 FMAs per cycle (measured), so it has half the
//!   FMA's flops there; AMD Zen 4/5 are reported to issue it at the FMA rate, twice the flops
//!   (not measured here).
//! - `Portable`: scalar, for CPUs without AVX-512 (and tests).
//!
//! # Numerics
//! - Every operand element is rounded f32→bf16 with round-to-nearest-even, as
//!   `nibble_formats::element::round_bf16` does: NaN stays NaN (made quiet), ±Inf stays ±Inf,
//!   values past the largest bf16 round to ±Inf.
//! - Products of two bf16 are exact in f32 (8-bit significands) unless they leave f32's normal
//!   range, so each kernel is an f32 GEMM of the rounded operands in a fixed accumulation order
//!   that depends on k alone (never on the thread count or the blocking); `acc` starts at +0:
//!   - `Fma` and `Portable`: `acc += a[p]·b[p]` for p = 0, 1, … (one rounding per step; the two
//!     give the same bits unless a product is denormal or overflows).
//!   - `Dot`: `acc = (acc + a[2p+1]·b[2p+1]) + a[2p]·b[2p]` per k-pair (odd k pads with 0·0).
//!     `vdpbf16ps` ignores MXCSR: it reads bf16 denormals (|x| < 2^-126) as zero and flushes
//!     denormal results to zero.
//!
//! So the result equals an f32 GEMM of the bf16-rounded operands up to f32 accumulation order,
//! plus denormal flushing on `Dot`.

use std::ops::Range;

#[cfg(target_arch = "x86_64")]
use super::bf16_pack;

/// A strided f32 matrix: element (i, j) at `data[off + i·rs + j·cs]` (the f32 GEMM's view).
pub use super::gemm::View;

impl View<'_> {
    /// Panics unless every element of the `rows × cols` view lies inside `data`; the unsafe
    /// kernels rely on this.
    fn check(&self, rows: usize, cols: usize, what: &str) {
        let last = (rows - 1)
            .checked_mul(self.rs)
            .and_then(|r| r.checked_add((cols - 1).checked_mul(self.cs)?))
            .and_then(|x| x.checked_add(self.off));
        assert!(
            last.is_some_and(|l| l < self.data.len()),
            "bf16_matmul: {what} view out of bounds"
        );
    }
}

/// The kernel that computes the product (see the module doc for their numerics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// AVX512-BF16 `vdpbf16ps`: k-pairs, denormals flushed.
    Dot,
    /// AVX-512 f32 FMA on the rounded operands: sequential k.
    Fma,
    /// Scalar loops: sequential k.
    Portable,
}

impl Bf16Kernel {
    /// The fastest kernel this CPU has: `Dot` where `vdpbf16ps` is fast (AMD), else `Fma`
    /// where there is AVX-512, else `Portable`. Detected once.
    pub fn detect() -> Self {
        static KERNEL: std::sync::OnceLock<Bf16Kernel> = std::sync::OnceLock::new();
        *KERNEL.get_or_init(|| {
            use Bf16Kernel::*;
            match (Dot.available(), Fma.available()) {
                (true, _) if dot_is_fast() => Dot,
                (_, true) => Fma,
                _ => Portable,
            }
        })
    }

    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        let (avx512, bf16) = (
            is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw"),
            is_x86_feature_detected!("avx512bf16"),
        );
        #[cfg(not(target_arch = "x86_64"))]
        let (avx512, bf16) = (false, false);
        match self {
            Bf16Kernel::Dot => avx512 && bf16,
            Bf16Kernel::Fma => avx512,
            Bf16Kernel::Portable => true,
        }
    }
}

/// Whether `vdpbf16ps` outruns the f32 FMA: AMD's (Zen 4/5) is reported to issue at the FMA
/// rate with twice the flops; Intel's (Sapphire/Emerald Rapids) issues at a quarter of it.
#[cfg(target_arch = "x86_64")]
fn dot_is_fast() -> bool {
    let v = std::arch::x86_64::__cpuid(0);
    (v.ebx, v.edx, v.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163) // "AuthenticAMD"
}

#[cfg(not(target_arch = "x86_64"))]
fn dot_is_fast() -> bool {
    false
}

/// Whether [`bf16_matmul`] uses the AVX512-BF16 (`vdpbf16ps`) kernel on this CPU.
pub fn has_bf16_dot() -> bool {
    Bf16Kernel::detect() == Bf16Kernel::Dot
}

/// `dst[m×n]` (row-major, `len == m·n`) `= bf16(lhs[m×k]) · bf16(rhs[k×n])` with f32
/// accumulation (see the module doc), on `threads` threads, with [`Bf16Kernel::detect`].
/// The AVX-512 kernels keep a few packing buffers between calls (at most 8; the largest is
/// about the size of the smaller operand, or of a task's share of the larger).
pub fn bf16_matmul(
    m: usize,
    n: usize,
    k: usize,
    lhs: View,
    rhs: View,
    dst: &mut [f32],
    threads: usize,
) {
    bf16_matmul_with(Bf16Kernel::detect(), m, n, k, lhs, rhs, dst, threads);
}

/// [`bf16_matmul`] with a chosen kernel. Panics if the CPU lacks it.
#[allow(clippy::too_many_arguments)]
pub fn bf16_matmul_with(
    kernel: Bf16Kernel,
    m: usize,
    n: usize,
    k: usize,
    lhs: View,
    rhs: View,
    dst: &mut [f32],
    threads: usize,
) {
    assert!(
        kernel.available(),
        "bf16_matmul: this CPU cannot run {kernel:?}"
    );
    assert_eq!(dst.len(), m * n, "bf16_matmul: dst must hold m·n elements");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        return dst.fill(0.0);
    }
    lhs.check(m, k, "lhs");
    rhs.check(k, n, "rhs");
    // SAFETY: the views hold every element of their shapes (checked above), `dst` holds m·n,
    // and the CPU has the kernel's features (asserted above).
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe {
        match kernel {
            Bf16Kernel::Dot => return blocked::matmul::<true>(m, n, k, lhs, rhs, dst, threads),
            Bf16Kernel::Fma => return blocked::matmul::<false>(m, n, k, lhs, rhs, dst, threads),
            Bf16Kernel::Portable => {}
        }
    }
    portable_matmul(m, n, k, lhs, rhs, dst, threads);
}

/// f32 → bf16 with round-to-nearest-even, as the f32 with the bf16 in its top 16 bits.
#[inline(always)]
fn round_bf16(x: f32) -> f32 {
    let b = x.to_bits();
    if (b & 0x7fff_ffff) > 0x7f80_0000 {
        // NaN: keep the sign and the payload's top, set the quiet bit.
        return f32::from_bits((b | 0x0040_0000) & 0xffff_0000);
    }
    // Adding 0x7fff plus the kept LSB carries into bit 16 exactly when RNE rounds up.
    f32::from_bits(b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000)
}

/// `threads` (at least 1, at most `units`) contiguous ranges of `0..units` of near-equal size.
fn split(units: usize, threads: usize) -> impl Iterator<Item = Range<usize>> {
    let t = threads.clamp(1, units.max(1));
    (0..t).map(move |i| units * i / t..units * (i + 1) / t)
}

/// The portable kernel: the rhs rounded into a contiguous copy, then per output row the
/// sequential f32 accumulation (vectorized over columns by the compiler). Rows are split over
/// the threads.
fn portable_matmul(
    m: usize,
    n: usize,
    k: usize,
    lhs: View,
    rhs: View,
    dst: &mut [f32],
    threads: usize,
) {
    let at = |v: &View, i: usize, j: usize| round_bf16(v.data[v.off + i * v.rs + j * v.cs]);
    let mut b = vec![0.0f32; k * n];
    for (p, row) in b.chunks_exact_mut(n).enumerate() {
        row.iter_mut()
            .enumerate()
            .for_each(|(j, x)| *x = at(&rhs, p, j));
    }
    let rows_of = |rows: Range<usize>, out: &mut [f32]| {
        for (i, out) in rows.zip(out.chunks_exact_mut(n)) {
            out.fill(0.0);
            for (p, bp) in b.chunks_exact(n).enumerate() {
                let a = at(&lhs, i, p);
                out.iter_mut().zip(bp).for_each(|(c, &b)| *c += a * b);
            }
        }
    };
    std::thread::scope(|s| {
        let mut rest = dst;
        for rows in split(m, threads) {
            let (out, tail) = rest.split_at_mut(rows.len() * n);
            rest = tail;
            s.spawn(|| rows_of(rows, out));
        }
    });
}

/// The multithreaded blocked driver of the AVX-512 kernels.
#[cfg(target_arch = "x86_64")]
mod blocked {
    use super::View;
    use super::bf16_pack::{MR, Src, Tile, kernel_dot, kernel_fma, pack};
    use std::ops::Range;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::{Barrier, Mutex, RwLock};

    /// Slots per k-block: an rhs micro-panel (KS·nr·4 bytes = 24 or 36 KiB) stays in L1.
    const KS: usize = 192;
    /// Most rows (or columns) of a task's own chunk (KS·384·4 bytes = 288 KiB per k-block).
    const MAX_CHUNK: usize = 384;
    /// Rows of lhs panels that stream through an rhs panel (MC·KS·4 bytes = 192 KiB, in L2).
    const MC: usize = 256;
    /// Most output elements of a task (when it runs k-blocks outermost, its partial sums stay
    /// in L2 from one k-block to the next).
    const C_TILE_BUDGET: usize = 1 << 17;
    /// Rows or columns per packing job of the pre-packed operand.
    const GROUP: usize = 384;
    /// Most u32 of a task's own chunk packed for all k at once (4 MiB), see `Job::k_inner`.
    const K_INNER_MAX: usize = 1 << 20;
    /// Packing buffers kept for reuse across calls.
    const MAX_SPARE: usize = 8;
    // Groups and chunks hold whole panels of every width (8, 32, 48).
    const _: () = assert!(GROUP.is_multiple_of(96) && MAX_CHUNK.is_multiple_of(96));

    /// The output the threads share: row-major m×n.
    struct Dst(*mut f32);

    // SAFETY: the threads write disjoint tiles of the output (see `Job::task`).
    #[allow(unsafe_code)]
    unsafe impl Sync for Dst {}

    /// Packing buffers of finished calls, reused: fresh pages cost a page fault each, a
    /// sizeable part of a small GEMM's time. Holds at most `MAX_SPARE`, the largest.
    static SPARE: Mutex<Vec<Vec<u32>>> = Mutex::new(Vec::new());

    /// A buffer of at least `len` u32 from 64-byte alignment on (see [`aligned`]); its
    /// contents are arbitrary (packing writes all that is read).
    fn buffer(len: usize) -> Vec<u32> {
        let len = len + 15;
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        let fit = (0..spare.len())
            .filter(|&i| spare[i].len() >= len)
            .min_by_key(|&i| spare[i].len());
        match fit {
            Some(i) => spare.swap_remove(i),
            None => vec![0; len],
        }
    }

    /// `v` from its first 64-byte aligned element: whole-line panel loads (a load that
    /// straddles two cache lines costs two).
    fn aligned(v: &mut [u32]) -> &mut [u32] {
        let skip = v.as_ptr().align_offset(64).min(v.len());
        &mut v[skip..]
    }

    fn recycle(v: Vec<u32>) {
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        spare.push(v);
        if spare.len() > MAX_SPARE {
            let smallest = (0..spare.len()).min_by_key(|&i| spare[i].len());
            spare.swap_remove(smallest.expect("not empty"));
        }
    }

    /// Columns of a micro-tile for n output columns: 48 (three zmm, fewer loads per FMA)
    /// unless it pads n more than 32 would (Nibble's 128, 256, 512, 4096 are 32·j only).
    fn columns_per_tile(n: usize) -> usize {
        let pad = |nr: usize| n.next_multiple_of(nr) - n;
        if pad(48) <= pad(32) { 48 } else { 32 }
    }

    /// The next index below `n` from the shared counter `c`, if any.
    fn take(c: &AtomicUsize, n: usize) -> Option<usize> {
        Some(c.fetch_add(1, Relaxed)).filter(|&i| i < n)
    }

    /// `dst = bf16(lhs)·bf16(rhs)` on up to `threads` threads. The smaller operand ("pre":
    /// `rhs` when `n ≤ m`) is packed whole first, in parallel; then each task takes a chunk of
    /// the other's ("own") rows or columns, packs it and computes those output rows (columns)
    /// over all k-blocks in order, so every output accumulates in k's order on one thread.
    /// Each element is packed once, and tasks are taken dynamically, so a busy core does not
    /// hold up the others.
    ///
    /// # Safety
    /// `lhs` holds every element of m×k and `rhs` of k×n, `dst.len() == m·n`, and the CPU has
    /// AVX512-F/BW, plus AVX512-BF16 for `PAIRS`.
    #[allow(unsafe_code)]
    pub(super) unsafe fn matmul<const PAIRS: bool>(
        m: usize,
        n: usize,
        k: usize,
        lhs: View,
        rhs: View,
        dst: &mut [f32],
        threads: usize,
    ) {
        let src = |v: View, sk, sw, w| Src {
            // SAFETY: `off` is inside `data` (the caller checked the whole view).
            ptr: unsafe { v.data.as_ptr().add(v.off) },
            sk,
            sw,
            k,
            w,
        };
        let (a, b) = (src(lhs, lhs.cs, lhs.rs, m), src(rhs, rhs.rs, rhs.cs, n));
        let by_rows = n <= m;
        let nr = columns_per_tile(n);
        let (pre, own, pre_w, own_w) = if by_rows {
            (b, a, nr, MR)
        } else {
            (a, b, MR, nr)
        };
        let per_block = KS * (1 + PAIRS as usize);
        let (blocks, groups) = (k.div_ceil(per_block), pre.w.div_ceil(GROUP));
        let chunk = (C_TILE_BUDGET / pre.w)
            .min(own.w.div_ceil(4 * threads.max(1)))
            .clamp(own_w, MAX_CHUNK);
        let chunk = chunk / own_w * own_w;
        let tasks = own.w.div_ceil(chunk);
        let padded = pre.w.next_multiple_of(pre_w);
        let mut pre_buf = buffer(k.div_ceil(1 + PAIRS as usize) * padded);
        // The pre-packed operand, per (k-block, group): panel-contiguous within a k-block.
        let mut regions = Vec::with_capacity(blocks * groups);
        let mut rest = aligned(&mut pre_buf);
        for q in 0..blocks {
            let slots = (k - q * per_block)
                .min(per_block)
                .div_ceil(1 + PAIRS as usize);
            for g in 0..groups {
                let width = (padded - g * GROUP).min(GROUP);
                let (region, tail) = rest.split_at_mut(slots * width);
                regions.push(RwLock::new(region));
                rest = tail;
            }
        }
        let job = Job::<PAIRS> {
            pre,
            own,
            pre_w,
            own_w,
            by_rows,
            nr,
            groups,
            chunk,
            regions,
            out: Dst(dst.as_mut_ptr()),
            m,
            n,
        };
        let t = threads.clamp(1, tasks);
        let (next_pre, next_task, barrier) =
            (AtomicUsize::new(0), AtomicUsize::new(0), Barrier::new(t));
        let work = || {
            while let Some(i) = take(&next_pre, job.regions.len()) {
                // SAFETY: per the caller.
                unsafe { job.pack_pre(i) };
            }
            barrier.wait();
            let mut buf =
                buffer(job.own_block_len() * if job.k_inner() { job.blocks() } else { 1 });
            while let Some(j) = take(&next_task, tasks) {
                // SAFETY: per the caller; task j's output is written by this thread alone.
                unsafe { job.task(j, aligned(&mut buf)) };
            }
            recycle(buf);
        };
        if t == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 1..t {
                    s.spawn(work);
                }
                work();
            });
        }
        drop(job);
        recycle(pre_buf);
    }

    /// One call's shared state (see `matmul`).
    struct Job<'a, const PAIRS: bool> {
        pre: Src,
        own: Src,
        pre_w: usize,
        own_w: usize,
        by_rows: bool,
        /// Columns of a micro-tile, 32 or 48.
        nr: usize,
        groups: usize,
        chunk: usize,
        regions: Vec<RwLock<&'a mut [u32]>>,
        out: Dst,
        m: usize,
        n: usize,
    }

    impl<const PAIRS: bool> Job<'_, PAIRS> {
        /// k per slot.
        const PER_SLOT: usize = 1 + PAIRS as usize;

        /// The k-range of k-block q.
        fn k_block(&self, q: usize) -> Range<usize> {
            let per_block = KS * Self::PER_SLOT;
            q * per_block..((q + 1) * per_block).min(self.pre.k)
        }

        /// Packs region i of the pre-packed operand.
        ///
        /// # Safety
        /// As `matmul`.
        #[allow(unsafe_code)]
        unsafe fn pack_pre(&self, i: usize) {
            let (q, g) = (i / self.groups, i % self.groups);
            let w = g * GROUP..((g + 1) * GROUP).min(self.pre.w);
            let mut region = self.regions[i].write().unwrap_or_else(|e| e.into_inner());
            // SAFETY: the block lies inside `pre`; the CPU has the features (per the caller).
            unsafe { pack::<PAIRS>(self.pre.block(self.k_block(q), w), self.pre_w, &mut region) };
        }

        /// Own-operand slots packed per k-block of a task (its buffer holds one, or all when
        /// `k_inner`).
        fn own_block_len(&self) -> usize {
            KS * self.chunk
        }

        /// Whether a task packs its own chunk for all k first and then runs each output tile
        /// through every k-block while it is in cache (else one k-block at a time over all its
        /// tiles, which reloads the partial sums from further away each block).
        fn k_inner(&self) -> bool {
            self.blocks() * self.own_block_len() <= K_INNER_MAX
        }

        fn blocks(&self) -> usize {
            self.pre.k.div_ceil(KS * Self::PER_SLOT)
        }

        /// Computes the output rows (`by_rows`) or columns of task j.
        ///
        /// # Safety
        /// As `matmul`; all regions are packed; no other thread writes task j's output; `buf`
        /// holds `own_block_len()` u32, times `blocks()` when `k_inner()`.
        #[allow(unsafe_code)]
        unsafe fn task(&self, j: usize, buf: &mut [u32]) {
            let range = j * self.chunk..((j + 1) * self.chunk).min(self.own.w);
            let guards: Vec<_> = self
                .regions
                .iter()
                .map(|r| r.read().unwrap_or_else(|e| e.into_inner()))
                .collect();
            let pre: Vec<&[u32]> = guards.iter().map(|g| &g[..]).collect();
            let len = self.own_block_len();
            let pack_own = |q: usize, buf: &mut [u32]| {
                // SAFETY: the block lies inside `own`; the CPU has the features (per the caller).
                unsafe {
                    pack::<PAIRS>(
                        self.own.block(self.k_block(q), range.clone()),
                        self.own_w,
                        buf,
                    )
                }
            };
            let (a_panels, b_panels) = if self.by_rows {
                (range.len().div_ceil(MR), self.n.div_ceil(self.nr))
            } else {
                (self.m.div_ceil(MR), range.len().div_ceil(self.nr))
            };
            // An rhs panel stays in L1 while up to MC rows of lhs panels (in L2) stream through it.
            let a_blocks = (0..a_panels)
                .step_by(MC / MR)
                .map(|i| i..(i + MC / MR).min(a_panels));
            if self.k_inner() {
                for (q, own) in buf.chunks_exact_mut(len).take(self.blocks()).enumerate() {
                    pack_own(q, own);
                }
                for ips in a_blocks {
                    for jp in 0..b_panels {
                        for (q, own) in buf.chunks_exact(len).take(self.blocks()).enumerate() {
                            // SAFETY: per the caller.
                            unsafe { self.tiles(q, &pre, own, &range, ips.clone(), jp) };
                        }
                    }
                }
            } else {
                for q in 0..self.blocks() {
                    pack_own(q, buf);
                    for ips in a_blocks.clone() {
                        for jp in 0..b_panels {
                            // SAFETY: per the caller.
                            unsafe { self.tiles(q, &pre, buf, &range, ips.clone(), jp) };
                        }
                    }
                }
            }
        }

        /// Runs k-block q of the tiles of lhs panels `ips` and rhs panel `jp` (panels of the task's
        /// own chunk `range`, packed in `own`, or of the pre-packed operand `pre`).
        ///
        /// # Safety
        /// As `task`.
        #[allow(unsafe_code)]
        unsafe fn tiles(
            &self,
            q: usize,
            pre: &[&[u32]],
            own: &[u32],
            range: &Range<usize>,
            ips: Range<usize>,
            jp: usize,
        ) {
            let slots = self.k_block(q).len().div_ceil(Self::PER_SLOT);
            let pre_panel = |p: usize| {
                let region = pre[q * self.groups + p * self.pre_w / GROUP];
                &region[p * self.pre_w % GROUP * slots..][..self.pre_w * slots]
            };
            let own_panel = |p: usize| &own[p * self.own_w * slots..][..self.own_w * slots];
            let a_panels = ips.end;
            for ip in ips {
                let (ap, bp, i0, j0) = if self.by_rows {
                    (
                        own_panel(ip),
                        pre_panel(jp),
                        range.start + ip * MR,
                        jp * self.nr,
                    )
                } else {
                    (
                        pre_panel(ip),
                        own_panel(jp),
                        ip * MR,
                        range.start + jp * self.nr,
                    )
                };
                let at = |i: usize| self.out.0.wrapping_add(i * self.n + j0);
                let tile = Tile {
                    ptr: at(i0),
                    ldc: self.n,
                    rows: (self.m - i0).min(MR),
                    cols: (self.n - j0).min(self.nr),
                    next: if ip + 1 < a_panels {
                        at(i0 + MR)
                    } else {
                        std::ptr::null()
                    },
                };
                // SAFETY: the panels hold `slots` slots; the tile is inside the output and in
                // task j's rows (columns) alone; the CPU has the features.
                unsafe {
                    match (PAIRS, self.nr) {
                        (true, 48) => kernel_dot::<3>(ap, bp, tile, q == 0),
                        (true, _) => kernel_dot::<2>(ap, bp, tile, q == 0),
                        (false, 48) => kernel_fma::<3>(ap, bp, tile, q == 0),
                        (false, _) => kernel_fma::<2>(ap, bp, tile, q == 0),
                    }
                }
            }
        }
    }
}
