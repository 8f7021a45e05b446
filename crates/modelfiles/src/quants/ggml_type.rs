//! ggml tensor type ids and their block geometry (`ggml.h` / gguf-py `GGML_QUANT_SIZES`).
//!
//! Every id ggml knows is listed, not just the ones this crate can decode: the reader needs the
//! byte size of every tensor to check the file's layout, even tensors it will never dequantize.

use std::fmt;

macro_rules! ggml_types {
    ($($variant:ident = $id:literal, $block:literal, $bytes:expr;)*) => {
        /// A ggml tensor element type. The discriminant is the id stored in GGUF tensor infos.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types)]
        pub enum GgmlType {
            $($variant = $id,)*
        }

        impl GgmlType {
            /// Every known type, in id order.
            pub const ALL: &'static [GgmlType] = &[$(GgmlType::$variant,)*];

            /// The type with this GGUF id, if ggml defines one.
            pub fn from_id(id: u32) -> Option<Self> {
                match id {
                    $($id => Some(GgmlType::$variant),)*
                    _ => None,
                }
            }

            /// ggml's name for the type (as gguf-py spells it).
            pub fn name(self) -> &'static str {
                match self {
                    $(GgmlType::$variant => stringify!($variant),)*
                }
            }

            /// Elements per block.
            pub fn block_size(self) -> usize {
                match self {
                    $(GgmlType::$variant => $block,)*
                }
            }

            /// Bytes per block.
            pub fn type_size(self) -> usize {
                match self {
                    $(GgmlType::$variant => $bytes,)*
                }
            }
        }
    };
}

const QK_K: usize = 256;

ggml_types! {
    F32 = 0, 1, 4;
    F16 = 1, 1, 2;
    Q4_0 = 2, 32, 2 + 16;
    Q4_1 = 3, 32, 2 + 2 + 16;
    Q5_0 = 6, 32, 2 + 4 + 16;
    Q5_1 = 7, 32, 2 + 2 + 4 + 16;
    Q8_0 = 8, 32, 2 + 32;
    Q8_1 = 9, 32, 4 + 4 + 32;
    Q2_K = 10, 256, 2 + 2 + QK_K / 16 + QK_K / 4;
    Q3_K = 11, 256, 2 + QK_K / 4 + QK_K / 8 + 12;
    Q4_K = 12, 256, 2 + 2 + QK_K / 2 + 12;
    Q5_K = 13, 256, 2 + 2 + QK_K / 2 + QK_K / 8 + 12;
    Q6_K = 14, 256, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16;
    Q8_K = 15, 256, 4 + QK_K + QK_K / 8;
    IQ2_XXS = 16, 256, 2 + QK_K / 4;
    IQ2_XS = 17, 256, 2 + QK_K / 4 + QK_K / 32;
    IQ3_XXS = 18, 256, 2 + QK_K / 4 + QK_K / 8;
    IQ1_S = 19, 256, 2 + QK_K / 8 + QK_K / 16;
    IQ4_NL = 20, 32, 2 + 16;
    IQ3_S = 21, 256, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4;
    IQ2_S = 22, 256, 2 + QK_K / 4 + QK_K / 16;
    IQ4_XS = 23, 256, 2 + 2 + QK_K / 2 + QK_K / 64;
    I8 = 24, 1, 1;
    I16 = 25, 1, 2;
    I32 = 26, 1, 4;
    I64 = 27, 1, 8;
    F64 = 28, 1, 8;
    IQ1_M = 29, 256, QK_K / 8 + QK_K / 16 + QK_K / 32;
    BF16 = 30, 1, 2;
    TQ1_0 = 34, 256, 2 + 4 * 13;
    TQ2_0 = 35, 256, 2 + 64;
    MXFP4 = 39, 32, 1 + 16;
    NVFP4 = 40, 64, 4 + 32;
    Q1_0 = 41, 128, 2 + 16;
}

impl GgmlType {
    /// The GGUF id.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Whether [`crate::quants::dequantize`] supports this type.
    pub fn can_dequantize(self) -> bool {
        use GgmlType::*;
        matches!(
            self,
            F32 | F16 | BF16 | Q8_0 | Q4_0 | Q4_1 | MXFP4 | TQ1_0 | TQ2_0 | Q4_K | Q6_K
        )
    }

    /// Whether [`crate::quants::quantize`] supports this type.
    pub fn can_quantize(self) -> bool {
        use GgmlType::*;
        matches!(
            self,
            F32 | F16 | BF16 | Q8_0 | Q4_0 | Q4_1 | MXFP4 | TQ1_0 | TQ2_0
        )
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sizes_match_ggml_common_h() {
        for &t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
        }
        assert_eq!(GgmlType::from_id(4), None); // removed Q4_2
        assert_eq!(GgmlType::from_id(31), None);
        // Block sizes in bytes, from the block structs in ggml-common.h.
        let expect = [
            (GgmlType::Q4_0, 32, 18),
            (GgmlType::Q4_1, 32, 20),
            (GgmlType::Q8_0, 32, 34),
            (GgmlType::Q4_K, 256, 144),
            (GgmlType::Q6_K, 256, 210),
            (GgmlType::TQ1_0, 256, 54),
            (GgmlType::TQ2_0, 256, 66),
            (GgmlType::MXFP4, 32, 17),
            (GgmlType::NVFP4, 64, 36),
        ];
        for (t, b, s) in expect {
            assert_eq!((t.block_size(), t.type_size()), (b, s), "{t}");
        }
        assert_eq!(GgmlType::MXFP4.id(), 39);
        assert_eq!(GgmlType::BF16.id(), 30);
    }
}
