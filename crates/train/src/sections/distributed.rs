//! `[distributed]`: data parallelism over local devices on burn-collective (one peer thread per
//! device; gradients all-reduced by mean before clipping). Multi-node keys are parsed and
//! validated, but a run with `nodes > 1` is refused: burn-collective 0.21's global (multi-process)
//! all-reduce does not complete a second operation in a session (docs/distributed.md).

use serde::{Deserialize, Serialize};

use crate::recipe::KeyError;

/// `devices = 2` (a count: device indices 0..2) or `devices = [0, 1]` (indices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Devices {
    Count(usize),
    List(Vec<usize>),
}

impl Default for Devices {
    fn default() -> Self {
        Devices::Count(1)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistributedConfig {
    /// Local devices, one peer each (on the CPU every peer shares the host's cores).
    pub devices: Devices,
    /// Nodes (processes) taking part; only 1 runs today (see the module doc).
    pub nodes: usize,
    /// This node's rank among `nodes` (0-based).
    pub node_rank: usize,
    /// This node's data-service address, `ws://host:port` (multi-node).
    pub node_address: Option<String>,
    /// The global coordinator's address, `ws://host:port` (multi-node).
    pub coordinator_address: Option<String>,
    /// Every this many updates, the peers compare a hash of their parameters and stop on a
    /// difference (0: never).
    pub check_every: u64,
    /// Seconds a peer may wait in one collective operation before the run is declared lost
    /// (a peer died or hung): the run stops with exit 1 instead of hanging.
    pub timeout_secs: u64,
}

impl Default for DistributedConfig {
    fn default() -> Self {
        DistributedConfig {
            devices: Devices::default(),
            nodes: 1,
            node_rank: 0,
            node_address: None,
            coordinator_address: None,
            check_every: 0,
            timeout_secs: 300,
        }
    }
}

impl DistributedConfig {
    /// The local device indices.
    pub fn device_ids(&self) -> Vec<usize> {
        match &self.devices {
            Devices::Count(n) => (0..*n).collect(),
            Devices::List(v) => v.clone(),
        }
    }

    /// Peers in the whole run (devices × nodes).
    pub fn world(&self) -> usize {
        self.device_ids().len() * self.nodes
    }

    pub fn validate(&self) -> Result<(), KeyError> {
        let ids = self.device_ids();
        if ids.is_empty() {
            return Err(KeyError::new("devices", "must name at least one device"));
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != ids.len() {
            return Err(KeyError::new("devices", "a device is listed twice"));
        }
        if ids.len() > 64 {
            return Err(KeyError::new("devices", "at most 64 local devices"));
        }
        if self.nodes == 0 {
            return Err(KeyError::new("nodes", "must be at least 1"));
        }
        if self.node_rank >= self.nodes {
            return Err(KeyError::new(
                "node_rank",
                format!("must be below nodes = {}", self.nodes),
            ));
        }
        for (k, a) in [
            ("node_address", &self.node_address),
            ("coordinator_address", &self.coordinator_address),
        ] {
            if let Some(a) = a
                && !a.starts_with("ws://")
            {
                return Err(KeyError::new(k, format!("`{a}` must be ws://host:port")));
            }
        }
        if self.nodes > 1 {
            if self.coordinator_address.is_none() || self.node_address.is_none() {
                return Err(KeyError::new(
                    "coordinator_address",
                    "nodes > 1 needs coordinator_address and node_address",
                ));
            }
            return Err(KeyError::new(
                "nodes",
                "multi-node data parallelism is not available: burn-collective 0.21's global \
                 all-reduce never completes a second operation in a session (see \
                 docs/distributed.md); use one node with several devices",
            ));
        }
        if self.timeout_secs == 0 {
            return Err(KeyError::new("timeout_secs", "must be at least 1"));
        }
        Ok(())
    }
}
