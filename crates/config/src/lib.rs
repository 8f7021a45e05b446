//! nibble-config: the vocabulary every recipe section shares, at the bottom of the crate ladder so
//! that data, ops, techniques, model and train report errors the same way.
//!
//! - [`KeyError`]: a bad value and the dotted key it sits at, relative to the section that found
//!   it; the recipe loader prefixes the section (`within`) and turns the key into file:line.
//! - [`glob_match`]: the module globs of `[precision]`, `[sparsity]`, `[qat]` and optimizer groups.

mod glob;
mod key_error;

pub use glob::glob_match;
pub use key_error::KeyError;
