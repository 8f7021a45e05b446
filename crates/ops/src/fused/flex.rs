//! The fused kernels on Flex tensors: read where they lie when contiguous (else one copy), run
//! the slice kernels, wrap the results.

use std::borrow::Cow;

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{Bytes, DType, Shape};

use super::adamw::{self, AdamWStep};
use super::attention::{self, Dims};
use super::bf16_gemm::{self, View};
use super::cross_entropy::{self, CeDims};
use super::{rms_norm, rope, swiglu};
use crate::flex::dims2;

fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    assert_eq!(t.dtype(), DType::F32, "the fused kernels take f32 tensors");
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .expect("contiguous")
                .to_vec(),
        ),
    }
}

/// A contiguous f32 tensor of `shape` holding `v`.
pub(crate) fn tensor(v: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(v),
        Layout::contiguous(Shape::from(shape.to_vec())),
        DType::F32,
    )
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    let s = t.layout().shape();
    (0..s.num_dims()).map(|i| s[i]).collect()
}

pub(crate) fn rms_norm_forward(x: FlexTensor, w: FlexTensor, eps: f64) -> (FlexTensor, FlexTensor) {
    let shape = dims(&x);
    let (y, r) = rms_norm::forward(&values(&x), &values(&w), eps);
    let n = r.len();
    (tensor(y, &shape), tensor(r, &[n, 1]))
}

pub(crate) fn rms_norm_backward(
    dy: FlexTensor,
    x: FlexTensor,
    w: FlexTensor,
    r: FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let (shape, wshape) = (dims(&x), dims(&w));
    let (dx, dw) = rms_norm::backward(&values(&dy), &values(&x), &values(&w), &values(&r));
    (tensor(dx, &shape), tensor(dw, &wshape))
}

fn attention_dims(q: &FlexTensor, k: &FlexTensor) -> Dims {
    let (qd, kd) = (dims(q), dims(k));
    assert!(
        qd.len() == 4 && kd.len() == 4,
        "attention takes [b, t, heads, hd] tensors"
    );
    assert!(
        kd[2] > 0 && qd[2] % kd[2] == 0 && qd[0] == kd[0] && qd[1] == kd[1] && qd[3] == kd[3],
        "attention shapes q {qd:?}, k {kd:?}"
    );
    Dims {
        b: qd[0],
        t: qd[1],
        h: qd[2],
        kv: kd[2],
        hd: qd[3],
    }
}

pub(crate) fn attention_forward(
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let d = attention_dims(&q, &k);
    let (o, lse) = attention::forward(&values(&q), &values(&k), &values(&v), d);
    (
        tensor(o, &[d.b, d.t, d.h, d.hd]),
        tensor(lse, &[d.b, d.h, d.t]),
    )
}

pub(crate) fn attention_backward(
    d_o: FlexTensor,
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    o: FlexTensor,
    lse: FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let d = attention_dims(&q, &k);
    let (dq, dk, dv) = attention::backward(
        &values(&d_o),
        &values(&q),
        &values(&k),
        &values(&v),
        &values(&o),
        &values(&lse),
        d,
    );
    (
        tensor(dq, &[d.b, d.t, d.h, d.hd]),
        tensor(dk, &[d.b, d.t, d.kv, d.hd]),
        tensor(dv, &[d.b, d.t, d.kv, d.hd]),
    )
}

pub(crate) fn rope_rotate(
    x: FlexTensor,
    cos: FlexTensor,
    sin: FlexTensor,
    inverse: bool,
) -> FlexTensor {
    let shape = dims(&x);
    assert_eq!(shape.len(), 4, "RoPE takes [b, t, heads, hd]");
    let (t, n, hd) = (shape[1], shape[2], shape[3]);
    let y = rope::apply(&values(&x), &values(&cos), &values(&sin), t, n, hd, inverse);
    tensor(y, &shape)
}

pub(crate) fn swiglu_forward(g: FlexTensor, u: FlexTensor) -> FlexTensor {
    let shape = dims(&g);
    assert_eq!(shape, dims(&u), "SwiGLU operands of one shape");
    tensor(swiglu::forward(&values(&g), &values(&u)), &shape)
}

pub(crate) fn swiglu_backward(
    dy: FlexTensor,
    g: FlexTensor,
    u: FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let shape = dims(&g);
    let (dg, du) = swiglu::backward(&values(&dy), &values(&g), &values(&u));
    (tensor(dg, &shape), tensor(du, &shape))
}

/// A 2-D f32 tensor whose strides the strided GEMMs take as they are (non-negative), else a
/// contiguous copy.
fn strided(t: FlexTensor) -> FlexTensor {
    assert_eq!(t.dtype(), DType::F32, "the fused kernels take f32 tensors");
    assert_eq!(dims(&t).len(), 2, "a matrix");
    if t.layout().strides().iter().all(|&s| s >= 0) {
        t
    } else {
        t.to_contiguous()
    }
}

fn view(t: &FlexTensor) -> View<'_> {
    let l = t.layout();
    View {
        data: t.storage::<f32>(),
        off: l.start_offset(),
        rs: l.strides()[0] as usize,
        cs: l.strides()[1] as usize,
    }
}

pub(crate) fn bf16_matmul(lhs: FlexTensor, rhs: FlexTensor) -> FlexTensor {
    let (a, b) = (strided(lhs), strided(rhs));
    let ([m, k], [k2, n]) = (dims2(&a), dims2(&b));
    assert_eq!(k, k2, "bf16 GEMM inner dimensions");
    let mut dst = vec![0f32; m * n];
    bf16_gemm::bf16_matmul(
        m,
        n,
        k,
        view(&a),
        view(&b),
        &mut dst,
        rayon::current_num_threads(),
    );
    tensor(dst, &[m, n])
}

/// Token ids (i32 or i64) as indices.
fn indices(t: &FlexTensor) -> Vec<usize> {
    let t = t.to_contiguous();
    let ix = |v: i64| usize::try_from(v).expect("a negative target token id");
    match t.dtype() {
        DType::I64 => t
            .as_slice::<i64>()
            .expect("contiguous")
            .iter()
            .map(|&v| ix(v))
            .collect(),
        DType::I32 => t
            .as_slice::<i32>()
            .expect("contiguous")
            .iter()
            .map(|&v| ix(v as i64))
            .collect(),
        other => panic!("target token ids as {other:?}"),
    }
}

#[allow(clippy::type_complexity)]
pub(crate) fn linear_cross_entropy(
    h: FlexTensor,
    w: FlexTensor,
    targets: FlexTensor,
    grads: bool,
) -> (FlexTensor, Option<(FlexTensor, FlexTensor)>) {
    let (hd, wd) = (dims(&h), dims(&w));
    assert!(
        hd.len() == 2 && wd.len() == 2 && hd[1] == wd[1],
        "linear cross-entropy shapes h {hd:?}, w {wd:?}"
    );
    let dm = CeDims {
        n: hd[0],
        d: hd[1],
        v: wd[0],
    };
    let out = cross_entropy::linear_cross_entropy(
        &values(&h),
        &values(&w),
        &indices(&targets),
        dm,
        grads,
    );
    let g = out.grads.map(|(dh, dw)| (tensor(dh, &hd), tensor(dw, &wd)));
    (tensor(vec![out.loss], &[1]), g)
}

/// `t` as a uniquely owned, whole-buffer f32 tensor (itself when it already is one).
fn owned(t: FlexTensor) -> FlexTensor {
    if t.is_unique() && crate::flex::plain(&t) {
        t
    } else {
        let shape = dims(&t);
        tensor(values(&t).into_owned(), &shape)
    }
}

/// Whether AdamW's fused pass takes these tensors (all f32 of one element count).
pub(crate) fn adamw_applies(ts: [&FlexTensor; 4]) -> bool {
    let n = ts[0].layout().num_elements();
    ts.iter()
        .all(|t| t.dtype() == DType::F32 && t.layout().num_elements() == n)
}

pub(crate) fn adamw_step(
    p: FlexTensor,
    g: FlexTensor,
    m: FlexTensor,
    v: FlexTensor,
    step: &AdamWStep,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (mut p, mut m, mut v) = (owned(p), owned(m), owned(v));
    adamw::update(
        p.storage_mut::<f32>(),
        m.storage_mut::<f32>(),
        v.storage_mut::<f32>(),
        &values(&g),
        step,
    );
    (p, m, v)
}
