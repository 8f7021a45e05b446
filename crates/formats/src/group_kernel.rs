//! Fused fast path for 1×N blocks along rows (N = 16, 32, 64): each block is loaded once into a
//! fixed-size array, transformed, reduced, scaled, rounded, dequantized and stored, with its clip
//! bits written as one word. Fixed sizes let the compiler unroll and vectorize every step. The
//! arithmetic is exactly that of the generic path (same operations in the same order).

use crate::block_scale::BlockScale;
use crate::grid::Grid;
use crate::hadamard;
use crate::philox::UniformCursor;
use crate::spec::ScaleRule;
use crate::stats::Stats;
use crate::task::Ctx;

/// Whether the fused path applies to a row layout: 1×N groups with N in {16, 32, 64}, whole
/// blocks, and a Hadamard (if any) of the block's own size.
pub(crate) fn fused_size(group: usize, cols: usize, transform: Option<usize>) -> Option<usize> {
    (matches!(group, 16 | 32 | 64)
        && cols.is_multiple_of(group)
        && transform.is_none_or(|h| h == group))
    .then_some(group)
}

/// Blocks whose scales are computed together before any of them is rounded.
const BATCH: usize = 32;

/// Process one row. `src` is the input row, or None when `row` already holds it; `transform`
/// says whether the input still needs the spec's Hadamard (false once a pre-pass applied it).
///
/// Two phases per batch of blocks: first every block's statistics and scale (independent
/// dependency chains that the CPU overlaps), then the rounding of each block with its scale.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn row<G: Grid, const N: usize>(
    ctx: &Ctx<G>,
    src: Option<&[f32]>,
    transform: bool,
    row: &mut [f32],
    mrow: &mut [u64],
    mut codes: Option<&mut [u8]>,
    mut scales: Option<&mut [BlockScale]>,
    mut cursor: Option<&mut UniformCursor>,
    base: u64,
) {
    let quest = matches!(ctx.spec.scale, ScaleRule::Quest { .. });
    if let Some(s) = src {
        row.copy_from_slice(s);
    }
    if transform && ctx.spec.transform.size().is_some() {
        let signs = ctx.signs.as_deref();
        for blk in row.chunks_exact_mut(N) {
            hadamard::forward_fixed::<N>(blk.try_into().expect("N"), signs);
        }
    }
    let nblk = row.len() / N;
    let mut bss = [BlockScale::IDENTITY; BATCH];
    for b0 in (0..nblk).step_by(BATCH) {
        let nb = BATCH.min(nblk - b0);
        for (k, bs) in bss[..nb].iter_mut().enumerate() {
            let c0 = (b0 + k) * N;
            let st = Stats::of(&row[c0..c0 + N], ctx.needs);
            *bs = BlockScale::compute(ctx.spec.scale, ctx.max_elem, ctx.emax, &st, &ctx.tensor);
        }
        if let Some(s) = scales.as_deref_mut() {
            s[b0..b0 + nb].copy_from_slice(&bss[..nb]);
        }
        for (k, bs) in bss[..nb].iter().enumerate() {
            let c0 = (b0 + k) * N;
            let x: &mut [f32; N] = (&mut row[c0..c0 + N]).try_into().expect("N");
            let bits = if bs.nan {
                *x = [f32::NAN; N];
                if let Some(c) = codes.as_deref_mut() {
                    c[c0..c0 + N].fill(ctx.grid.code(f32::NAN));
                }
                u64::MAX >> (64 - N)
            } else {
                let bits = scale_and_round::<G, N>(
                    &ctx.grid,
                    bs,
                    x,
                    quest,
                    cursor.as_deref_mut(),
                    base + c0 as u64,
                );
                if let Some(c) = codes.as_deref_mut() {
                    for (c, &q) in c[c0..c0 + N].iter_mut().zip(x.iter()) {
                        *c = ctx.grid.code(q);
                    }
                }
                for v in x.iter_mut() {
                    *v = ((*v - bs.off) * bs.dec) * bs.post;
                }
                bits
            };
            mrow[c0 / 64] |= bits << (c0 % 64);
        }
    }
}

/// `y = (v·enc)·pre + off`, clip bits, rounding onto the grid (in place). Returns the clip bits.
#[inline(always)]
fn scale_and_round<G: Grid, const N: usize>(
    grid: &G,
    bs: &BlockScale,
    x: &mut [f32; N],
    quest: bool,
    cursor: Option<&mut UniformCursor>,
    base: u64,
) -> u64 {
    let (lo, hi) = (grid.lo(), grid.hi());
    let (has_pre, has_off) = (bs.pre != 1.0, bs.off != 0.0);
    for v in x.iter_mut() {
        let y = *v * bs.enc;
        let y = if has_pre { y * bs.pre } else { y };
        *v = if has_off { y + bs.off } else { y };
    }
    // Non-short-circuit `|` keeps this a vector compare (no branches).
    let mut clip = [0u8; N];
    for (c, &y) in clip.iter_mut().zip(x.iter()) {
        *c = if quest {
            (y >= hi) | (y <= lo)
        } else {
            (y > hi) | (y < lo)
        } as u8;
    }
    // Pack eight 0/1 bytes per multiply: byte i lands on bit 56 + i, with no carries.
    let mut bits = 0u64;
    for (k, c8) in clip.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(c8.try_into().expect("8 bytes"));
        bits |= (w.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
    }
    match cursor {
        None => {
            for v in x.iter_mut() {
                *v = grid.rne(*v);
            }
        }
        Some(cur) => {
            for (i, v) in x.iter_mut().enumerate() {
                *v = grid.sr(*v, cur.at(base + i as u64));
            }
        }
    }
    bits
}
