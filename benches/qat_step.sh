#!/usr/bin/env bash
# Weight-only QAT step time on `small`: tokens/s (median of steps 3-20) of `nibble train` with
# each [qat] technique on every block projection against the f32 step, in interleaved rounds.
#   bash benches/qat_step.sh [rounds]      (needs the release binary and the Shakespeare cache)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/nibble}
ROUNDS=${1:-3}
TMP=$(mktemp -d)
cat > "$TMP/base.toml" <<TOML
[run]
name = "x"
out_dir = "$TMP/runs"
steps = 20
batch_size = 8
[model]
preset = "small"
seq_len = 256
[data]
source = "shakespeare"
tokenizer = "bytes"
cache_dir = "$PWD/data-cache"
[schedule]
warmup_steps = 0
[eval]
every = 0
batches = 1
[log]
every = 1
tensorboard = false
progress = false
[checkpoint]
every = 0
TOML
for round in $(seq "$ROUNDS"); do
  for arm in none lsq tequila absmean; do
    rm -rf "$TMP/runs"
    case $arm in
      none) set -- ;;
      lsq) set -- --set qat.method=lsq ;;
      *) set -- --set qat.method=$arm --set qat.granularity=group --set qat.group_size=128 ;;
    esac
    "$BIN" train --recipe "$TMP/base.toml" "$@" > /dev/null 2>&1
    python3 - "$TMP/runs/x/metrics.jsonl" "$arm" "$round" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tps = [r["train/tokens_per_sec"] for r in rows if "train/tokens_per_sec" in r and r["step"] >= 3]
print(f"round {sys.argv[3]} {sys.argv[2]:8s} {statistics.median(tps):8.0f} tokens/s")
PY
  done
done
rm -rf "$TMP"
