//! N:M magnitude mask on the device (`nibble_formats::nm_mask`): one unit per element ranks it
//! within its group of M by (bits of |w|, index) and keeps it iff its rank is at least M − N.
//! Counting instead of sorting; the CPU sorts, so the two are independent computations of the
//! same order.

use cubecl::prelude::*;
use cubecl::server::Handle;
use cubecl::{calculate_cube_count_elemwise, frontend::ArrayArg};

#[cube(launch)]
fn nm_mask_kernel(w: &Array<f32>, mask: &mut Array<f32>, len: u32, n: u32, m: u32) {
    let i = ABSOLUTE_POS as u32;
    if i >= len {
        terminate!();
    }
    let g0 = (i / m) * m;
    let key = u32::reinterpret(w[i as usize]) & 0x7fff_ffffu32;
    let mut below = 0u32;
    for j in g0..g0 + m {
        let k = u32::reinterpret(w[j as usize]) & 0x7fff_ffffu32;
        if k < key || (k == key && j < i) {
            below += 1u32;
        }
    }
    let mut keep = 0.0f32;
    if below >= m - n {
        keep = 1.0f32;
    }
    mask[i as usize] = keep;
}

/// The keep mask of `len` contiguous f32 weights with rows of `cols`; errors as
/// `nibble_formats::nm_mask::check`.
pub fn nm_mask<R: Runtime>(
    client: &ComputeClient<R>,
    w: &Handle,
    len: usize,
    cols: usize,
    n: usize,
    m: usize,
) -> nibble_formats::Result<Handle> {
    nibble_formats::nm_mask::check(n, m, cols)?;
    assert!(len < (1usize << 32), "tensor too large for 32-bit indexing");
    let out = client.empty(len.max(1) * 4);
    if len == 0 {
        return Ok(out);
    }
    let dim = CubeDim::new_1d(64);
    // SAFETY: both handles hold at least `len` f32 values; the kernel bounds its index by it.
    #[allow(unsafe_code)]
    let (a_w, a_out) = unsafe {
        (
            ArrayArg::from_raw_parts(w.clone(), len),
            ArrayArg::from_raw_parts(out.clone(), len),
        )
    };
    nm_mask_kernel::launch::<R>(
        client,
        calculate_cube_count_elemwise(client, len, dim),
        dim,
        a_w,
        a_out,
        len as u32,
        n as u32,
        m as u32,
    );
    Ok(out)
}
