# compressed-tensors' own model-free decompressor on a compressed-tensors checkpoint directory:
# validates config.json's quantization_config, dequantizes every targeted module with the
# compressor its scheme selects, checks no quantization parameter is left over, and writes the
# dequantized projection weights as f32 safetensors, twice: OUT_PREFIX.native.safetensors with
# the scales as stored, OUT_PREFIX.f32.safetensors with float scales upcast to f32 first (how a
# float32 load sees them). Prints the scheme's format and the number of modules.
# Usage: ct_decompress.py DIR OUT_PREFIX
import sys
import torch
from safetensors.torch import load_file, save_file
from compressed_tensors.entrypoints.convert.converters.ct_dequantizer import (
    CompressedTensorsDequantizer,
)

src, prefix = sys.argv[1], sys.argv[2]
# Model-free, the decompressor cannot tell the embedding (not a Linear) from a projection by
# name; a model load can. Its `ignore` argument exists for exactly this.
deq = CompressedTensorsDequantizer(src, ignore=["model.embed_tokens"], dtype=torch.float32)
for mode in ("native", "f32"):
    tensors = load_file(f"{src}/model.safetensors")
    if mode == "f32":
        for k, v in tensors.items():
            if k.endswith("weight_scale") and v.dtype in (torch.bfloat16, torch.float16):
                tensors[k] = v.to(torch.float32)
    result = deq.validate(tensors)
    proj = {
        k: v.to(torch.float32).contiguous() for k, v in result.items() if k.endswith("_proj.weight")
    }
    save_file(proj, f"{prefix}.{mode}.safetensors")
formats = sorted({s.format.value for s in deq.quant_config.config_groups.values()})
print(" ".join(formats), len(proj))
