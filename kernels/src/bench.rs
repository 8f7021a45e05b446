//! Bandwidth of each kernel against a device-to-device copy of the same buffer, measured in one
//! run (`nibble bench kernels --device cuda|wgpu`, or `cargo bench -p nibble-kernels`).
//!
//! Every case reads the f32 input once and writes the f32 output (plus the keep mask where the
//! training step asks for one); its effective bandwidth counts those bytes, and its ratio is
//! that bandwidth over the copy's (the goal: ≥ 0.7 on a GPU). Times are per call,
//! averaged over `iters` calls after two warm-up calls, the device synchronized before and
//! after; two-pass quantizers include their host steps (partial-amax readback, scale table).

use std::time::Instant;

use cubecl::future::block_on;
use cubecl::prelude::*;
use cubecl::server::Handle;
use cubecl::{calculate_cube_count_elemwise, frontend::ArrayArg};
use nibble_formats::Element;
use nibble_formats::spec::{Block, ExpRounding, QuantSpec, Rounding, ScaleRule, Signs, Transform};

use crate::{GroupParams, block_quantize, cast_scaled, nm_mask, quantize_group, rotate};

#[cube(launch)]
fn copy_kernel(input: &Array<f32>, out: &mut Array<f32>) {
    let i = ABSOLUTE_POS;
    if i < input.len() {
        out[i] = input[i];
    }
}

/// One measured case.
#[derive(Clone, Debug)]
pub struct Row {
    pub name: &'static str,
    pub ms: f64,
    pub gbps: f64,
    /// Effective bandwidth over the copy's.
    pub vs_copy: f64,
}

fn time<R: Runtime>(client: &ComputeClient<R>, iters: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    block_on(client.sync()).expect("device sync");
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    block_on(client.sync()).expect("device sync");
    t.elapsed().as_secs_f64() / iters as f64
}

/// Measure every kernel on `mib` MiB of f32 (rows of 4,096) on `client`'s device.
pub fn run<R: Runtime>(client: &ComputeClient<R>, mib: usize, iters: usize) -> Vec<Row> {
    let cols = 4096;
    let rows = (mib << 20) / 4 / cols;
    let len = rows * cols;
    let data: Vec<f32> = (0..len)
        .map(|i| {
            let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            ((h >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * if i % 97 == 0 { 40.0 } else { 1.0 }
        })
        .collect();
    let input = client.create_from_slice(f32::as_bytes(&data));
    let bytes = (len * 4) as f64;
    let dim = CubeDim::new_1d(256);
    let copy = time(client, iters, || {
        let out = client.empty(len * 4);
        // SAFETY: both handles hold `len` f32 values.
        #[allow(unsafe_code)]
        let (a, b) = unsafe {
            (
                ArrayArg::from_raw_parts(input.clone(), len),
                ArrayArg::from_raw_parts(out, len),
            )
        };
        copy_kernel::launch::<R>(
            client,
            calculate_cube_count_elemwise(client, len, dim),
            dim,
            a,
            b,
        );
    });
    let copy_gbps = 2.0 * bytes / copy / 1e9;
    let mut rows_out = vec![Row {
        name: "device copy",
        ms: copy * 1e3,
        gbps: copy_gbps,
        vs_copy: 1.0,
    }];
    let mut add = |name: &'static str, passes: f64, t: f64| {
        let gbps = passes * bytes / t / 1e9;
        rows_out.push(Row {
            name,
            ms: t * 1e3,
            gbps,
            vs_copy: gbps / copy_gbps,
        });
    };
    let group = |spec: QuantSpec, keep: bool| {
        let p = GroupParams::from_spec(&spec, cols, 7).expect("group spec");
        time(client, iters, || {
            let _ = quantize_group::<R>(client, &input, len, &p, keep);
        })
    };
    add(
        "QuEST MXFP4 + H32 (quartet fwd, with mask)",
        3.0,
        group(QuantSpec::quartet_forward(ExpRounding::Nearest), true),
    );
    add(
        "3/4-rule MXFP4 + RHT32 SR (quartet bwd)",
        2.0,
        group(
            QuantSpec {
                transform: Transform::RandomizedHadamard {
                    g: 32,
                    signs: Signs::Key(3),
                },
                ..QuantSpec::quartet_backward(Rounding::Stochastic)
            },
            false,
        ),
    );
    add(
        "MXFP8 E4M3 RCEIL",
        2.0,
        group(QuantSpec::mx(Element::E4M3, ScaleRule::RCeil), false),
    );
    let blocks = |spec: QuantSpec| {
        time(client, iters, || {
            let _ =
                block_quantize::quantize_blocks::<R>(client, &input, rows, cols, &spec, 7, false);
        })
    };
    add(
        "NVFP4 1×16 SR (two-level)",
        2.0,
        blocks(QuantSpec::nvfp4(
            Block::Group(16),
            Rounding::Stochastic,
            Transform::None,
        )),
    );
    add(
        "NVFP4 16×16 tiles",
        2.0,
        blocks(QuantSpec::nvfp4(
            Block::Tile(16),
            Rounding::Rne,
            Transform::None,
        )),
    );
    let fp8_tile = QuantSpec {
        element: Element::E4M3,
        block: Block::Tile(128),
        scale: ScaleRule::Absmax { pow2: true },
        rounding: Rounding::Rne,
        transform: Transform::None,
    };
    add("FP8 block 128×128 tiles", 2.0, blocks(fp8_tile));
    add(
        "ternary absmean per tensor",
        2.0,
        blocks(QuantSpec {
            element: Element::Ternary,
            block: Block::Tensor,
            scale: ScaleRule::Absmean,
            rounding: Rounding::Rne,
            transform: Transform::None,
        }),
    );
    let fp8 = QuantSpec::fp8_tensor(Element::E4M3);
    add(
        "FP8 E4M3 current scaling (per tensor)",
        2.0,
        time(client, iters, || {
            let _ =
                block_quantize::quantize_blocks::<R>(client, &input, rows, cols, &fp8, 7, false);
        }),
    );
    add(
        "FP8 E4M3 delayed-scaling cast",
        2.0,
        time(client, iters, || {
            let _ = cast_scaled::cast_scaled::<R>(client, &input, len, Element::E4M3, 17.0);
        }),
    );
    let signs = nibble_formats::hadamard::random_signs(5, 32);
    add(
        "Hadamard 32 with signs",
        2.0,
        time(client, iters, || {
            let _ = rotate::rotate::<R>(
                client,
                &input,
                len,
                32,
                None,
                Some((&signs, rotate::SignSide::Before)),
            );
        }),
    );
    add(
        "2:4 magnitude mask",
        2.0,
        time(client, iters, || {
            let _: Handle = nm_mask::nm_mask::<R>(client, &input, len, cols, 2, 4).expect("2:4");
        }),
    );
    rows_out
}

/// The rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from("| kernel | ms per call | GB/s | of copy |\n|---|---|---|---|\n");
    for r in rows {
        s += &format!(
            "| {} | {:.3} | {:.1} | {:.2} |\n",
            r.name, r.ms, r.gbps, r.vs_copy
        );
    }
    s
}
