"""Runs gguf-py's reference quantizers/dequantizers on raw little-endian files.

Usage: python3 gguf_quants.py DIR JOB...   where JOB is `q:TYPE` or `d:TYPE`
  q:TYPE  reads DIR/TYPE.q.in (f32, rows of 256), writes gguf.quants.quantize bytes to DIR/TYPE.q.out
  d:TYPE  reads DIR/TYPE.d.in (encoded bytes), writes gguf.quants.dequantize f32 to DIR/TYPE.d.out
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

out_dir = sys.argv[1]
for job in sys.argv[2:]:
    mode, name = job.split(":")
    qtype = GGMLQuantizationType[name]
    base = os.path.join(out_dir, f"{name}.{mode}")
    if mode == "q":
        x = np.fromfile(base + ".in", dtype="<f4").reshape(-1, 256)
        with np.errstate(all="ignore"):
            q = quantize(x, qtype)
        q.tofile(base + ".out")
    else:
        data = np.fromfile(base + ".in", dtype=np.uint8)
        with np.errstate(all="ignore"):
            y = dequantize(data, qtype)
        np.asarray(y, dtype=np.float32).tofile(base + ".out")
