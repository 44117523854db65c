#!/usr/bin/env bash
# The GPU numbers (issue 14 item 4), from a release binary built elsewhere with
#   cargo build --release -p mtla-st --features cuda,wgpu && strip <target>/release/mtla-st
# A GPU session carries only the binary and runs this script from a checkout; everything it
# measures goes to $OUT (JSON + markdown + logs). Budgeted for under 9 minutes (BUDGET_S).
#   BIN=./mtla-st OUT=/tmp/out bash experiments/gpu/run.sh
#   BACKENDS="wgpu" BUDGET_S=120 LENGTHS=64 STEPS=4 ...   (a quick dry run on a software adapter)
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/mtla-st}
OUT=${OUT:-experiments/gpu/results}
BACKENDS=${BACKENDS:-cuda wgpu}
LENGTHS=${LENGTHS:-256,1024}
STEPS=${STEPS:-16}
TRAIN_UPDATES=${TRAIN_UPDATES:-30}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)  # absolute: config paths given with --set are relative to the config file
start=$(date +%s)
# Seconds left of the budget, at most $1 and at least 1 (timeout rejects 0).
left() {
  local l=$(( ${BUDGET_S:-520} - ($(date +%s) - start) ))
  l=$(( l < ${1:-100000} ? l : ${1:-100000} ))
  echo $(( l > 1 ? l : 1 ))
}
step() { echo "[$(( $(date +%s) - start )) s] $*"; }

# What ran: GPU, driver, binary version, commit.
{
  echo "{"
  echo "  \"date\": \"$(date -u +%FT%TZ)\","
  echo "  \"binary\": \"$("$BIN" --version 2>/dev/null)\","
  echo "  \"gpu\": \"$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)\","
  echo "  \"cuda\": \"$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -1)\","
  echo "  \"commit\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\","
  echo "  \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\""
  echo "}"
} > "$OUT/environment.json"
cat "$OUT/environment.json"

# Device memory in use, sampled every 0.2 s for the whole script (peak per phase afterwards).
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader,nounits -lms 200 > "$OUT/gpu_memory.csv" 2>/dev/null &
  SAMPLER=$!
  trap 'kill $SAMPLER 2>/dev/null' EXIT
fi

for backend in $BACKENDS; do
  # 1. Exactness: every fixture of the authors' PyTorch MTLA, incremental path through the fused kernel.
  step "$backend: attention check"
  for f in crates/mtla/tests/data/*.safetensors; do
    timeout "$(left 60)" "$BIN" attention check --reference "$f" --backend "$backend"
  done > "$OUT/check_$backend.jsonl" 2> "$OUT/check_$backend.log" || echo "$backend: a check failed, see check_$backend.*"

  # 2. Decode: the paper's 9-layer decoder, beam 50 (Table 1) and 1, fused and op by op.
  step "$backend: bench decode"
  timeout "$(left 200)" "$BIN" bench decode --config configs/paper_mustc.toml \
    --variants mha,gqa,mla,mtla2,mtla4 --lengths "$LENGTHS" --beams 1,50 --steps "$STEPS" \
    --max-cache-gib 24 --unfused --backend "$backend" --json "$OUT/decode_$backend.json" \
    > "$OUT/decode_$backend.md" 2> "$OUT/decode_$backend.log" || echo "$backend: decode bench failed, see decode_$backend.log"

  # Half precision of this backend: bf16 on CUDA; WebGPU (WGSL) has f16 only.
  half=$([ "$backend" = cuda ] && echo bf16 || echo f16)
  step "$backend: bench decode in $half"
  timeout "$(left 120)" "$BIN" bench decode --config configs/paper_mustc.toml \
    --variants mha,mtla2 --lengths "$LENGTHS" --beams 50 --steps "$STEPS" \
    --max-cache-gib 24 --precision "$half" --backend "$backend" --json "$OUT/decode_${backend}_$half.json" \
    > "$OUT/decode_${backend}_$half.md" 2> "$OUT/decode_${backend}_$half.log" || echo "$backend: $half decode bench failed"

  # 3. Training throughput of the paper preset, MHA vs MTLA s = 2, f32 and half, on the demo data.
  for run in mha:f32 mtla:f32 mha:$half mtla:$half; do
    kind=${run%:*} precision=${run#*:} name=${run/:/_}
    step "$backend: train $kind in $precision"
    rm -rf "$OUT/train_${backend}_$name"
    timeout "$(left 90)" "$BIN" train --config configs/paper_mustc.toml --out "$OUT/train_${backend}_$name" \
      --backend "$backend" --precision "$precision" --max-updates "$TRAIN_UPDATES" \
      --set model.decoder.attention.kind=$kind \
      --set 'data.train="../data/demo/train.tsv"' --set 'data.valid="../data/demo/dev.tsv"' \
      --set "data.feature_cache=\"$OUT/feature-cache\"" --set data.max_frames=20000 \
      --set train.warmup_updates=10 --set train.validate_every_updates=$TRAIN_UPDATES \
      > "$OUT/train_${backend}_$name.log" 2>&1 || echo "$backend: training $name failed, see train_${backend}_$name.log"
    # Seconds per update after the first 5 (kernel compilation and autotuning happen early).
    awk -F'"wall_s":' '/"loss"/{split($2,a,/[,}]/); n++; w[n]=a[1]}
      END{ if (n > 6) printf "{\"updates\": %d, \"s_per_update_after_5\": %.4f}\n", n, (w[n]-w[5])/(n-5);
           else print "{\"updates\": " n+0 "}" }' "$OUT/train_${backend}_$name/train_log.jsonl" \
      2>/dev/null | tee "$OUT/train_${backend}_$name.speed.json"
    rm -rf "$OUT/train_${backend}_$name/checkpoints"
  done
done
rm -rf "$OUT/feature-cache"
step "done; results in $OUT"
ls -la "$OUT"
