//! Data-parallel launch: the checks and the run directory once, then one peer thread per local
//! device, each running the ordinary trainer with its [`Peer`]; the first peer to fail (an
//! error, a panic) or to wait past the timeout in a collective operation stops the run with a
//! message naming it. Peers that are left blocked in burn-collective (it has no cancellation)
//! end with the process, which the CLI exits right after.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use nibble_model::LpBackend;

use super::error::TrainError;
use super::peer::{Peer, Watch};
use super::preflight::preflight;
use super::run::{TrainOptions, TrainSummary, train};
use super::run_dir::RunDir;
use crate::sections::Recipe;

/// Trains `recipe` with `[distributed]` peers on copies of `device` (the CPU: every peer
/// shares the host's cores; a GPU backend: device index `devices[rank]`).
pub fn launch<B: LpBackend>(
    recipe: &Recipe,
    resolved_toml: &str,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<TrainSummary, TrainError> {
    let dist = &recipe.distributed;
    let world = dist.world();
    let (parts, warnings) = preflight::<B>(recipe, opts, device)?;
    let seq_len = parts.arch.seq_len;
    drop(parts);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    // Damaged checkpoints are moved aside here, once, before any peer looks for one.
    let dir = RunDir::prepare(recipe, resolved_toml, opts)?;
    if !opts.quiet {
        println!(
            "data parallel: {world} peers x batch {} x grad_accum {} = global batch {} sequences \
             of {} tokens",
            recipe.run.batch_size,
            recipe.run.grad_accum,
            world * recipe.run.batch_size * recipe.run.grad_accum,
            seq_len
        );
    }
    let watch = Arc::new(Watch::new(world));
    let (tx, rx) = mpsc::channel();
    let ids = dist.device_ids();
    for (rank, &index) in ids.iter().enumerate().take(world) {
        let peer = Peer {
            rank,
            world,
            watch: watch.clone(),
        };
        let dev = peer_device::<B>(device, index, recipe);
        let o = TrainOptions {
            run_dir: Some(dir.path.clone()),
            peer: Some(peer.clone()),
            quiet: opts.quiet || rank > 0,
            ..opts.clone()
        };
        let (recipe, text, tx) = (recipe.clone(), resolved_toml.to_string(), tx.clone());
        std::thread::Builder::new()
            .name(format!("peer-{rank}"))
            .spawn(move || {
                let r = crate::panics::catch(|| {
                    peer.register::<B>(&dev)
                        .map_err(|m| TrainError::PeerFailed { rank, message: m })?;
                    let s = train::<B>(&recipe, &text, &o, &dev);
                    peer.finish::<B>();
                    s
                });
                let r = r.unwrap_or_else(|message| Err(TrainError::PeerFailed { rank, message }));
                let _ = tx.send((rank, r));
            })
            .map_err(|e| TrainError::PeerFailed {
                rank,
                message: format!("cannot start its thread: {e}"),
            })?;
    }
    let limit = Duration::from_secs(dist.timeout_secs);
    let mut done: Vec<Option<TrainSummary>> = vec![None; world];
    while done.iter().any(Option::is_none) {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok((rank, Ok(s))) => done[rank] = Some(s),
            Ok((rank, Err(e))) => {
                return Err(match e {
                    e @ TrainError::PeerFailed { .. } => e,
                    e => TrainError::PeerFailed {
                        rank,
                        message: e.to_string(),
                    },
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some((rank, step, secs)) = watch.stalled(limit) {
                    return Err(TrainError::PeerLost { rank, step, secs });
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("this thread holds a sender"),
        }
    }
    Ok(done.swap_remove(0).expect("peer 0 finished"))
}

/// The device of local peer `index`: the CPU backend has one device, which every peer shares.
fn peer_device<B: LpBackend>(device: &B::Device, index: usize, recipe: &Recipe) -> B::Device {
    use burn::tensor::backend::DeviceOps;
    if recipe.run.device == crate::sections::Device::Cpu {
        return device.clone();
    }
    let mut id = device.id();
    id.index_id = index as u16;
    <B::Device as burn::tensor::backend::Device>::from_id(id)
}
