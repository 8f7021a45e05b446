#!/usr/bin/env python3
"""CPU training throughput and peak memory: Nibble vs PyTorch eager, interleaved in one run.

For each preset (tiny, small: batch 16 x 256; smollm2-135m: batch 4 x 256, vocabulary 49,152,
tied embeddings), runs `rounds` rounds; each round trains `steps` steps with `nibble train` and
`steps` steps with the PyTorch twin (same architecture: RMSNorm, RoPE rotate_half, GQA, SwiGLU,
f32, AdamW, global-norm clipping; attention through `scaled_dot_product_attention`, PyTorch's best
eager path), each in its own process under /usr/bin/time for its peak RSS. A run's speed is the
median tokens/s of its steps after the first two; the ratio is the median of the per-round ratios.

Needs a release build (`cargo build --release -p nibble-cli`) and torch (`.ci/run` installs it).
Usage: python3 benches/train_vs_torch.py [--presets tiny,small,smollm2-135m] [--rounds 3]
       [--steps 8] [--threads 2]
  --gemm: instead, the three f32 GEMMs of every linear layer of each preset (`nibble bench gemm`
          against torch.matmul, interleaved), per shape and weighted over one step's layers;
  --growth STEPS: instead, the RSS of a STEPS-step `tiny` run early and late (allocation growth).
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile, time

PRESETS = {
    # d, layers, heads, kv heads, ffn, vocab, tied, rope theta, batch, seq
    "tiny": dict(d=128, L=4, H=4, KV=2, F=512, V=256, tied=False, theta=1e4, B=16, T=256),
    "small": dict(d=256, L=12, H=8, KV=4, F=768, V=256, tied=False, theta=1e4, B=16, T=256),
    "smollm2-135m": dict(d=576, L=30, H=9, KV=3, F=1536, V=49152, tied=True, theta=1e5, B=4, T=256),
}
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, env):
    """Runs cmd under /usr/bin/time; returns (stdout, peak RSS in MiB)."""
    r = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{r.stderr[-3000:]}")
    rss = int(re.findall(r"MAXRSS (\d+)", r.stderr)[-1]) / 1024
    return r.stdout, rss


def write_recipe(out, name, preset, steps, log_every):
    """A recipe for `preset` on the sample corpus, no evaluation or checkpoints; returns its path."""
    a = PRESETS[preset]
    recipe = os.path.join(out, f"{name}.toml")
    open(recipe, "w").write(f"""
[run]
name = "{name}"
out_dir = "{out}/runs"
steps = {steps}
batch_size = {a['B']}
[model]
preset = "{preset}"
seq_len = {a['T']}
vocab_size = {a['V']}
[data]
source = "sample"
cache_dir = "{out}/cache"
[eval]
every = 0
batches = 1
[log]
every = {log_every}
progress = false
tensorboard = false
[checkpoint]
every = 0
""")
    return recipe


def nibble(preset, steps, threads, out):
    recipe = write_recipe(out, f"{preset}-{time.time_ns()}", preset, steps, 1)
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    stdout, rss = timed([os.path.join(root, "target/release/nibble"), "train", "--recipe", recipe], env)
    run = re.findall(r"run directory: (.*)", stdout)[-1].strip()
    rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if "train/tokens_per_sec" in l]
    return statistics.median(r["train/tokens_per_sec"] for r in rows[2:]), rss


def torch_worker(preset, steps, threads):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    a = PRESETS[preset]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    d, L, H, KV, FF, V, B, T = a["d"], a["L"], a["H"], a["KV"], a["F"], a["V"], a["B"], a["T"]
    hd = d // H

    class RMSNorm(nn.Module):
        def __init__(s, d):
            super().__init__()
            s.w = nn.Parameter(torch.ones(d))

        def forward(s, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * s.w

    inv = 1.0 / (a["theta"] ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.outer(torch.arange(T).float(), inv)
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()

    def rope(x):  # [b, h, t, hd]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    class Block(nn.Module):
        def __init__(s):
            super().__init__()
            s.n1, s.n2 = RMSNorm(d), RMSNorm(d)
            s.q, s.k = nn.Linear(d, H * hd, bias=False), nn.Linear(d, KV * hd, bias=False)
            s.v, s.o = nn.Linear(d, KV * hd, bias=False), nn.Linear(H * hd, d, bias=False)
            s.g, s.u, s.dn = nn.Linear(d, FF, bias=False), nn.Linear(d, FF, bias=False), nn.Linear(FF, d, bias=False)

        def forward(s, x):
            b, t, _ = x.shape
            h = s.n1(x)
            q = rope(s.q(h).view(b, t, H, hd).transpose(1, 2))
            k = rope(s.k(h).view(b, t, KV, hd).transpose(1, 2))
            v = s.v(h).view(b, t, KV, hd).transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            x = x + s.o(y.transpose(1, 2).reshape(b, t, H * hd))
            h = s.n2(x)
            return x + s.dn(F.silu(s.g(h)) * s.u(h))

    class Model(nn.Module):
        def __init__(s):
            super().__init__()
            s.emb = nn.Embedding(V, d)
            s.blocks = nn.ModuleList(Block() for _ in range(L))
            s.norm = RMSNorm(d)
            s.head = None if a["tied"] else nn.Linear(d, V, bias=False)

        def forward(s, x):
            h = s.emb(x)
            for blk in s.blocks:
                h = blk(h)
            h = s.norm(h)
            return F.linear(h, s.emb.weight) if s.head is None else s.head(h)

    m = Model()
    # Nibble's initialization (every matrix N(0, 0.02), norms 1): the same numerical regime (a
    # default N(0, 1) embedding tied to the head saturates the softmax and fills the backward
    # with denormals, which slows PyTorch's GEMMs several-fold).
    for p in m.parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, 0.0, 0.02)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    x, y = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))
    tps = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = F.cross_entropy(m(x).view(-1, V), y.view(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        tps.append(B * T / (time.perf_counter() - t0))
    print(json.dumps({"tps": statistics.median(tps[2:]), "torch": torch.__version__}))


def gemm_shapes(preset):
    """The model's linear layers as {(T, K, N): count}: q, k, v, o, gate, up, down per layer, head."""
    a = PRESETS[preset]
    d, hd, T = a["d"], a["d"] // a["H"], a["B"] * a["T"]
    per_layer = [(d, a["H"] * hd), (d, a["KV"] * hd), (d, a["KV"] * hd), (a["H"] * hd, d),
                 (d, a["F"]), (d, a["F"]), (a["F"], d)]
    shapes = {}
    for k, n in per_layer * a["L"] + [(d, a["V"])]:
        shapes[(T, k, n)] = shapes.get((T, k, n), 0) + 1
    return shapes


def torch_gemm_worker(preset, reps, threads):
    import torch
    torch.set_num_threads(threads)
    for (t, k, n) in gemm_shapes(preset):
        x, w, dy = torch.randn(t, k), torch.randn(n, k) * 0.02, torch.randn(t, n)
        secs = []
        for rep in range(reps + 1):
            t0 = time.perf_counter()
            x @ w.t(); dy @ w; dy.t() @ x
            if rep:
                secs.append(time.perf_counter() - t0)
        print(json.dumps({"shape": [t, k, n], "seconds": statistics.median(secs)}))


def gemm_compare(preset, rounds, threads):
    """Nibble's and PyTorch's GEMMs of a linear layer at the model's shapes, interleaved."""
    shapes = gemm_shapes(preset)
    spec = ";".join(",".join(map(str, s)) for s in shapes)
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    ratios = {s: [] for s in shapes}
    for _ in range(rounds):
        n = subprocess.run([os.path.join(root, "target/release/nibble"), "bench", "gemm", "--shapes", spec],
                           env=env, capture_output=True, text=True, check=True).stdout
        t = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker-gemm", preset, "--threads", str(threads)],
                           capture_output=True, text=True, check=True).stdout
        ns = {tuple(json.loads(l)["shape"]): json.loads(l)["seconds"] for l in n.splitlines() if l.strip()}
        ts = {tuple(json.loads(l)["shape"]): json.loads(l)["seconds"] for l in t.splitlines() if l.strip()}
        for s in shapes:
            ratios[s].append((ts[s], ns[s]))
    print(f"{preset}: the three GEMMs of each linear layer (T, K, N), {threads} threads, medians of {rounds} rounds")
    tot_n = tot_t = 0.0
    for s, count in shapes.items():
        tn = statistics.median(r[1] for r in ratios[s])
        tt = statistics.median(r[0] for r in ratios[s])
        fl = 6.0 * s[0] * s[1] * s[2]
        tot_n += tn * count
        tot_t += tt * count
        print(f"  {str(s):22} x{count:<3} nibble {fl / tn / 1e9:6.1f} GFLOP/s  torch {fl / tt / 1e9:6.1f}  "
              f"ratio {statistics.median(r[0] / r[1] for r in ratios[s]):.2f}")
    print(f"  all layers of one step: nibble/torch speed {tot_t / tot_n:.2f}")


def growth(steps, threads):
    """Peak-to-peak RSS of a long `tiny` run: sampled every 0.25 s, the maximum over the first
    and the last fifth of the run's steps (by wall time)."""
    out = tempfile.mkdtemp()
    recipe = write_recipe(out, "growth", "tiny", steps, 50)
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    p = subprocess.Popen([os.path.join(root, "target/release/nibble"), "train", "--recipe", recipe], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples, t0 = [], time.time()
    while p.poll() is None:
        try:
            rss = int(re.findall(r"VmRSS:\s+(\d+)", open(f"/proc/{p.pid}/status").read())[0]) / 1024
            samples.append((time.time() - t0, rss))
        except (OSError, IndexError):
            pass
        time.sleep(0.25)
    metrics = [json.loads(l) for l in open(os.path.join(out, "runs", "growth", "metrics.jsonl")) if "train/loss" in l]
    # The training steps span from the first logged step to the last; init and the final
    # evaluation and checkpoint lie outside.
    span = [t for t, _ in samples]
    t_end = max(span)
    first = [r for t, r in samples if 0.15 * t_end <= t < 0.3 * t_end]
    last = [r for t, r in samples if 0.75 * t_end <= t < 0.9 * t_end]
    print(f"tiny, {steps} steps ({len(metrics)} logged), {len(samples)} RSS samples: "
          f"max RSS {max(first):.0f} MiB at 15-30% of the run, {max(last):.0f} MiB at 75-90%: "
          f"growth {max(last) - max(first):+.0f} MiB")


def torch_run(preset, steps, threads):
    stdout, rss = timed([sys.executable, os.path.abspath(__file__), "--worker", preset, "--steps", str(steps), "--threads", str(threads)], dict(os.environ))
    r = json.loads(stdout.strip().splitlines()[-1])
    return r["tps"], rss, r["torch"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="tiny,small,smollm2-135m")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gemm", action="store_true", help="compare the GEMMs of each preset's linear layers")
    ap.add_argument("--growth", type=int, metavar="STEPS", help="RSS growth of a STEPS-step tiny run")
    ap.add_argument("--worker")
    ap.add_argument("--worker-gemm")
    args = ap.parse_args()
    if args.worker:
        return torch_worker(args.worker, args.steps, args.threads)
    if args.worker_gemm:
        return torch_gemm_worker(args.worker_gemm, 5, args.threads)
    if args.growth:
        return growth(args.growth, args.threads)
    if args.gemm:
        for preset in args.presets.split(","):
            gemm_compare(preset, args.rounds, args.threads)
        return
    out = tempfile.mkdtemp()
    print(f"{args.rounds} rounds x {args.steps} steps, {args.threads} threads; medians")
    print(f"{'preset':14} {'nibble tok/s':>13} {'torch tok/s':>12} {'ratio':>6} {'nibble MiB':>11} {'torch MiB':>10}")
    for preset in args.presets.split(","):
        nt, tt, ratios, nr, tr = [], [], [], [], []
        for _ in range(args.rounds):
            n, nrss = nibble(preset, args.steps, args.threads, out)
            t, trss, ver = torch_run(preset, args.steps, args.threads)
            nt.append(n); tt.append(t); ratios.append(n / t); nr.append(nrss); tr.append(trss)
        print(f"{preset:14} {statistics.median(nt):13.0f} {statistics.median(tt):12.0f} "
              f"{statistics.median(ratios):6.2f} {max(nr):11.0f} {max(tr):10.0f}", flush=True)
    print(f"torch {ver}, eager")


if __name__ == "__main__":
    main()
