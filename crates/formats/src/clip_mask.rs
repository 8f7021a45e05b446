//! One bit per element: set where the quantizer clipped (the straight-through gradient is zeroed
//! there). Each row starts on a fresh 64-bit word so that rows can be written in parallel.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClipMask {
    pub rows: usize,
    pub cols: usize,
    pub words_per_row: usize,
    pub bits: Vec<u64>,
}

impl ClipMask {
    pub fn new(rows: usize, cols: usize) -> Self {
        let words_per_row = cols.div_ceil(64);
        Self {
            rows,
            cols,
            words_per_row,
            bits: vec![0; rows * words_per_row],
        }
    }

    /// Clear for reuse with a `rows × cols` tensor (reallocates only if the shape changed).
    pub fn reset(&mut self, rows: usize, cols: usize) {
        if self.rows != rows || self.cols != cols {
            *self = ClipMask::new(rows, cols);
        } else {
            self.bits.fill(0);
        }
    }

    /// Whether element (row, col) was clipped.
    pub fn get(&self, row: usize, col: usize) -> bool {
        (self.bits[row * self.words_per_row + col / 64] >> (col % 64)) & 1 == 1
    }

    /// Whether flat element `i` (row-major) was clipped.
    pub fn get_flat(&self, i: usize) -> bool {
        self.get(i / self.cols, i % self.cols)
    }

    /// Number of clipped elements.
    pub fn count(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// One bool per element, row-major.
    pub fn to_bools(&self) -> Vec<bool> {
        (0..self.rows * self.cols)
            .map(|i| self.get_flat(i))
            .collect()
    }
}
