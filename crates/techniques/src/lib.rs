//! nibble-techniques: the technique seam. A linear layer's weight path is
//! `W → techniques (recipe order: sparsity, then QAT) → lp_linear(scheme)`.
//!
//! A technique is one type implementing [`Technique`]: it transforms the weight (plain burn ops,
//! detach-based straight-through estimators, so autodiff reaches its own parameters), declares
//! the tensors it keeps per layer ([`SlotSpec`]: trainable parameters and buffers, named beside
//! the weight in HF style and checkpointed as safetensors), and gets a hook after every optimizer
//! step. [`AnyTechnique`] lists the techniques (one line each); the recipe sections that attach
//! them to modules by glob ([`SparsityConfig`], [`QatConfig`]) build them.

mod absmean;
mod affine;
mod affine_codes;
mod any;
mod ct_grid;
mod delayed_scaling;
mod ggml_grid;
mod lsq;
mod mdgf;
mod nm_ste;
mod qat_config;
mod scale_dtype;
mod scale_sets;
mod sdgf;
mod seq;
mod serving_grid;
mod slots;
mod sparsity_config;
mod sr_ste;
mod technique;
mod tequila;
mod ternary_grid;
mod twn;

pub use absmean::Absmean;
pub use affine::Affine;
pub use affine_codes::AffineCodes;
pub use any::AnyTechnique;
pub use ct_grid::CtGrid;
pub use delayed_scaling::DelayedScalingState;
pub use ggml_grid::GgmlGrid;
pub use lsq::Lsq;
pub use mdgf::{DecayShape, Mdgf};
/// compressed-tensors schemes ([`CtGrid`]'s grids), re-exported for the layers above.
pub use nibble_modelfiles::ct::CtScheme;
/// The ggml block types ([`GgmlGrid`]'s grids), re-exported for the layers above.
pub use nibble_modelfiles::quants::GgmlType;
pub use nm_ste::{NmDim, NmSte, SparsePhases};
pub use qat_config::{
    CtGridScheme, GgmlGridType, Granularity, QatConfig, QatMethod, QatStart, StartPoint,
};
pub use scale_dtype::ScaleDtype;
pub use scale_sets::ScaleSets;
pub use sdgf::{Sdgf, SdgfType};
pub use seq::Seq;
pub use serving_grid::ServingGrid;
pub use slots::{LayerSlots, LayerSlotsMut};
pub use sparsity_config::{SparsityConfig, SparsityMethod, SparsityRule};
pub use sr_ste::SrSte;
pub use technique::{Codes, GridScales, SlotKind, SlotSpec, StepInfo, Technique};
pub use tequila::Tequila;
pub use twn::Twn;

/// Techniques a recipe attaches to one module (HF name, e.g. `model.layers.3.mlp.up_proj`), in
/// composition order: sparsity mask, then QAT quantizer.
pub fn techniques_for(
    sparsity: &SparsityConfig,
    qat: &QatConfig,
    module: &str,
) -> Vec<AnyTechnique> {
    sparsity
        .technique_for(module)
        .into_iter()
        .chain(qat.technique_for(module))
        .collect()
}
