//! burn's cube backends (wgpu, cuda): quantizers that nibble-kernels covers run on the device
//! (the fused group kernel, or the two-pass block quantizer for per-tensor scales, NVFP4, tiles
//! and absmean), bit-identical with the host path; other specs take the host path of the
//! trait's defaults.

use burn::tensor::DType;
use burn::tensor::ops::FloatTensor;
use burn::tensor::ops::FloatTensorOps;
use burn_cubecl::cubecl::server::Handle;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use nibble_formats::element::Element;
use nibble_formats::spec::QuantSpec;
use nibble_kernels::rotate::{self, SignSide};
use nibble_kernels::{GroupParams, block_quantize, quantize_blocks, quantize_group};
use nibble_kernels::{cast_scaled, nm_mask};

use crate::backend::{LpBackend, host_prim};
use crate::fallbacks::{Primitive, record};

/// Which device quantizer covers a spec.
enum Path {
    Group(GroupParams),
    Blocks,
}

impl<R, F, I, BT> LpBackend for CubeBackend<R, F, I, BT>
where
    R: CubeRuntime,
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn lp_quantize(
        x: FloatTensor<Self>,
        spec: &QuantSpec,
        seed: u64,
        want_mask: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        let shape = x.meta.shape().clone();
        let cols = shape.as_slice().last().copied().unwrap_or(1);
        let f32_data = x.dtype == DType::F32;
        let rows = shape.num_elements() / cols.max(1);
        let params = f32_data
            .then(|| GroupParams::from_spec(spec, cols, seed))
            .flatten();
        let path = match params {
            Some(p) => Path::Group(p),
            None if f32_data && block_quantize::mode(spec, cols).is_some() => Path::Blocks,
            None => {
                record(Primitive::Quantize);
                return host_prim::quantize::<Self>(x, spec, seed, want_mask);
            }
        };
        let x = into_contiguous(x);
        let n = shape.num_elements();
        let out = match path {
            Path::Group(p) => quantize_group::<R>(&x.client, &x.handle, n, &p, want_mask),
            // None only if a scale table would be unexpectedly large: the host path then.
            Path::Blocks => {
                match quantize_blocks::<R>(&x.client, &x.handle, rows, cols, spec, seed, want_mask)
                {
                    Some(out) => out,
                    None => {
                        record(Primitive::Quantize);
                        return host_prim::quantize::<Self>(x, spec, seed, want_mask);
                    }
                }
            }
        };
        let keep = out.keep.map(|h| like(&x, h));
        (like(&x, out.values), keep)
    }

    fn lp_hadamard(
        x: FloatTensor<Self>,
        g: usize,
        signs: Option<&[f32]>,
        inverse: bool,
        signs_after: bool,
    ) -> FloatTensor<Self> {
        let cols = last_dim(&x);
        if x.dtype != DType::F32 || !rotate::covers(g, cols) {
            record(Primitive::Hadamard);
            return host_prim::hadamard::<Self>(x, g, signs, inverse, signs_after);
        }
        // x·diag(s)·H forward; its inverse x·H·diag(s); with signs after H the other way round.
        let side = if inverse == signs_after {
            SignSide::Before
        } else {
            SignSide::After
        };
        let x = into_contiguous(x);
        let n = x.meta.shape().num_elements();
        let h = rotate::rotate::<R>(&x.client, &x.handle, n, g, None, signs.map(|s| (s, side)));
        like(&x, h)
    }

    fn lp_unrotate(
        d: FloatTensor<Self>,
        keep: Option<FloatTensor<Self>>,
        g: Option<usize>,
    ) -> FloatTensor<Self> {
        let cols = last_dim(&d);
        let covered = d.dtype == DType::F32
            && keep.as_ref().is_none_or(|k| k.dtype == DType::F32)
            && g.is_some_and(|g| rotate::covers(g, cols));
        match (g, keep) {
            (Some(g), keep) if covered => {
                let d = into_contiguous(d);
                let keep = keep.map(into_contiguous);
                let n = d.meta.shape().num_elements();
                let h = rotate::rotate::<R>(
                    &d.client,
                    &d.handle,
                    n,
                    g,
                    keep.as_ref().map(|k| &k.handle),
                    None,
                );
                like(&d, h)
            }
            // A mask alone is one element-wise multiply (x·1 and x·0 are exact everywhere).
            (None, Some(k)) => <Self as FloatTensorOps<Self>>::float_mul(d, k),
            (None, None) => d,
            (g, keep) => {
                record(Primitive::Unrotate);
                host_prim::unrotate::<Self>(d, keep, g)
            }
        }
    }

    fn lp_cast_scaled(
        x: FloatTensor<Self>,
        element: Element,
        scale: f32,
    ) -> (FloatTensor<Self>, f32) {
        if x.dtype != DType::F32 || !cast_scaled::covers(element) {
            record(Primitive::CastScaled);
            return host_prim::cast_scaled::<Self>(x, element, scale);
        }
        let x = into_contiguous(x);
        let n = x.meta.shape().num_elements();
        let (h, amax) = cast_scaled::cast_scaled::<R>(&x.client, &x.handle, n, element, scale);
        (like(&x, h), amax)
    }

    fn lp_nm_mask(w: FloatTensor<Self>, n: usize, m: usize) -> FloatTensor<Self> {
        if w.dtype != DType::F32 {
            record(Primitive::NmMask);
            return host_prim::nm_mask::<Self>(w, n, m);
        }
        let cols = last_dim(&w);
        let w = into_contiguous(w);
        let len = w.meta.shape().num_elements();
        let h = nm_mask::nm_mask::<R>(&w.client, &w.handle, len, cols, n, m).unwrap_or_else(|e| {
            panic!("N:M mask of a {:?} weight: {e}", w.meta.shape().as_slice())
        });
        like(&w, h)
    }
}

/// Length of the last axis (1 for a scalar).
fn last_dim<R: CubeRuntime>(t: &CubeTensor<R>) -> usize {
    t.meta.shape().as_slice().last().copied().unwrap_or(1)
}

/// A contiguous f32 tensor of `t`'s shape on `t`'s device holding `handle`.
fn like<R: CubeRuntime>(t: &CubeTensor<R>, handle: Handle) -> CubeTensor<R> {
    CubeTensor::new_contiguous(
        t.client.clone(),
        t.device.clone(),
        t.meta.shape().clone(),
        handle,
        DType::F32,
    )
}
