"""Dequantizes one tensor of a GGUF file with gguf-py and writes it as raw f32.

Usage: python3 gguf_tensor_f32.py FILE.gguf TENSOR_NAME OUT.f32
Prints the numpy shape gguf-py reports (row-major, comma separated).
"""
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

r = GGUFReader(sys.argv[1])
(t,) = [t for t in r.tensors if t.name == sys.argv[2]]
y = dequantize(t.data, t.tensor_type).astype(np.float32)
y.tofile(sys.argv[3])
print(",".join(str(d) for d in y.shape))
