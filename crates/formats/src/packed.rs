//! The packed form of a quantized tensor: one code per element plus one scale record per block.

use crate::block_scale::BlockScale;
use crate::element::AnyGrid;
use crate::grid::Grid;
use crate::pack;
use crate::spec::{Block, QuantSpec};

/// Codes (row-major, one byte per element, in the transformed domain) and per-block scales in
/// row-major block order (`[rows][cols/g]` for 1×g groups, `[rows/g][cols/g]` for tiles).
#[derive(Clone, Debug)]
pub struct Packed {
    pub spec: QuantSpec,
    pub shape: Vec<usize>,
    pub rows: usize,
    pub cols: usize,
    pub codes: Vec<u8>,
    pub blocks: Vec<BlockScale>,
}

impl Packed {
    /// Stored scale bytes (UE8M0 for power-of-two rules, UE4M3 for NVFP4).
    pub fn scale_codes(&self) -> Vec<u8> {
        self.blocks.iter().map(|b| b.code).collect()
    }

    /// Decode scale of each block as f32 (what the stored scale stands for).
    pub fn scales(&self) -> Vec<f32> {
        self.blocks.iter().map(|b| b.dec).collect()
    }

    /// Zero points (affine INT), in grid units.
    pub fn zero_points(&self) -> Vec<f32> {
        self.blocks.iter().map(|b| b.off).collect()
    }

    /// Second-level factor applied after the block scale (NVFP4 FP32 tensor decode scale; 4/3 for
    /// the 3/4 rule; 1 otherwise).
    pub fn global_scale(&self) -> f32 {
        self.blocks.first().map_or(1.0, |b| b.post)
    }

    /// Index of the block holding element (row, col).
    pub fn block_of(&self, row: usize, col: usize) -> usize {
        match self.spec.block {
            Block::Tensor => 0,
            Block::Row => row,
            Block::Group(g) => row * self.cols.div_ceil(g) + col / g,
            Block::Tile(g) => (row / g) * self.cols.div_ceil(g) + col / g,
        }
    }

    /// Dequantize from codes and scales alone. Bit-identical to `quantize_dequantize`.
    pub fn dequantize(&self) -> Vec<f32> {
        let grid = self.spec.element.grid();
        let decode = |c: u8| match grid {
            AnyGrid::Mini(m) => m.decode(c),
            AnyGrid::Int(g) => g.decode(c),
            AnyGrid::Half(_) => unreachable!("bf16/f16 are never packed"),
        };
        (0..self.codes.len())
            .map(|i| {
                let b = &self.blocks[self.block_of(i / self.cols, i % self.cols)];
                if b.nan {
                    f32::NAN
                } else {
                    ((decode(self.codes[i]) - b.off) * b.dec) * b.post
                }
            })
            .collect()
    }

    /// Codes packed by bit width: nibbles (4-bit), 2-bit quads (ternary / INT2), bytes otherwise.
    pub fn packed_codes(&self) -> Vec<u8> {
        match self.spec.element.bits() {
            4 => pack::pack_nibbles(&self.codes),
            2 => pack::pack_2bit(&self.codes),
            _ => self.codes.clone(),
        }
    }
}
