//! burn's cube backends (wgpu, cuda): quantizers that nibble-kernels covers run on the device
//! (the fused group kernel, the per-tensor amax + cast passes, or the two-pass block quantizer
//! for NVFP4, tiles and absmean), bit-identical with the host path; other specs take the host
//! path of the trait's defaults.

use burn::tensor::DType;
use burn::tensor::ops::FloatTensor;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use nibble_formats::spec::QuantSpec;
use nibble_kernels::{
    GroupParams, block_quantize, quantize_blocks, quantize_group, quantize_tensor, tensor_quantize,
};

use crate::backend::{LpBackend, host_prim};

/// Which device quantizer covers a spec.
enum Path {
    Group(GroupParams),
    Tensor,
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
            None if f32_data && tensor_quantize::covers(spec) => Path::Tensor,
            None if f32_data && block_quantize::mode(spec, cols).is_some() => Path::Blocks,
            None => return host_prim::quantize::<Self>(x, spec, seed, want_mask),
        };
        let x = into_contiguous(x);
        let n = shape.num_elements();
        let out = match path {
            Path::Group(p) => quantize_group::<R>(&x.client, &x.handle, n, &p, want_mask),
            Path::Tensor => quantize_tensor::<R>(&x.client, &x.handle, n, spec, want_mask)
                .expect("covered per-tensor spec"),
            Path::Blocks => {
                quantize_blocks::<R>(&x.client, &x.handle, rows, cols, spec, seed, want_mask)
                    .expect("covered block spec")
            }
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
