//! nibble-ops: the low-precision primitives as a burn backend extension ([`LpBackend`]) and the
//! quantized linear layer with its custom backward ([`lp_linear`]), configured by a
//! [`LinearScheme`].

pub mod backend;
#[cfg(feature = "cube")]
mod cube;
pub mod delayed;
pub mod fallbacks;
mod flex;
pub mod fused;
pub mod host;
pub mod host_memory;
pub mod keys;
pub mod linear;
pub mod presets;
pub mod scheme;

pub use backend::{LayerCall, LpBackend, lp_linear};
pub use delayed::{AmaxAlgo, DelayedScaling, DelayedState};
pub use presets::{GradFormat, Passes, SchemeTable, customize, preset};
pub use scheme::{BackwardQuant, LinearScheme, Rht, RhtGemms, SignSide, SignSource, Source};
