//! Parameters by HF name (`model.layers.0.self_attn.q_proj.weight`, stored `[out, in]`), with a
//! deterministic, backend-independent init. Vectors (norm weights) are stored as `[1, d]`.
//! Techniques add their trainable tensors beside the weight they act on
//! (`...up_proj.weight_scale`) and their non-trainable state as buffers (`...up_proj.weight_mask`).

use std::collections::BTreeMap;

use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_formats::philox;

use nibble_techniques::SlotKind;

use crate::config::Arch;

/// Parameters of a model, ordered by name.
#[derive(Debug, Clone)]
pub struct Params<B: Backend> {
    /// Trainable tensors: the model's weights and the techniques' parameters.
    pub tensors: BTreeMap<String, Tensor<B, 2>>,
    /// Non-trainable technique state (masks, amax histories): checkpointed, never differentiated.
    pub buffers: BTreeMap<String, Tensor<B, 2>>,
}

/// Kind of a parameter, for optimizer groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Embedding,
    Norm,
    Matrix,
}

/// Classify by name: norms and embeddings get no weight decay.
pub fn kind_of(name: &str) -> ParamKind {
    if name.ends_with("norm.weight") {
        ParamKind::Norm
    } else if name.contains("embed_tokens") {
        ParamKind::Embedding
    } else {
        ParamKind::Matrix
    }
}

/// Names and shapes of all parameters of an architecture, in HF naming.
pub fn layout(a: &Arch) -> Vec<(String, [usize; 2])> {
    let (d, kv) = (a.d_model, a.n_kv_heads * a.head_dim());
    let mut v = vec![("model.embed_tokens.weight".to_string(), [a.vocab_size, d])];
    for l in 0..a.n_layers {
        let p = format!("model.layers.{l}");
        v.push((format!("{p}.input_layernorm.weight"), [1, d]));
        v.push((format!("{p}.self_attn.q_proj.weight"), [d, d]));
        v.push((format!("{p}.self_attn.k_proj.weight"), [kv, d]));
        v.push((format!("{p}.self_attn.v_proj.weight"), [kv, d]));
        v.push((format!("{p}.self_attn.o_proj.weight"), [d, d]));
        v.push((format!("{p}.post_attention_layernorm.weight"), [1, d]));
        v.push((format!("{p}.mlp.gate_proj.weight"), [a.d_ff, d]));
        v.push((format!("{p}.mlp.up_proj.weight"), [a.d_ff, d]));
        v.push((format!("{p}.mlp.down_proj.weight"), [d, a.d_ff]));
    }
    v.push(("model.norm.weight".to_string(), [1, d]));
    if !a.tie_embeddings {
        v.push(("lm_head.weight".to_string(), [a.vocab_size, d]));
    }
    v
}

/// 32-bit FNV-1a of a name: the Philox stream of that parameter's init.
fn name_stream(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// N(0, std²) values from Philox (seed, stream = hash(name)) via Box-Muller in f64.
pub fn normal_init(seed: u64, name: &str, n: usize, std: f64) -> Vec<f32> {
    let s = name_stream(name);
    (0..n as u64)
        .map(|i| {
            let u1 = (philox::word(seed, s, 2 * i) as f64 + 1.0) / 4_294_967_296.0; // (0, 1]
            let u2 = philox::word(seed, s, 2 * i + 1) as f64 / 4_294_967_296.0;
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * std) as f32
        })
        .collect()
}

impl<B: Backend> Params<B> {
    /// Llama init: norms 1, matrices N(0, std²), residual projections (o_proj, down_proj) with
    /// std / √(2·n_layers).
    pub fn init(a: &Arch, seed: u64, device: &B::Device) -> Self {
        let resid = a.init_std / (2.0 * a.n_layers as f64).sqrt();
        let tensors = layout(a)
            .into_iter()
            .map(|(name, shape)| {
                let n = shape[0] * shape[1];
                let data = match kind_of(&name) {
                    ParamKind::Norm => vec![1f32; n],
                    _ if name.ends_with("o_proj.weight") || name.ends_with("down_proj.weight") => {
                        normal_init(seed, &name, n, resid)
                    }
                    _ => normal_init(seed, &name, n, a.init_std),
                };
                let t = Tensor::from_data(TensorData::new(data, shape), device);
                (name, t)
            })
            .collect();
        Self {
            tensors,
            buffers: BTreeMap::new(),
        }
    }

    /// Zero tensors with the layout of `a`: the target of a checkpoint load (no init work).
    pub fn zeros(a: &Arch, device: &B::Device) -> Self {
        let tensors = layout(a)
            .into_iter()
            .map(|(name, shape)| (name, Tensor::zeros(shape, device)))
            .collect();
        Self {
            tensors,
            buffers: BTreeMap::new(),
        }
    }

    /// Adds a technique tensor: a trainable parameter or a buffer.
    pub fn insert_slot(&mut self, name: &str, kind: SlotKind, value: Tensor<B, 2>) {
        let map = match kind {
            SlotKind::Param => &mut self.tensors,
            SlotKind::Buffer => &mut self.buffers,
        };
        assert!(
            map.insert(name.to_owned(), value).is_none(),
            "`{name}` defined twice"
        );
    }

    /// The parameter `name` (panics on a name the layout does not have: a programming error).
    pub fn get(&self, name: &str) -> Tensor<B, 2> {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("no parameter `{name}`"))
            .clone()
    }

    /// A copy that shares no storage with `self` (in-place optimizer updates of one leave the
    /// other as it is).
    pub fn deep_copy(&self) -> Self {
        let copy = |m: &BTreeMap<String, Tensor<B, 2>>| {
            m.iter()
                .map(|(k, t)| (k.clone(), Tensor::from_data(t.to_data(), &t.device())))
                .collect()
        };
        Self {
            tensors: copy(&self.tensors),
            buffers: copy(&self.buffers),
        }
    }

    /// Total number of trainable scalars.
    pub fn numel(&self) -> usize {
        self.tensors
            .values()
            .map(|t| t.shape().num_elements())
            .sum()
    }
}
