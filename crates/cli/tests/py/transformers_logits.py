# transformers (PyTorch, CPU, float32) on an HF or compressed-tensors checkpoint directory: the
# logits of every position of a token sequence, written as raw little-endian f32 [n, vocab].
# Prints the loaded model class and, for compressed-tensors, the quantization method. With
# "dequantize", a compressed-tensors model is decompressed at load (transformers'
# `CompressedTensorsConfig(dequantize=True)`) instead of run compressed.
# Usage: transformers_logits.py DIR ids(comma-separated) out.f32 [dequantize]
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
import torch
from transformers import AutoModelForCausalLM, CompressedTensorsConfig

path, ids, out = sys.argv[1], [int(i) for i in sys.argv[2].split(",")], sys.argv[3]
torch.set_num_threads(2)
extra = {}
if len(sys.argv) > 4 and sys.argv[4] == "dequantize":
    extra["quantization_config"] = CompressedTensorsConfig(dequantize=True)
m = AutoModelForCausalLM.from_pretrained(
    path, dtype=torch.float32, local_files_only=True, **extra
)
m.eval()
with torch.no_grad():
    logits = m(torch.tensor([ids])).logits[0]
np.asarray(logits.float().numpy(), dtype="<f4").tofile(out)
q = getattr(m.config, "quantization_config", None)
method = q.get("quant_method") if isinstance(q, dict) else getattr(q, "quant_method", None)
print(type(m).__name__, getattr(method, "value", method) or "none")
