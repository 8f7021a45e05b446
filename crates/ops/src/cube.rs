//! burn's cube backends (wgpu, cuda): quantizers that nibble-kernels covers run on the device
//! (the fused group kernel, or the per-tensor amax + cast passes), bit-identical with the host
//! path; every other primitive and spec takes the host path of the trait's defaults.

use burn::tensor::DType;
use burn::tensor::ops::FloatTensor;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use nibble_formats::spec::QuantSpec;
use nibble_kernels::{GroupParams, quantize_group, quantize_tensor, tensor_quantize};

use crate::backend::{LpBackend, host_prim};

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
        let params = f32_data
            .then(|| GroupParams::from_spec(spec, cols, seed))
            .flatten();
        if params.is_none() && !(f32_data && tensor_quantize::covers(spec)) {
            return host_prim::quantize::<Self>(x, spec, seed, want_mask);
        }
        let x = into_contiguous(x);
        let n = shape.num_elements();
        let out = match params {
            Some(p) => quantize_group::<R>(&x.client, &x.handle, n, &p, want_mask),
            None => quantize_tensor::<R>(&x.client, &x.handle, n, spec, want_mask)
                .expect("covered per-tensor spec"),
        };
        let tensor = |h| {
            CubeTensor::new_contiguous(
                x.client.clone(),
                x.device.clone(),
                shape.clone(),
                h,
                DType::F32,
            )
        };
        (tensor(out.values), out.keep.map(tensor))
    }
}
