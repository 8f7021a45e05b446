//! Views of one layer's technique tensors inside the model's name → tensor maps.

use std::collections::BTreeMap;

use burn::prelude::*;

/// Read access to a layer's slots: `<module>.<suffix>` in the parameter or buffer map, and the
/// entries an earlier technique in the layer's chain keeps (an acting N:M mask).
pub struct LayerSlots<'a, B: Backend> {
    pub module: &'a str,
    pub params: &'a BTreeMap<String, Tensor<B, 2>>,
    pub buffers: &'a BTreeMap<String, Tensor<B, 2>>,
    /// 1 where an earlier technique keeps the entry, 0 where it prunes it; `None`: all kept.
    /// A quantizer takes its statistics over the kept entries only (spec §7.1).
    pub keep: Option<Tensor<B, 2>>,
}

impl<'a, B: Backend> LayerSlots<'a, B> {
    /// The same slots with `keep` as the kept entries.
    pub fn with_keep(&self, keep: Option<Tensor<B, 2>>) -> LayerSlots<'a, B> {
        LayerSlots {
            module: self.module,
            params: self.params,
            buffers: self.buffers,
            keep,
        }
    }

    /// The parameter `suffix` of this layer (panics if missing: slots are created with the model,
    /// so a missing one is a programming error).
    pub fn param(&self, suffix: &str) -> Tensor<B, 2> {
        lookup(self.params, self.module, suffix, "parameter")
    }

    /// The buffer `suffix` of this layer.
    pub fn buffer(&self, suffix: &str) -> Tensor<B, 2> {
        lookup(self.buffers, self.module, suffix, "buffer")
    }
}

/// Write access to a layer's buffers (the end-of-step hook; parameters belong to the optimizer).
pub struct LayerSlotsMut<'a, B: Backend> {
    pub module: &'a str,
    pub buffers: &'a mut BTreeMap<String, Tensor<B, 2>>,
}

impl<B: Backend> LayerSlotsMut<'_, B> {
    pub fn buffer(&self, suffix: &str) -> Tensor<B, 2> {
        lookup(self.buffers, self.module, suffix, "buffer")
    }

    pub fn set_buffer(&mut self, suffix: &str, value: Tensor<B, 2>) {
        let name = format!("{}.{suffix}", self.module);
        assert!(self.buffers.contains_key(&name), "no buffer `{name}`");
        self.buffers.insert(name, value);
    }
}

fn lookup<B: Backend>(
    map: &BTreeMap<String, Tensor<B, 2>>,
    module: &str,
    suffix: &str,
    what: &str,
) -> Tensor<B, 2> {
    let name = format!("{module}.{suffix}");
    map.get(&name)
        .unwrap_or_else(|| panic!("no {what} `{name}`"))
        .clone()
}
