//! Tensor descriptors and the size rules ggml applies to them (shared by reader and writer).

use crate::error::{GgufErrorKind, Result};
use crate::quants::GgmlType;

/// ggml's GGML_MAX_DIMS.
pub const MAX_DIMS: usize = 4;
/// ggml's GGML_MAX_NAME: names must be shorter than this (the C struct keeps a NUL).
pub const MAX_NAME_LEN: usize = 64;

/// One tensor as described in the file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub ggml_type: GgmlType,
    /// Dimensions in GGUF order: `dims[0]` (`ne[0]`) is the innermost, contiguous one.
    pub dims: Vec<u64>,
    /// Byte offset of the data, relative to the start of the data section.
    pub offset: u64,
    /// Bytes of data (whole blocks).
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The shape in row-major (numpy/torch) order: GGUF dims reversed. A torch `[out, in]`
    /// weight is stored with `dims = [in, out]` and comes back as `[out, in]`.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// Byte size of a tensor of `ty` with GGUF-order `dims`, after ggml's checks: at most 4 dims,
/// no overflow past i64, and `dims[0]` a multiple of the block size.
pub(crate) fn tensor_n_bytes(ty: GgmlType, dims: &[u64]) -> Result<u64> {
    if dims.len() > MAX_DIMS {
        return Err(GgufErrorKind::BadDimCount {
            n_dims: dims.len() as u64,
        }
        .into());
    }
    let mut n: u64 = 1;
    for &d in dims {
        n = n
            .checked_mul(d)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| GgufErrorKind::BadDims {
                dims: dims.to_vec(),
                detail: "element count overflows int64",
            })?;
    }
    let ne0 = dims.first().copied().unwrap_or(1);
    let block = ty.block_size() as u64;
    if ne0 % block != 0 {
        return Err(GgufErrorKind::NotBlockMultiple {
            what: "dims[0] (row length)",
            ty,
            count: ne0,
            block,
        }
        .into());
    }
    (n / block)
        .checked_mul(ty.type_size() as u64)
        .filter(|&b| b <= i64::MAX as u64)
        .ok_or_else(|| {
            GgufErrorKind::BadDims {
                dims: dims.to_vec(),
                detail: "byte size overflows int64",
            }
            .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_checks() {
        assert_eq!(
            tensor_n_bytes(GgmlType::Q4_0, &[64, 3]).unwrap(),
            2 * 3 * 18
        );
        assert_eq!(tensor_n_bytes(GgmlType::F32, &[]).unwrap(), 4);
        assert!(tensor_n_bytes(GgmlType::Q4_0, &[48, 2]).is_err());
        assert!(tensor_n_bytes(GgmlType::F32, &[1, 1, 1, 1, 1]).is_err());
        assert!(tensor_n_bytes(GgmlType::F32, &[1 << 32, 1 << 32]).is_err());
        assert!(tensor_n_bytes(GgmlType::F64, &[1 << 61]).is_err());
        let t = TensorInfo {
            name: "w".into(),
            ggml_type: GgmlType::F32,
            dims: vec![3, 2],
            offset: 0,
            n_bytes: 24,
        };
        assert_eq!(t.shape(), vec![2, 3]);
        assert_eq!(t.n_elements(), 6);
    }
}
