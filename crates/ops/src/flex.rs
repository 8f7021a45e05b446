//! The Flex (CPU) primitives without the generic host round trip: inputs are read where they lie
//! (a shared tensor is not copied first), a uniquely owned buffer is quantized or rotated in
//! place, and transposed views (the backward's dYᵀ, Xᵀ, Wᵀ) are gathered by a parallel blocked
//! transpose instead of a serial strided copy. Same bits as the generic path.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::DType;
use burn::tensor::ops::{FloatTensor, IntTensor};
use nibble_formats::element::Element;
use nibble_formats::scaled_cast::cast_with_scale;
use nibble_formats::spec::QuantSpec;
use nibble_formats::transpose::transpose_into;
use nibble_formats::{ClipMask, quantize_dequantize_in_place, quantize_dequantize_into};

use crate::backend::{LpBackend, host_prim, unwrap as unwrap2};
use crate::fused::flex as fused;
use crate::host;

pub(crate) fn dims2(t: &FlexTensor) -> [usize; 2] {
    let s = t.layout().shape();
    assert_eq!(s.num_dims(), 2, "low-precision primitives take 2-D tensors");
    [s[0], s[1]]
}

fn tensor(v: Vec<f32>, [r, c]: [usize; 2]) -> FlexTensor {
    fused::tensor(v, &[r, c])
}

/// Whether the tensor is exactly its whole buffer in row-major order.
pub(crate) fn plain(t: &FlexTensor) -> bool {
    let l = t.layout();
    l.is_contiguous()
        && l.start_offset() == 0
        && t.bytes().len() == l.num_elements() * std::mem::size_of::<f32>()
}

/// Whether the tensor is the transpose of a whole row-major buffer (`[r, c]` with strides
/// `[1, r]`).
fn plain_transpose(t: &FlexTensor) -> bool {
    let l = t.layout();
    let [r, _] = dims2(t);
    l.strides() == [1, r as isize]
        && l.start_offset() == 0
        && t.bytes().len() == l.num_elements() * std::mem::size_of::<f32>()
}

/// The tensor's values, row-major, in a buffer the caller owns: its own buffer when unique,
/// else a copy.
fn owned_rows(t: FlexTensor) -> Vec<f32> {
    let [r, c] = dims2(&t);
    if plain_transpose(&t) {
        let mut v = vec![0f32; r * c];
        transpose_into(t.storage::<f32>(), c, r, &mut v);
        return v;
    }
    t.into_data().into_vec::<f32>().expect("f32 tensor data")
}

/// Whether the fast path applies (f32 data; anything else takes the generic host path).
fn f32_tensor(t: &FlexTensor) -> bool {
    t.dtype() == DType::F32
}

impl LpBackend for Flex {
    fn fused_kernels() -> bool {
        true
    }

    fn rms_norm_forward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        fused::rms_norm_forward(x, w, eps)
    }

    fn rms_norm_backward(
        dy: FloatTensor<Self>,
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        r: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        fused::rms_norm_backward(dy, x, w, r)
    }

    fn rope_rotate(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        inverse: bool,
    ) -> FloatTensor<Self> {
        fused::rope_rotate(x, cos, sin, inverse)
    }

    fn adamw_step(
        p: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: &crate::fused::adamw::AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if !fused::adamw_applies([&p, &g, &m, &v]) {
            let (p, m, v) = crate::fused::adamw_composition::<Self>(
                crate::backend::wrap(p),
                crate::backend::wrap(g),
                crate::backend::wrap(m),
                crate::backend::wrap(v),
                step,
            );
            return (unwrap2(p), unwrap2(m), unwrap2(v));
        }
        fused::adamw_step(p, g, m, v, step)
    }

    fn swiglu_forward(g: FloatTensor<Self>, u: FloatTensor<Self>) -> FloatTensor<Self> {
        fused::swiglu_forward(g, u)
    }

    fn fused_bf16_gemm() -> bool {
        true
    }

    fn bf16_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        fused::bf16_matmul(lhs, rhs)
    }

    fn linear_cross_entropy_forward(
        h: FloatTensor<Self>,
        w: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grads: bool,
    ) -> (
        FloatTensor<Self>,
        Option<(FloatTensor<Self>, FloatTensor<Self>)>,
    ) {
        fused::linear_cross_entropy(h, w, targets, grads)
    }

    fn swiglu_backward(
        dy: FloatTensor<Self>,
        g: FloatTensor<Self>,
        u: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        fused::swiglu_backward(dy, g, u)
    }

    fn attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        fused::attention_forward(q, k, v)
    }

    fn attention_backward(
        d_o: FloatTensor<Self>,
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        o: FloatTensor<Self>,
        lse: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        fused::attention_backward(d_o, q, k, v, o, lse)
    }

    fn lp_quantize(
        x: FloatTensor<Self>,
        spec: &QuantSpec,
        seed: u64,
        want_mask: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        if !f32_tensor(&x) {
            return host_prim::quantize::<Self>(x, spec, seed, want_mask);
        }
        let dims = dims2(&x);
        let mut clip = ClipMask::new(dims[0], dims[1]);
        let values = if plain(&x) && !x.is_unique() {
            let mut out = vec![0f32; dims[0] * dims[1]];
            quantize_dequantize_into(spec, x.storage::<f32>(), &dims, seed, &mut out, &mut clip)
                .map(|()| out)
        } else {
            let mut v = owned_rows(x);
            quantize_dequantize_in_place(spec, &mut v, &dims, seed, &mut clip).map(|()| v)
        }
        .unwrap_or_else(|e| panic!("quantize {dims:?} with {spec:?}: {e}"));
        let keep = want_mask.then(|| tensor(host::keep_of(&clip), dims));
        (tensor(values, dims), keep)
    }

    fn lp_cast_scaled(
        x: FloatTensor<Self>,
        element: Element,
        scale: f32,
    ) -> (FloatTensor<Self>, f32) {
        if !f32_tensor(&x) {
            return host_prim::cast_scaled::<Self>(x, element, scale);
        }
        let dims = dims2(&x);
        let (v, amax) = if plain(&x) {
            cast_with_scale(x.storage::<f32>(), element, scale)
        } else {
            cast_with_scale(&owned_rows(x), element, scale)
        };
        (tensor(v, dims), amax)
    }

    fn lp_hadamard(
        x: FloatTensor<Self>,
        g: usize,
        signs: Option<&[f32]>,
        inverse: bool,
        signs_after: bool,
    ) -> FloatTensor<Self> {
        if !f32_tensor(&x) {
            return host_prim::hadamard::<Self>(x, g, signs, inverse, signs_after);
        }
        let dims = dims2(&x);
        let mut v = owned_rows(x);
        host::hadamard_rows(&mut v, dims[1], g, signs, inverse, signs_after);
        tensor(v, dims)
    }

    fn lp_unrotate(
        d: FloatTensor<Self>,
        keep: Option<FloatTensor<Self>>,
        g: Option<usize>,
    ) -> FloatTensor<Self> {
        if !f32_tensor(&d) || keep.as_ref().is_some_and(|k| !f32_tensor(k) || !plain(k)) {
            return host_prim::unrotate::<Self>(d, keep, g);
        }
        let dims = dims2(&d);
        let mut v = owned_rows(d);
        let k = keep.as_ref().map(|k| k.storage::<f32>());
        host::unrotate_rows(&mut v, k, dims[1], g);
        tensor(v, dims)
    }
}
