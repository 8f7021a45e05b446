# Independent check of the q/k row order: layer-0 attention logits computed straight from the
# GGUF rows (read and dequantized by gguf-py), with RoPE on adjacent pairs (2i, 2i+1), which is
# how llama.cpp's llama architecture rotates the rows it stores.
# Usage: qk_scores_adjacent_rope.py model.gguf tok0,tok1,... -> JSON [head][query][key] logits.
import json, sys
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

r = GGUFReader(sys.argv[1])
ids = [int(x) for x in sys.argv[2].split(",")]
def field(name):
    f = r.fields[name]
    return f.parts[f.data[0]][0].item()
def tensor(name):
    t = next(t for t in r.tensors if t.name == name)
    return np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float64).reshape([int(x) for x in reversed(t.shape)])

n_head = field("llama.attention.head_count")
n_kv = field("llama.attention.head_count_kv")
eps = field("llama.attention.layer_norm_rms_epsilon")
base = field("llama.rope.freq_base")
emb = tensor("token_embd.weight")
norm_w = tensor("blk.0.attn_norm.weight")
wq, wk = tensor("blk.0.attn_q.weight"), tensor("blk.0.attn_k.weight")
hd = wq.shape[0] // n_head

x = emb[ids]
x = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * norm_w
pos = np.arange(len(ids), dtype=np.float64)

def rotate_pairs(v):  # v: (tokens, heads, hd)
    freq = base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = pos[:, None, None] * freq[None, None, :]
    even, odd = v[..., 0::2], v[..., 1::2]
    out = np.empty_like(v)
    out[..., 0::2] = even * np.cos(ang) - odd * np.sin(ang)
    out[..., 1::2] = even * np.sin(ang) + odd * np.cos(ang)
    return out

q = rotate_pairs((x @ wq.T).reshape(len(ids), n_head, hd))
k = rotate_pairs((x @ wk.T).reshape(len(ids), n_kv, hd))
group = n_head // n_kv
scores = [(q[:, h, :] @ k[:, h // group, :].T).tolist() for h in range(n_head)]
print(json.dumps(scores))
