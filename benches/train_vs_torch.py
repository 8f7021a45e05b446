#!/usr/bin/env python3
"""Training throughput of the `small` model on CPU: Nibble vs PyTorch eager, in one run.

Builds the twin architecture in torch (Llama: RMSNorm, RoPE rotate_half, GQA, SwiGLU, untied
lm_head, f32), trains both for the same number of steps on the same batch geometry (batch 16 x 256
tokens, bytes vocabulary), and prints tokens/s of each and their ratio.

Needs a release build (`cargo build --release -p nibble-cli`) and `pip install torch` (not part of
CI). Usage: python3 benches/train_vs_torch.py [--steps 20] [--threads 2]
"""
import argparse, json, math, os, re, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--preset", default="small")
args = ap.parse_args()
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B, T, V = 16, 256, 256
ARCH = {"small": dict(d=256, L=12, H=8, KV=4, F=768), "tiny": dict(d=128, L=4, H=4, KV=2, F=512)}[args.preset]

# --- Nibble: train through the CLI, read its tokens/s from metrics.jsonl (after warm-up) ---
out = tempfile.mkdtemp()
recipe = os.path.join(out, "bench.toml")
open(recipe, "w").write(f"""
[run]
name = "bench"
out_dir = "{out}"
steps = {args.steps}
batch_size = {B}
[model]
preset = "{args.preset}"
seq_len = {T}
[data]
source = "sample"
cache_dir = "{out}/cache"
[eval]
every = 0
batches = 1
[log]
every = 1
progress = false
[checkpoint]
every = 0
""")
env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
subprocess.run([os.path.join(root, "target/release/nibble"), "train", "--recipe", recipe], check=True, env=env, stdout=subprocess.DEVNULL)
rows = [json.loads(l) for l in open(os.path.join(out, "bench", "metrics.jsonl")) if "train/tokens_per_sec" in l]
tps = [r["train/tokens_per_sec"] for r in rows[2:]]  # skip warm-up steps
nibble_tps = sorted(tps)[len(tps) // 2]

# --- PyTorch eager twin ---
import torch
import torch.nn as nn
import torch.nn.functional as F
torch.set_num_threads(args.threads)
torch.manual_seed(0)
d, L, H, KV, FF = ARCH["d"], ARCH["L"], ARCH["H"], ARCH["KV"], ARCH["F"]
hd = d // H

class RMSNorm(nn.Module):
    def __init__(s, d): super().__init__(); s.w = nn.Parameter(torch.ones(d))
    def forward(s, x): return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * s.w

inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
ang = torch.outer(torch.arange(T).float(), inv)
cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
def rope(x):  # [b, h, t, hd]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin

class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.n1, s.n2 = RMSNorm(d), RMSNorm(d)
        s.q, s.k, s.v, s.o = nn.Linear(d, d, bias=False), nn.Linear(d, KV * hd, bias=False), nn.Linear(d, KV * hd, bias=False), nn.Linear(d, d, bias=False)
        s.g, s.u, s.dn = nn.Linear(d, FF, bias=False), nn.Linear(d, FF, bias=False), nn.Linear(FF, d, bias=False)
    def forward(s, x):
        b, t, _ = x.shape
        h = s.n1(x)
        q = rope(s.q(h).view(b, t, H, hd).transpose(1, 2))
        k = rope(s.k(h).view(b, t, KV, hd).transpose(1, 2)).repeat_interleave(H // KV, 1)
        v = s.v(h).view(b, t, KV, hd).transpose(1, 2).repeat_interleave(H // KV, 1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + s.o(a.transpose(1, 2).reshape(b, t, d))
        h = s.n2(x)
        return x + s.dn(F.silu(s.g(h)) * s.u(h))

class Model(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb, s.blocks, s.norm, s.head = nn.Embedding(V, d), nn.ModuleList(Block() for _ in range(L)), RMSNorm(d), nn.Linear(d, V, bias=False)
    def forward(s, x):
        h = s.emb(x)
        for blk in s.blocks: h = blk(h)
        return s.head(s.norm(h))

m = Model()
opt = torch.optim.AdamW(m.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
x = torch.randint(0, V, (B, T)); y = torch.randint(0, V, (B, T))
times = []
for i in range(args.steps):
    t0 = time.perf_counter()
    loss = F.cross_entropy(m(x).view(-1, V), y.view(-1))
    opt.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
    times.append(time.perf_counter() - t0)
torch_tps = B * T / sorted(times[2:])[len(times[2:]) // 2]

print(f"preset {args.preset}, batch {B}x{T}, {args.threads} threads, {args.steps} steps, median step")
print(f"nibble  : {nibble_tps:10.0f} tokens/s")
print(f"pytorch : {torch_tps:10.0f} tokens/s  (torch {torch.__version__}, eager)")
print(f"ratio nibble/pytorch: {nibble_tps / torch_tps:.2f}")
