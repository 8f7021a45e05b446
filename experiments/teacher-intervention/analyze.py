#!/usr/bin/env python3
"""The hand-written numbers of README.md: per arm, the validation loss at early steps, the
updates needed to first reach target losses (evaluations every 15 updates), and paired per-seed
gaps to KD-QAT; stage 1's intervened vs deployable loss. Usage: python3 analyze.py [study dir]."""
import glob, json, os, sys
import numpy as np

root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
runs = {}  # arm -> seed -> {key: {step: value}}
order = {}
for d in sorted(glob.glob(os.path.join(root, "runs", "*", "seed-*"))):
    if not os.path.exists(os.path.join(d, "summary.json")):
        continue
    meta = json.load(open(os.path.join(d, "sweep.json")))
    series = {}
    for line in open(os.path.join(d, "metrics.jsonl")):
        row = json.loads(line)
        for k, v in row.items():
            if k != "step":
                series.setdefault(k, {})[row["step"]] = v
    runs.setdefault(meta["arm"], {})[meta["seed"]] = series
    order[meta["arm"]] = meta["order"]
arms = sorted(runs, key=order.get)
ref = "kd-qat"


def ms(x, sign=""):
    x = np.asarray(x, float)
    sd = f" ± {x.std(ddof=1):.4f}" if len(x) > 1 else ""
    return f"{x.mean():{sign}.4f}{sd}"


def first_reach(val, target):
    hit = [s for s, v in sorted(val.items()) if v <= target]
    return hit[0] if hit else None


steps = [15, 30, 45, 60, 150, 300]
print("| arm | seeds | " + " | ".join(f"val/loss @{s}" for s in steps) + " |")
print("|---|---|" + "---|" * len(steps))
for a in arms:
    cells = [ms([runs[a][sd]["val/loss"][s] for sd in runs[a]]) for s in steps]
    print(f"| `{a}` | {len(runs[a])} | " + " | ".join(cells) + " |")

print()
targets = [1.85, 1.80, 1.78, 1.77]
print("| arm | " + " | ".join(f"updates to ≤ {t}" for t in targets) + " |")
print("|---|" + "---|" * len(targets))
for a in arms:
    cells = []
    for t in targets:
        hits = [first_reach(runs[a][sd]["val/loss"], t) for sd in sorted(runs[a])]
        cells.append(", ".join("–" if h is None else str(h) for h in hits))
    print(f"| `{a}` | " + " | ".join(cells) + " |")

print()
print(f"Paired per-seed gaps to `{ref}` (val/loss, negative = better):")
print()
print("| arm | " + " | ".join(f"@{s}" for s in steps) + " |")
print("|---|" + "---|" * len(steps))
for a in arms:
    if a == ref or ref not in runs:
        continue
    seeds = sorted(set(runs[a]) & set(runs[ref]))
    cells = [ms([runs[a][sd]["val/loss"][s] - runs[ref][sd]["val/loss"][s] for sd in seeds], "+") for s in steps]
    print(f"| `{a}` | " + " | ".join(cells) + " |")

print()
print("Stage 1 (TI arms): intervened vs deployable validation loss")
print()
for a in arms:
    iv = [runs[a][sd].get("val/loss_intervened", {}) for sd in sorted(runs[a])]
    if not any(iv):
        continue
    for s in sorted(iv[0]):
        dep = ms([runs[a][sd]["val/loss"][s] for sd in sorted(runs[a])])
        print(f"- `{a}` @{s}: intervened {ms([x[s] for x in iv])}, deployable {dep}")
