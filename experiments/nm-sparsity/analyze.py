#!/usr/bin/env python3
"""The hand-written numbers of README.md, from the run directories of one sweep folder (`ffn`,
`ffn-attn`): final val/loss per method and pattern (mean ± std over seeds), the paired per-seed
gaps MDGF − SR-STE, SDGF − SR-STE and STE − SR-STE, and the gradient-noise and stability
diagnostics (variance of the raw weight gradient on pruned entries, relative to kept ones, and
the mask flip rate per 25-update log interval, averaged over the sparse phase, updates
25..225). Usage: python3 analyze.py ffn|ffn-attn"""
import glob, json, os, sys
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, sys.argv[1] if len(sys.argv) > 1 else "ffn")
runs = {}  # (method, pattern) -> seed -> {"final": x, "series": {key: {step: v}}}
for d in sorted(glob.glob(os.path.join(root, "runs", "*", "seed-*"))):
    if not os.path.exists(os.path.join(d, "summary.json")):
        continue
    meta = json.load(open(os.path.join(d, "sweep.json")))
    pattern = dict(meta["axes"]).get("sparsity.pattern", "dense")
    series = {}
    for line in open(os.path.join(d, "metrics.jsonl")):
        row = json.loads(line)
        for k, v in row.items():
            if k != "step":
                series.setdefault(k, {})[row["step"]] = v
    final = json.load(open(os.path.join(d, "summary.json")))["val_loss"]
    runs.setdefault((meta["arm_name"], pattern), {})[meta["seed"]] = {"final": final, "series": series}

methods = ["ste", "sr-ste", "mdgf", "sdgf"]
patterns = [p for p in ["2:4", "1:8", "1:16", "1:32"] if any((m, p) in runs for m in methods)]


def ms(x, sign=""):
    x = np.asarray(x, float)
    if len(x) == 0:
        return "–"
    sd = f" ± {x.std(ddof=1):.4f}" if len(x) > 1 else ""
    return f"{x.mean():{sign}.4f}{sd}"


dense = runs.get(("dense", "dense"), {})
print(f"dense: final val/loss {ms([r['final'] for r in dense.values()])} ({len(dense)} seeds)")
print()
print("| pattern | " + " | ".join(methods) + " |")
print("|---|" + "---|" * len(methods))
for p in patterns:
    cells = [ms([r["final"] for r in runs.get((m, p), {}).values()]) for m in methods]
    print(f"| {p} | " + " | ".join(cells) + " |")
print()
print("Paired per-seed gaps of final val/loss to SR-STE (negative: better than SR-STE):")
print()
print("| pattern | " + " | ".join(f"{m} − sr-ste" for m in methods if m != "sr-ste") + " |")
print("|---|" + "---|" * (len(methods) - 1))
for p in patterns:
    ref = runs.get(("sr-ste", p), {})
    cells = []
    for m in methods:
        if m == "sr-ste":
            continue
        a = runs.get((m, p), {})
        seeds = sorted(set(a) & set(ref))
        cells.append(ms([a[s]["final"] - ref[s]["final"] for s in seeds], "+"))
    print(f"| {p} | " + " | ".join(cells) + " |")
print()


def window_mean(series, key, lo=25, hi=225):
    v = [x for s, x in series.get(key, {}).items() if lo <= s <= hi]
    return float(np.mean(v)) if v else float("nan")


print("Diagnostics over updates 25..225 (mean over log steps, then over seeds): gradient variance")
print("on pruned entries / on kept entries, and the mask flip rate per log interval:")
print()
print("| pattern | method | grad var pruned / kept | flip rate |")
print("|---|---|---|---|")
for p in patterns:
    for m in methods:
        rs = runs.get((m, p), {}).values()
        ratio = [window_mean(r["series"], "sparsity/grad_var_pruned") / window_mean(r["series"], "sparsity/grad_var_kept") for r in rs]
        flips = [window_mean(r["series"], "sparsity/flip_rate") for r in rs]
        print(f"| {p} | {m} | {ms(ratio)} | {ms(flips)} |")
