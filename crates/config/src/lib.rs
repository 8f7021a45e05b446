//! nibble-config: the vocabulary every recipe section shares, at the bottom of the crate ladder so
//! that data, ops, techniques, model and train report errors the same way.
//!
//! - [`KeyError`]: a bad value and the dotted key it sits at, relative to the section that found
//!   it; the recipe loader prefixes the section (`within`) and turns the key into file:line.
//! - [`f32_value`]: a recipe float that is used in f32 must be representable there.
//! - [`glob_match`]: the module globs of `[precision]`, `[sparsity]`, `[qat]` and optimizer groups.

mod f32_check;
mod glob;
mod key_error;

pub use f32_check::{f32_value, f32_values};
pub use glob::glob_match;
pub use key_error::KeyError;
