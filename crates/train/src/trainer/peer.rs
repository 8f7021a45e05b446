//! A data-parallel peer and the collective operations a step needs, on burn-collective: the
//! gradients (and the step's loss) all-reduced by mean in one flat buffer; per-step maxima (FP8
//! delayed scaling's amaxes) and parameter hashes gathered (burn-collective has no max: each
//! peer writes its slot of a zero buffer and the buffers are summed, which is exact).
//!
//! A collective call blocks until every peer makes it; burn-collective has no timeout, so each
//! peer records when it entered one in a shared [`Watch`] and the launcher declares the run lost
//! when a peer waits longer than `[distributed] timeout_secs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use burn::collective::{self, PeerId, ReduceOperation};
use burn::prelude::*;
use burn::tensor::{TensorData, TensorPrimitive};
use sha2::{Digest, Sha256};

use nibble_model::Params;

/// When each peer entered the collective operation it waits in (ms since `start` + 1; 0: none).
#[derive(Debug)]
pub struct Watch {
    start: Instant,
    entered: Vec<AtomicU64>,
    /// What each peer waits for (the step), for the error message.
    step: Vec<AtomicU64>,
    /// Microseconds each peer spent in collective operations (communication and waiting).
    spent_us: Vec<AtomicU64>,
}

impl Watch {
    pub fn new(world: usize) -> Self {
        Watch {
            start: Instant::now(),
            entered: (0..world).map(|_| AtomicU64::new(0)).collect(),
            step: (0..world).map(|_| AtomicU64::new(0)).collect(),
            spent_us: (0..world).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Seconds `rank` has spent in collective operations so far.
    pub fn spent_secs(&self, rank: usize) -> f64 {
        self.spent_us[rank].load(Ordering::SeqCst) as f64 * 1e-6
    }

    fn enter(&self, rank: usize, step: u64) {
        let ms = self.start.elapsed().as_millis() as u64 + 1;
        self.step[rank].store(step, Ordering::SeqCst);
        self.entered[rank].store(ms, Ordering::SeqCst);
    }

    fn leave(&self, rank: usize) {
        let e = self.entered[rank].swap(0, Ordering::SeqCst);
        let now = self.start.elapsed().as_millis() as u64 + 1;
        self.spent_us[rank].fetch_add(now.saturating_sub(e) * 1000, Ordering::SeqCst);
    }

    /// A peer that has waited in one operation longer than `limit`: (rank, step, seconds).
    pub fn stalled(&self, limit: Duration) -> Option<(usize, u64, f64)> {
        let now = self.start.elapsed().as_millis() as u64 + 1;
        self.entered.iter().enumerate().find_map(|(r, e)| {
            let e = e.load(Ordering::SeqCst);
            let waited = Duration::from_millis(now.saturating_sub(e));
            (e != 0 && waited > limit).then(|| {
                let s = self.step[r].load(Ordering::SeqCst);
                (r, s, waited.as_secs_f64())
            })
        })
    }
}

/// One peer of a data-parallel run: its rank among `world` peers.
#[derive(Debug, Clone)]
pub struct Peer {
    pub rank: usize,
    pub world: usize,
    pub watch: Arc<Watch>,
}

impl Peer {
    fn id(&self) -> PeerId {
        PeerId(self.rank as u32)
    }

    /// A collective call, recorded in the watch. A failure panics: the launcher catches a
    /// peer's panic and stops the run with its message (a collective error leaves the other
    /// peers' state unknown, so nothing can continue).
    fn call<B: Backend>(&self, step: u64, op: ReduceOperation, t: Tensor<B, 1>) -> Tensor<B, 1> {
        self.watch.enter(self.rank, step);
        let r = collective::all_reduce::<B>(self.id(), t.into_primitive().tensor(), op);
        self.watch.leave(self.rank);
        match r {
            Ok(p) => Tensor::from_primitive(TensorPrimitive::Float(p)),
            Err(e) => panic!(
                "peer {}: all-reduce of step {step} failed: {e:?}",
                self.rank
            ),
        }
    }

    /// Registers this peer (a barrier: returns when every local peer has registered).
    pub fn register<B: Backend>(&self, device: &B::Device) -> Result<(), String> {
        let cfg = collective::CollectiveConfig::default().with_num_devices(self.world);
        self.watch.enter(self.rank, 0);
        let r = collective::register::<B>(self.id(), device.clone(), cfg);
        self.watch.leave(self.rank);
        r.map_err(|e| format!("peer {}: registering failed: {e:?}", self.rank))
    }

    /// Leaves the collective (after the last step).
    pub fn finish<B: Backend>(&self) {
        let _ = collective::finish_collective::<B>(self.id());
    }

    /// The gradients and the loss averaged over the peers, in one all-reduce: `(g₀ + g₁)/2`
    /// for two peers, the same bits on every peer.
    pub fn mean_grads<B: Backend>(
        &self,
        step: u64,
        grads: BTreeMap<String, Tensor<B, 2>>,
        loss: f64,
        device: &B::Device,
    ) -> (BTreeMap<String, Tensor<B, 2>>, f64) {
        let shapes: Vec<(String, [usize; 2])> =
            grads.iter().map(|(k, t)| (k.clone(), t.dims())).collect();
        let mut flat: Vec<Tensor<B, 1>> = grads
            .into_values()
            .map(|t| {
                let n = t.dims()[0] * t.dims()[1];
                t.reshape([n])
            })
            .collect();
        flat.push(Tensor::from_data(
            TensorData::new(vec![loss as f32], [1]),
            device,
        ));
        let all = self.call(step, ReduceOperation::Mean, Tensor::cat(flat, 0));
        let mut at = 0;
        let mut out = BTreeMap::new();
        for (name, [r, c]) in shapes {
            let t = all.clone().slice(at..at + r * c).reshape([r, c]);
            out.insert(name, t);
            at += r * c;
        }
        let loss = all.slice(at..at + 1).into_scalar().elem::<f32>();
        (out, f64::from(loss))
    }

    /// Every peer's `v` (the same length on each), rank by rank.
    pub fn gather<B: Backend>(&self, step: u64, v: &[f32], device: &B::Device) -> Vec<Vec<f32>> {
        let n = v.len();
        let mut buf = vec![0f32; n * self.world];
        buf[self.rank * n..(self.rank + 1) * n].copy_from_slice(v);
        let t = Tensor::<B, 1>::from_data(TensorData::new(buf, [n * self.world]), device);
        let all: Vec<f32> = self
            .call(step, ReduceOperation::Sum, t)
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("f32 buffer");
        all.chunks(n.max(1)).map(<[f32]>::to_vec).collect()
    }

    /// The elementwise maximum of `v` over the peers.
    pub fn max<B: Backend>(&self, step: u64, v: &[f32], device: &B::Device) -> Vec<f32> {
        let all = self.gather::<B>(step, v, device);
        (0..v.len())
            .map(|i| all.iter().map(|p| p[i]).fold(f32::NEG_INFINITY, f32::max))
            .collect()
    }

    /// Exists only so that tests can fail one peer: `NIBBLE_DEBUG_PEER_FAULT=<rank>:<step>:
    /// panic|hang|perturb` makes peer `rank` panic, block forever, or nudge one weight (which
    /// `check_every` must catch) before update `step`.
    pub fn debug_fault<B: Backend>(&self, step: u64, params: &mut Params<B>) {
        let Ok(spec) = std::env::var("NIBBLE_DEBUG_PEER_FAULT") else {
            return;
        };
        let f: Vec<&str> = spec.split(':').collect();
        if f.len() != 3 || f[0] != self.rank.to_string() || f[1] != step.to_string() {
            return;
        }
        match f[2] {
            "hang" => loop {
                std::thread::park();
            },
            "perturb" => {
                let (name, t) = params.tensors.iter().next().expect("a parameter");
                let nudged = t.clone().slice_fill([0..1, 0..1], 0.125);
                params.tensors.insert(name.clone(), nudged);
            }
            _ => panic!(
                "NIBBLE_DEBUG_PEER_FAULT: peer {} fails before update {step}",
                self.rank
            ),
        }
    }

    /// Whether every peer holds the same parameters and buffers (bit for bit): a SHA-256 of
    /// them, gathered as 16-bit pieces (exact in f32).
    pub fn params_agree<B: Backend>(&self, step: u64, p: &Params<B>, device: &B::Device) -> bool {
        let mut h = Sha256::new();
        for (name, t) in p.tensors.iter().chain(&p.buffers) {
            h.update(name.as_bytes());
            let v: Vec<f32> = t.to_data().convert::<f32>().into_vec().expect("f32");
            for x in v {
                h.update(x.to_le_bytes());
            }
        }
        let d = h.finalize();
        let pieces: Vec<f32> = d
            .chunks(2)
            .map(|c| f32::from(u16::from_le_bytes([c[0], c[1]])))
            .collect();
        let all = self.gather::<B>(step, &pieces, device);
        all.iter().all(|p| *p == all[0])
    }
}
