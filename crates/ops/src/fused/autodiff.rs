//! `Autodiff<B>` nodes of the fused ops: the forward runs B's fused kernel and keeps what the
//! backward kernel needs (RMSNorm: x, w and the row factors; attention: q, k, v, the output and
//! the rows' log-sum-exp, nothing T×T; the fused cross-entropy: the gradients its forward
//! computed).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn::tensor::ops::FloatTensor;

use crate::backend::LpBackend;

#[derive(Debug)]
pub(crate) struct RmsNormBackward;

impl<B: LpBackend> Backward<B, 2> for RmsNormBackward {
    /// x, w, the row factors r.
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (x, w, r) = ops.state;
        let (dx, dw) = B::rms_norm_backward(dy, x, w, r);
        let [px, pw] = ops.parents;
        if let Some(node) = px {
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = pw {
            grads.register::<B>(node.id, dw);
        }
    }
}

/// q, k, v, the output and the log-sum-exp of each row.
pub(crate) type AttentionSaved<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
);

#[derive(Debug)]
pub(crate) struct AttentionBackward;

impl<B: LpBackend> Backward<B, 3> for AttentionBackward {
    type State = AttentionSaved<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d_o = grads.consume::<B>(&ops.node);
        let (q, k, v, o, lse) = ops.state;
        let (dq, dk, dv) = B::attention_backward(d_o, q, k, v, o, lse);
        for (parent, g) in ops.parents.into_iter().zip([dq, dk, dv]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct RopeBackward;

impl<B: LpBackend> Backward<B, 1> for RopeBackward {
    /// The cos and sin tables (constants).
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (cos, sin) = ops.state;
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::rope_rotate(dy, cos, sin, true));
        }
    }
}

#[derive(Debug)]
pub(crate) struct SwigluBackward;

impl<B: LpBackend> Backward<B, 2> for SwigluBackward {
    /// g, u.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (g, u) = ops.state;
        let (dg, du) = B::swiglu_backward(dy, g, u);
        for (parent, grad) in ops.parents.into_iter().zip([dg, du]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct LinearCrossEntropyBackward;

impl<B: LpBackend> Backward<B, 2> for LinearCrossEntropyBackward {
    /// The gradients of the mean loss: dh, dw.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g =
            Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)))
                .reshape([1, 1]);
        let (dh, dw) = ops.state;
        for (parent, d) in ops.parents.into_iter().zip([dh, dw]) {
            if let Some(node) = parent {
                let d = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(d)) * g.clone();
                grads.register::<B>(node.id, d.into_primitive().tensor());
            }
        }
    }
}
