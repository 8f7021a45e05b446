# Greedy continuation with a plain numpy Llama forward on an F32 llama GGUF read by gguf-py.
# Everything follows llama.cpp's layout of the file: weights [out, in] as gguf-py returns them,
# q/k rows rotated as adjacent pairs, tied output = token_embd when output.weight is absent.
# The byte-level BPE tokenizer comes from the file's tokenizer.ggml.* keys (SmolLM2's
# pre-tokenizer: single digits, then the GPT-2 word regex).
# Usage: llama_numpy_generate.py model.gguf "prompt" n_new -> prints the decoded continuation.
import re, sys
import numpy as np
from gguf import GGUFReader

r = GGUFReader(sys.argv[1])
prompt, n_new = sys.argv[2], int(sys.argv[3])

def scalar(name):
    f = r.fields[name]
    return f.parts[f.data[0]][0].item()
def strings(name):
    f = r.fields[name]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
W = {t.name: np.asarray(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)]) for t in r.tensors}

n_layer, n_head = scalar("llama.block_count"), scalar("llama.attention.head_count")
n_kv, eps = scalar("llama.attention.head_count_kv"), scalar("llama.attention.layer_norm_rms_epsilon")
base = scalar("llama.rope.freq_base")
d_model = W["token_embd.weight"].shape[1]
hd = d_model // n_head

# --- tokenizer: GPT-2 byte <-> unicode table, BPE by merge rank ---
printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
byte_to_char, extra = {}, 0
for b in range(256):
    if b in printable:
        byte_to_char[b] = chr(b)
    else:
        byte_to_char[b] = chr(256 + extra); extra += 1
char_to_byte = {c: b for b, c in byte_to_char.items()}
tokens = strings("tokenizer.ggml.tokens")
token_id = {t: i for i, t in enumerate(tokens)}
merge_rank = {tuple(m.split(" ")): i for i, m in enumerate(strings("tokenizer.ggml.merges"))}

def bpe(word):
    parts = list(word)
    while len(parts) > 1:
        ranked = [(merge_rank.get((a, b), float("inf")), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        best, i = min(ranked)
        if best == float("inf"):
            break
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts

def encode(text):
    pieces = re.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d| ?[^\s\w]+|\s+(?!\S)|\s+", text)
    out = []
    for p in pieces:
        out += [token_id[t] for t in bpe("".join(byte_to_char[b] for b in p.encode("utf-8")))]
    return out

def decode(ids):
    return bytes(char_to_byte[c] for i in ids for c in tokens[i]).decode("utf-8", "replace")

# --- model ---
def rmsnorm(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

def rope_pairs(v, pos):  # v: (heads, T, hd)
    freq = base ** (-np.arange(0, hd, 2) / hd)
    ang = pos[:, None] * freq[None, :]
    c, s = np.cos(ang), np.sin(ang)
    even, odd = v[..., 0::2], v[..., 1::2]
    out = np.empty_like(v)
    out[..., 0::2], out[..., 1::2] = even * c - odd * s, even * s + odd * c
    return out

def logits(ids):
    T = len(ids)
    x = W["token_embd.weight"][ids]
    pos = np.arange(T, dtype=np.float64)
    causal = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(n_layer):
        p = f"blk.{l}."
        h = rmsnorm(x, W[p + "attn_norm.weight"])
        q = rope_pairs((h @ W[p + "attn_q.weight"].T).reshape(T, n_head, hd).transpose(1, 0, 2), pos)
        k = rope_pairs((h @ W[p + "attn_k.weight"].T).reshape(T, n_kv, hd).transpose(1, 0, 2), pos)
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, n_kv, hd).transpose(1, 0, 2)
        k, v = np.repeat(k, n_head // n_kv, axis=0), np.repeat(v, n_head // n_kv, axis=0)
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + causal
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        x = x + (att @ v).transpose(1, 0, 2).reshape(T, d_model) @ W[p + "attn_output.weight"].T
        h = rmsnorm(x, W[p + "ffn_norm.weight"])
        gate, up = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ W[p + "ffn_down.weight"].T
    out_w = W.get("output.weight", W["token_embd.weight"])
    return rmsnorm(x, W["output_norm.weight"]) @ out_w.T

ids = encode(prompt)
start = len(ids)
for _ in range(n_new):
    ids.append(int(np.argmax(logits(ids)[-1])))
print(decode(ids[start:]))
