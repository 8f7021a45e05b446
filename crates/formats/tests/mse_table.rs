//! Relative MSE on Gaussian blocks: the table of spec §7.1(6), protocol of §7.2 (2^21 samples,
//! block σ = 2^U, U ~ U[0,1), MSE normalised by σ²), tolerance ±3% relative.

mod common;

use nibble_formats::minifloat::E2M1;
use nibble_formats::{
    Block, Element, ExpRounding, QuantSpec, Rounding, ScaleRule, Transform, quantize_dequantize,
};

const N: usize = 1 << 21;

fn mse(spec: QuantSpec, g: usize) -> f64 {
    let (data, sig) = common::gaussian_blocks(N, g, 20260101);
    let out = quantize_dequantize(&spec, &data, &[N / g, g], 42).unwrap();
    common::relative_mse(&data, &out.values, &sig, g)
}

fn assert_close(name: &str, got: f64, want: f64) {
    let rel = (got - want).abs() / want;
    assert!(
        rel <= 0.03,
        "{name}: relative MSE {got:.5}, spec {want:.5} ({:.1}% off)",
        rel * 100.0
    );
}

fn mxfp4(scale: ScaleRule, rounding: Rounding) -> QuantSpec {
    QuantSpec {
        rounding,
        ..QuantSpec::mx(Element::E2M1, scale)
    }
}

#[test]
fn mxfp4_three_quarters_rtn_and_sr() {
    assert_close(
        "MXFP4 RTN 3/4",
        mse(mxfp4(ScaleRule::ThreeQuarters, Rounding::Rne), 32),
        0.01367,
    );
    assert_close(
        "MXFP4 SR 3/4",
        mse(mxfp4(ScaleRule::ThreeQuarters, Rounding::Stochastic), 32),
        0.02775,
    );
}

#[test]
fn mxfp4_ocp_floor_and_rceil() {
    assert_close(
        "MXFP4 OCP FLOOR",
        mse(mxfp4(ScaleRule::OcpFloor, Rounding::Rne), 32),
        0.01333,
    );
    assert_close(
        "MXFP4 RCEIL",
        mse(mxfp4(ScaleRule::RCeil, Rounding::Rne), 32),
        0.01363,
    );
}

#[test]
fn mxfp4_quest_floor_and_nearest() {
    let quest = |e| QuantSpec {
        transform: Transform::None,
        ..QuantSpec::quartet_forward(e)
    };
    assert_close("QuEST floor", mse(quest(ExpRounding::Floor), 32), 0.02231);
    assert_close(
        "QuEST nearest",
        mse(quest(ExpRounding::Nearest), 32),
        0.01337,
    );
}

#[test]
fn nvfp4_rtn() {
    assert_close(
        "NVFP4 RTN",
        mse(
            QuantSpec::nvfp4(Block::Group(16), Rounding::Rne, Transform::None),
            16,
        ),
        0.00906,
    );
}

#[test]
fn mxfp8_e4m3_rceil() {
    assert_close(
        "MXFP8 E4M3 RCEIL",
        mse(QuantSpec::mx(Element::E4M3, ScaleRule::RCeil), 32),
        0.00070,
    );
}

/// The FP4 grid with the RMSE-optimal real scale 0.48708·σ (σ known): QuEST's constant.
#[test]
fn fp4_grid_with_optimal_real_scale() {
    let (data, sig) = common::gaussian_blocks(N, 32, 7);
    let q: Vec<f32> = data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let x = nibble_formats::spec::QUEST_C * sig[i / 32];
            E2M1.round_rne(v / x) * x
        })
        .collect();
    assert_close(
        "FP4 grid, optimal real scale",
        common::relative_mse(&data, &q, &sig, 32),
        0.01268,
    );
}
