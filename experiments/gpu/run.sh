#!/usr/bin/env bash
# Experiment 4: the GPU numbers, from a release binary built elsewhere with
#   cargo build --release -p mtla-st --features cuda,wgpu && strip target/release/mtla-st
# A GPU session only carries the binary (and, optionally, a trained run) and runs this script;
# everything it measures goes to $OUT (JSON + markdown). Budgeted for under 8 minutes.
#   BIN=./mtla-st OUT=/tmp/out [RUN=runs/st_quality/mtla2 MANIFEST=...] bash experiments/gpu/run.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/mtla-st}
OUT=${OUT:-experiments/gpu/results}
mkdir -p "$OUT"
start=$(date +%s)
# Seconds left of the budget, at least 1 (timeout rejects 0 and negative values).
left() { local l=$(( ${BUDGET_S:-450} - ($(date +%s) - start) )); echo $(( l > 1 ? l : 1 )); }

# What ran: GPU, driver, precision (all f32), binary version.
{
  echo "{"
  echo "  \"date\": \"$(date -u +%FT%TZ)\","
  echo "  \"binary\": \"$("$BIN" --version 2>/dev/null)\","
  echo "  \"precision\": \"f32\","
  echo "  \"gpu\": \"$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)\","
  echo "  \"cuda\": \"$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -1)\","
  echo "  \"commit\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\","
  echo "  \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\""
  echo "}"
} > "$OUT/environment.json"
cat "$OUT/environment.json"

# 1. Decode efficiency on CUDA (beam 1, 5, 50) and WebGPU/Vulkan (beam 1, 5).
timeout $(left) "$BIN" bench decode --config configs/paper_mustc.toml --variants mha,gqa,mqa,mla,mtla2,mtla3,mtla4 \
  --lengths 64,256,1024,4096 --beams 1,5,50 --steps 16 --max-cache-gib 16 --backend cuda \
  --json "$OUT/decode_cuda.json" > "$OUT/decode_cuda.md" 2> "$OUT/decode_cuda.log" || echo "cuda decode bench failed, see decode_cuda.log"
timeout $(left) "$BIN" bench decode --config configs/paper_mustc.toml --variants mha,mla,mtla2,mtla4 \
  --lengths 64,256,1024,4096 --beams 1,5 --steps 16 --max-cache-gib 8 --backend wgpu \
  --json "$OUT/decode_wgpu.json" > "$OUT/decode_wgpu.md" 2> "$OUT/decode_wgpu.log" || echo "wgpu decode bench failed, see decode_wgpu.log"

# 2. One attention layer, batch 8 (the crate benchmark), on CUDA.
timeout $(left) "$BIN" bench attention --lengths 64,256,1024,4096 --reps 3 --steps 32 --backend cuda \
  --json "$OUT/attention_cuda.json" > "$OUT/attention_cuda.md" 2> "$OUT/attention_cuda.log" || echo "attention bench failed"

# 3. Evaluation of a trained checkpoint on CUDA and WebGPU (if one was carried along).
if [ -n "${RUN:-}" ] && [ -f "$RUN/averaged.safetensors" ]; then
  for backend in cuda wgpu; do
    timeout $(left) "$BIN" eval --checkpoint "$RUN/averaged.safetensors" --manifest "${MANIFEST:-data/demo/test.tsv}" \
      --beam 5 --backend "$backend" --out "$OUT/eval_$backend" > "$OUT/eval_$backend.md" 2>&1 || echo "eval on $backend failed"
  done
fi
echo "done in $(( $(date +%s) - start )) s; results in $OUT"
ls -la "$OUT"
