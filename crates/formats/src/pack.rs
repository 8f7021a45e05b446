//! Bit packing of element codes for export.
//!
//! - E2M1 (and any 4-bit code): two per byte, element 2i in the low nibble (OCP / PTX / torchao).
//! - INT4 in int32 words, eight per word, element 8w+j in bits 4j..4j+3 (LSB first; GPTQ/AWQ
//!   style).
//! - 2-bit codes (ternary 0/1/2 = −1/0/+1): four per byte, element 4i+j in bits 2j..2j+1.
//!
//! A trailing partial group is padded with zero codes; unpacking takes the element count.

/// Pack 4-bit codes two per byte, even element in the low nibble.
pub fn pack_nibbles(codes: &[u8]) -> Vec<u8> {
    codes
        .chunks(2)
        .map(|p| (p[0] & 0xF) | (p.get(1).copied().unwrap_or(0) & 0xF) << 4)
        .collect()
}

/// Inverse of [`pack_nibbles`].
pub fn unpack_nibbles(bytes: &[u8], n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (bytes[i / 2] >> (4 * (i % 2))) & 0xF)
        .collect()
}

/// Pack 4-bit codes eight per 32-bit word, LSB first.
pub fn pack_int4_i32(codes: &[u8]) -> Vec<i32> {
    codes
        .chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u32, |w, (j, &q)| w | ((q as u32 & 0xF) << (4 * j))) as i32
        })
        .collect()
}

/// Inverse of [`pack_int4_i32`].
pub fn unpack_int4_i32(words: &[i32], n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| ((words[i / 8] as u32 >> (4 * (i % 8))) & 0xF) as u8)
        .collect()
}

/// Pack 2-bit codes four per byte, LSB first.
pub fn pack_2bit(codes: &[u8]) -> Vec<u8> {
    codes
        .chunks(4)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |b, (j, &q)| b | ((q & 3) << (2 * j)))
        })
        .collect()
}

/// Inverse of [`pack_2bit`].
pub fn unpack_2bit(bytes: &[u8], n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (bytes[i / 4] >> (2 * (i % 4))) & 3)
        .collect()
}
