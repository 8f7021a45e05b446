# llama.cpp (through llama-cpp-python) on a GGUF file: the logits of every position of a token
# sequence, written as raw little-endian f32 [n, vocab]; with a prompt, also the greedy
# continuation (8 tokens) on stdout.
# Usage: llama_cpp_logits.py model.gguf ids(comma-separated) out.f32 [prompt]
import sys
import numpy as np
from llama_cpp import Llama

path, ids, out = sys.argv[1], [int(i) for i in sys.argv[2].split(",")], sys.argv[3]
m = Llama(path, n_ctx=max(64, len(ids) + 16), logits_all=True, verbose=False, n_threads=2,
          n_batch=len(ids))
m.eval(ids)
np.asarray(m.scores[: len(ids)], dtype="<f4").tofile(out)
if len(sys.argv) > 4:
    m.reset()
    text = m(sys.argv[4], max_tokens=8, temperature=0)["choices"][0]["text"]
    sys.stdout.write(text)
