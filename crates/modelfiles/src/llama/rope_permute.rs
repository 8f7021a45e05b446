//! The q/k row order of RoPE'd projections.
//!
//! HF Llama applies RoPE with `rotate_half`: within a head of `hd` rows, row `j` pairs with row
//! `j + hd/2`. llama.cpp's llama architecture rotates adjacent pairs (rows `2i`, `2i+1`), so its
//! converter reorders q and k rows per head, `w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2)`:
//! GGUF row `h*hd + 2i + j` is HF row `h*hd + j*hd/2 + i` (`j` in {0, 1}, `i < hd/2`). With
//! that order both conventions compute the same attention scores. k uses the KV head count.

/// Reorders HF (rotate_half) rows into GGUF (adjacent-pair) order. `w` is row-major
/// `[n_head * hd, row_len]`.
pub fn hf_to_gguf_rows(w: &[f32], n_head: usize, row_len: usize) -> Vec<f32> {
    permute(w, n_head, row_len, true)
}

/// Reorders GGUF (adjacent-pair) rows back into HF (rotate_half) order; the exact inverse of
/// [`hf_to_gguf_rows`].
pub fn gguf_to_hf_rows(w: &[f32], n_head: usize, row_len: usize) -> Vec<f32> {
    permute(w, n_head, row_len, false)
}

fn permute(w: &[f32], n_head: usize, row_len: usize, to_gguf: bool) -> Vec<f32> {
    let rows = w.len() / row_len.max(1);
    let hd = rows / n_head.max(1);
    let half = hd / 2;
    assert_eq!(n_head * hd * row_len, w.len(), "rows must split into heads");
    assert_eq!(hd % 2, 0, "head_dim must be even");
    let mut out = vec![0.0f32; w.len()];
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let gguf_row = h * hd + 2 * i + j;
                let hf_row = h * hd + j * half + i;
                let (src, dst) = if to_gguf {
                    (hf_row, gguf_row)
                } else {
                    (gguf_row, hf_row)
                };
                out[dst * row_len..(dst + 1) * row_len]
                    .copy_from_slice(&w[src * row_len..(src + 1) * row_len]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reshape_swapaxes_formula_and_inverts() {
        // n_head 2, hd 4, row_len 1: HF rows r -> value r.
        let hf: Vec<f32> = (0..8).map(|r| r as f32).collect();
        // reshape(2, 2, 2, 1).swapaxes(1, 2): per head [a0 a1 b0 b1] -> [a0 b0 a1 b1].
        assert_eq!(
            hf_to_gguf_rows(&hf, 2, 1),
            vec![0., 2., 1., 3., 4., 6., 5., 7.]
        );
        let w: Vec<f32> = (0..3 * 8 * 5).map(|x| x as f32 * 0.5).collect();
        assert_eq!(gguf_to_hf_rows(&hf_to_gguf_rows(&w, 3, 5), 3, 5), w);
        assert_eq!(hf_to_gguf_rows(&gguf_to_hf_rows(&w, 3, 5), 3, 5), w);
    }
}
