#!/usr/bin/env python3
"""The hand-written numbers of README.md: paired per-seed gaps of final val/loss between arms and
the mean QAT diagnostics (deadzone share, flip and escape rates per 25-step log interval) per arm,
from the run directories. Usage: python3 analyze.py [study dir] (default: this folder)."""
import glob, json, os, sys
import numpy as np

root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
runs = {}  # arm -> seed -> {"final": x, "series": {key: [(step, v)]}}
for d in sorted(glob.glob(os.path.join(root, "runs", "*", "seed-*"))):
    if not os.path.exists(os.path.join(d, "sweep.json")):
        continue
    meta = json.load(open(os.path.join(d, "sweep.json")))
    series = {}
    for line in open(os.path.join(d, "metrics.jsonl")):
        row = json.loads(line)
        for k, v in row.items():
            if k != "step":
                series.setdefault(k, []).append((row["step"], v))
    s = json.load(open(os.path.join(d, "summary.json")))
    runs.setdefault(meta["arm"], {})[meta["seed"]] = {"final": s["val_loss"], "bpb": s["val_bpb"], "series": series, "order": meta["order"]}
arms = sorted(runs, key=lambda a: next(iter(runs[a].values()))["order"])

def ms(x):
    x = np.asarray(x, float)
    return f"{x.mean():+.4f} ± {x.std(ddof=1):.4f}" if len(x) > 1 else f"{x.mean():+.4f}"

def gap(a, b):
    seeds = sorted(set(runs[a]) & set(runs[b]))
    d = [runs[a][s]["final"] - runs[b][s]["final"] for s in seeds]
    return d, f"{ms(d)} (per seed {', '.join(f'{x:+.4f}' for x in d)}; {sum(x < 0 for x in d)}/{len(d)} < 0)"

print("final val/loss per arm (mean ± std over seeds)")
for a in arms:
    v = [r["final"] for r in runs[a].values()]
    print(f"  {a:20s} {np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}   bpb {np.mean([r['bpb'] for r in runs[a].values()]):.4f}")

refs = [r for r in ("fp", "absmean-group", "absmean", "qat-from-start") if r in runs]
for ref in refs:
    print(f"\npaired gap of final val/loss to `{ref}` (arm − {ref}, mean ± std over seeds)")
    for a in arms:
        if a != ref:
            print(f"  {a:20s} {gap(a, ref)[1]}")

extra = [("tequila-1e-3", "tequila-1e-2"), ("tequila-learnable", "tequila-1e-3"), ("twn", "absmean"),
         ("seq", "absmean"), ("seq", "twn"), ("absmean-group", "absmean"), ("qat-in-cooldown", "fp")]
print("\nother pairs")
for a, b in extra:
    if a in runs and b in runs:
        print(f"  {a} − {b}: {gap(a, b)[1]}")

def diag(a, key, lo=0, hi=10**9):
    per_seed = []
    for r in runs[a].values():
        v = [x for st, x in r["series"].get(key, []) if lo <= st <= hi]
        if v:
            per_seed.append(np.mean(v))
    return per_seed

keys = ["qat/deadzone", "qat/escape_rate", "qat/flip_rate"]
windows = [("all", 0, 10**9), ("first 100 steps", 0, 100), ("last 100", 200, 300)] if "fp" in runs and "absmean-group" in runs else [("all", 0, 10**9)]
for name, lo, hi in windows:
    print(f"\nQAT diagnostics, mean over log steps ({name}); mean ± std over seeds")
    for a in arms:
        if not any(k in next(iter(runs[a].values()))["series"] for k in keys):
            continue
        cells = []
        for k in keys:
            v = diag(a, k, lo, hi)
            cells.append(f"{k.split('/')[1]} {np.mean(v):.4f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.4f}")
        print(f"  {a:20s} " + "   ".join(cells))
print("\npaired escape-rate gap (mean over all log steps), arm − absmean-group")
if "absmean-group" in runs:
    for a in arms:
        if a.startswith("tequila"):
            d = [np.mean([x for _, x in runs[a][s]["series"]["qat/escape_rate"]]) - np.mean([x for _, x in runs["absmean-group"][s]["series"]["qat/escape_rate"]]) for s in sorted(set(runs[a]) & set(runs["absmean-group"]))]
            print(f"  {a:20s} {ms(d)} ({sum(x > 0 for x in d)}/{len(d)} > 0)")

# Learned λ of `tequila-learnable` (from the final checkpoint, which git does not keep).
import struct
for d in sorted(glob.glob(os.path.join(root, "runs", "tequila-learnable", "seed-*"))):
    cks = sorted(glob.glob(os.path.join(d, "checkpoints", "*", "model.safetensors")))
    if not cks:
        continue
    b = open(cks[-1], "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    lam = np.concatenate([np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
                          for k, v in h.items() if k.endswith("weight_lambda")])
    print(f"\nlearned λ, {os.path.basename(d)}: {lam.size} channels, mean {lam.mean():.2e}, mean |λ| {np.abs(lam).mean():.2e}, "
          f"< 0: {np.mean(lam < 0):.0%}, |λ| > 1e-2: {np.mean(np.abs(lam) > 1e-2):.0%}, max |λ| {np.abs(lam).max():.3f}")

# Paired gap at every evaluation to the report's reference arm (the spec expects Tequila's
# advantage to be largest early).
ref = json.load(open(glob.glob(os.path.join(root, "runs", arms[0], "seed-*", "sweep.json"))[0]))["reference"]
if ref in runs:
    print(f"\npaired val/loss gap to {ref} at each evaluation step (mean ± std over seeds)")
    steps = [st for st, _ in next(iter(runs[ref].values()))["series"]["val/loss"]]
    print("  " + " " * 20 + "".join(f"{st:>20d}" for st in steps))
    for a in arms:
        if a == ref:
            continue
        row = []
        for st in steps:
            d = [dict(runs[a][s]["series"]["val/loss"])[st] - dict(runs[ref][s]["series"]["val/loss"])[st]
                 for s in sorted(set(runs[a]) & set(runs[ref]))]
            row.append(f"{ms(d):>20s}")
        print(f"  {a:20s}" + "".join(row))
