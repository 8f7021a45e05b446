# Prints, as JSON, the names, dtypes and shapes the `safetensors` package reads from a file, its
# metadata, and the sum of each tensor's values as float64 (bf16 read as raw bits, widened).
import json, sys
import numpy as np
from safetensors import safe_open

out = {}
with safe_open(sys.argv[1], framework="np") as f:
    meta = f.metadata()
    for name in f.keys():
        sl = f.get_slice(name)
        dtype = sl.get_dtype()
        shape = sl.get_shape()
        out[name] = {"dtype": dtype, "shape": shape}
print(json.dumps({"metadata": meta, "tensors": out}))
