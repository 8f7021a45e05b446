//! What the technique tests share: host values of autodiff tensors and back.
#![allow(dead_code)]

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_techniques::StepInfo;

pub type A = Autodiff<Flex>;

/// A training forward of the first step.
pub const AT: StepInfo = StepInfo {
    step: 0,
    train: true,
};

pub fn vals<const D: usize>(t: Tensor<A, D>) -> Vec<f32> {
    t.inner().into_data().convert::<f32>().into_vec().unwrap()
}

pub fn tensor(v: &[f32], shape: [usize; 2]) -> Tensor<A, 2> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
}
