//! The common interface of an element grid, used by the block quantizer's inner loop.

/// A set of representable values (in grid units, before the block scale is applied).
///
/// Rounding functions saturate to `[lo, hi]` and propagate NaN; they never produce an infinity.
pub trait Grid: Copy + Send + Sync {
    /// Smallest representable value (−max for signed minifloats, qmin for integers).
    fn lo(&self) -> f32;
    /// Largest representable value.
    fn hi(&self) -> f32;
    /// Round to nearest, ties to even, with saturation.
    fn rne(&self, y: f32) -> f32;
    /// Stochastic rounding with a uniform `u` in [0, 1): up with probability equal to the fraction.
    fn sr(&self, y: f32, u: f32) -> f32;
    /// Code of a value that is already on the grid (the output of `rne` / `sr`).
    fn code(&self, q: f32) -> u8;
    /// Value of a code.
    fn decode(&self, code: u8) -> f32;
}
