//! Recipe loading end to end, on a small multi-section test recipe type.

mod common;
mod errors;
mod includes;
mod overrides;
