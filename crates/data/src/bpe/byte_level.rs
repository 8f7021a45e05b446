//! GPT-2's byte-level alphabet: every byte as a printable character, so that byte-level BPE
//! tokens are strings.

use std::collections::HashMap;
use std::sync::OnceLock;

/// GPT-2's byte → printable character table: bytes `!`..`~`, `¡`..`¬`, `®`..`ÿ` map to
/// themselves, the other 68 bytes to U+0100.. in byte order.
pub fn byte_to_unicode() -> &'static [char; 256] {
    static TABLE: OnceLock<[char; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = ['\0'; 256];
        let mut extra = 0u32;
        for (b, slot) in table.iter_mut().enumerate() {
            let printable = (0x21..=0x7E).contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            let cp = if printable {
                b as u32
            } else {
                extra += 1;
                0xFF + extra
            };
            *slot = char::from_u32(cp).unwrap_or('\u{FFFD}');
        }
        table
    })
}

pub(crate) fn unicode_to_byte() -> HashMap<char, u8> {
    byte_to_unicode()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
}

/// A byte-level token string → bytes; characters outside the alphabet keep their UTF-8 bytes.
pub(crate) fn byte_level_decode(token: &str, decoder: &HashMap<char, u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len());
    for c in token.chars() {
        match decoder.get(&c) {
            Some(&b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_is_gpt2s() {
        let t = byte_to_unicode();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'\t' as usize], 'ĉ');
        assert_eq!(t[0], 'Ā');
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[0xAD], 'Ń');
        assert_eq!(t[0x7F], 'ġ');
        let mut seen: Vec<char> = t.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256);
        let back = unicode_to_byte();
        assert!((0..=255u8).all(|b| back[&t[b as usize]] == b));
    }
}
